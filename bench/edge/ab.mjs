// Interleaved A/B of Worker builds: each variant is served by its own workerd (serve.mjs), then
// rounds of EdDSA `POST /jwt/verify/` (or `GET /me/`) at concurrency 16 go to each variant in turn, and the
// workerd CPU (utime + stime) per request is printed per round, with each variant's median.
// Interleaving spreads the machine's drift over all variants; one round's figure moves by
// ±0.1 ms here, so compare medians of several rounds.
//
// usage (from the repository root, after `cargo xtask bench` has built the Worker and the jose
// peer):
//   node_modules/.bin/node bench/edge/ab.mjs [--workload verify|me] [--rounds 6] [--requests 6000] VARIANT...
// VARIANT: NAME=DIR[=off]: the Worker built in DIR (worker-build's output, e.g. edge/build or a
//          copy of another commit's), with the default-shaped throttles at limits no round
//          reaches, or with `anon` and `user` off;
//          jose / jose-limited: the jose peer without a throttle / behind its Durable Object
//          limiter (target/bench/jose/dist).
// Example, what a Durable Object round trip costs: build once with shared::lease::MAX_LEASE = 1
// and copy edge/build to /tmp/lease1, then
//   ... ab.mjs on=edge/build off=edge/build=off lease1=/tmp/lease1 jose jose-limited
import { spawn } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { Agent, createServer, request as httpRequest } from "node:http";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : Number(args.splice(i, 2)[1]);
};
const workloadIndex = args.indexOf("--workload");
const workload = workloadIndex < 0 ? "verify" : args.splice(workloadIndex, 2)[1];
if (!["verify", "me"].includes(workload)) {
  console.error("--workload is verify or me");
  process.exit(2);
}
const rounds = option("--rounds", 6);
const requests = option("--requests", 6000);
const CONCURRENCY = 16;
if (args.length === 0) {
  console.error("usage: ab.mjs [--workload verify|me] [--rounds N] [--requests N] NAME=DIR[=off] | jose | jose-limited ...");
  process.exit(2);
}

// A key and a token of our claims, signed here: the Workers get the public key.
const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const x = publicKey.export({ format: "jwk" }).x;
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const input = `${b64({ alg: "EdDSA", typ: "JWT", kid: "ab" })}.${b64({
  token_type: "access", user_id: 1, jti: "ab", iat: now, exp: now + 86_400, ver: 1, role: "user",
  iss: "auth-api", aud: "auth-api",
})}`;
const token = `${input}.${sign(null, Buffer.from(input), privateKey).toString("base64url")}`;
const body = JSON.stringify({ token });

// For `--workload me`: a stand-in for the origin on this process, answering every call at once
// with a user, so that workerd's CPU is the edge's own work for a `/me` (verify, throttles, the
// signed call, the answer) and none of it the origin's. It checks nothing: the real chain is
// the benchmark's `GET /me/` row.
let originUrl = "http://127.0.0.1:9"; // verify makes no origin call
if (workload === "me") {
  const user = JSON.stringify({ id: 1, email: "ab@example.com", username: "ab", role: "user" });
  const origin = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(user));
  });
  await new Promise((done) => origin.listen(0, "127.0.0.1", done));
  originUrl = `http://127.0.0.1:${origin.address().port}`;
  origin.unref();
}

const LIMITS = "auth=100000/sec,password_reset=100000/sec";
const jose = resolve("target/bench/jose/dist");

function config(kind, dir, off) {
  if (kind === "jose" || kind === "jose-limited") {
    if (workload !== "verify") throw new Error("the jose peer has no /me");
    const limited = kind === "jose-limited";
    return {
      path: "/verify/eddsa",
      cfg: {
        modulesRoot: jose,
        modules: [{ type: "ESModule", path: `${jose}/${limited ? "limited" : "worker"}.mjs` }],
        bindings: { ED_X: x, ANON_RATE: "100000/day" },
        durableObjects: limited ? { LIMITER: "Limiter" } : {},
      },
    };
  }
  const build = resolve(dir);
  return {
    path: workload === "me" ? "/api/auth/me/" : "/api/auth/jwt/verify/",
    cfg: {
      modulesRoot: build,
      modules: [
        { type: "ESModule", path: `${build}/index.js` },
        { type: "CompiledWasm", path: `${build}/index_bg.wasm` },
      ],
      bindings: {
        JWT_ALGORITHM: "EdDSA", JWT_ISSUER: "auth-api", JWT_AUDIENCE: "auth-api",
        JWT_PUBLIC_KEYS: JSON.stringify({ keys: [{ kty: "OKP", crv: "Ed25519", x, kid: "ab", alg: "EdDSA", use: "sig" }] }),
        ORIGIN_URL: originUrl, ORIGIN_SIGNING_SECRET: "s".repeat(40),
        RESET_TOKEN_SECRET: "r".repeat(40), OTP_SECRET: "o".repeat(40), CORS_ALLOWED_ORIGINS: "",
        THROTTLE_RATES: off ? `anon=none,user=none,${LIMITS}` : `anon=100000/day,user=100000/day,${LIMITS}`,
      },
      durableObjects: { RATE_LIMITER: "RateLimiter", OTP_STORE: "OtpStore" },
    },
  };
}

let port = 18_700 + Math.floor(Math.random() * 500);
async function serve(variant) {
  const [name, dir, mode] = variant.split("=");
  const { path, cfg } = config(dir === undefined ? name : "ours", dir, mode === "off");
  Object.assign(cfg, { port: port++, compatibilityDate: "2025-09-01" });
  const child = spawn(process.execPath, ["bench/edge/serve.mjs", JSON.stringify(cfg)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise((done) => createInterface({ input: child.stdout }).once("line", done));
  const [ready, url, pid] = line.split(" ");
  if (ready !== "ready" || !(Number(pid) > 0)) throw new Error(`${name} did not start: ${line}`);
  child.stdout.resume();
  const base = new URL(url);
  return { name, host: base.hostname, port: Number(base.port), path, pid: Number(pid), child, us: [] };
}

const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

// One answer over the loop's kept-alive connection: its status, once the body is read.
function send(server, agent, worker) {
  const me = workload === "me";
  return new Promise((done, fail) => {
    const req = httpRequest(
      {
        agent,
        host: server.host,
        port: server.port,
        path: server.path,
        method: me ? "GET" : "POST",
        headers: {
          // A client address per loop, each its own throttle key, as in the benchmark.
          "cf-connecting-ip": `10.0.0.${1 + worker}`,
          ...(me ? { authorization: `Bearer ${token}` } : { "content-type": "application/json" }),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => done(res.statusCode));
      },
    );
    req.on("error", fail);
    req.end(me ? undefined : body);
  });
}

async function round(server) {
  let next = 0;
  let wrong = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const cpu = cpuSeconds(server.pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      while (next++ < requests) {
        if ((await send(server, agent, worker)) !== 200) wrong++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const us = ((cpuSeconds(server.pid) - cpu) / requests) * 1e6;
  agent.destroy();
  if (wrong) throw new Error(`${server.name}: ${wrong} answers were not 200`);
  server.us.push(us);
  return `${server.name} ${us.toFixed(0)} µs ${(requests / seconds).toFixed(0)}/s`;
}

const servers = [];
try {
  for (const variant of args) servers.push(await serve(variant));
  for (let r = 1; r <= rounds; r++) {
    const row = [];
    for (const server of servers) row.push(await round(server));
    console.log(`round ${r}: ${row.join(" | ")}`);
  }
  const median = (v) => {
    const s = [...v].sort((a, b) => a - b);
    return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2;
  };
  console.log(
    `workerd CPU per request, median of ${rounds} rounds of ${requests}: ` +
      servers.map((s) => `${s.name} ${median(s.us).toFixed(0)} µs`).join(", "),
  );
} finally {
  for (const server of servers) server.child.kill("SIGTERM");
}
