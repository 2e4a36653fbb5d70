// The JavaScript way of doing our job at the edge, for the benchmark's fair comparison: the jose
// peer's EdDSA verify behind a Durable Object limiter with our limiter's semantics (DRF's
// sliding log per `anon:<client address>`, one object call per request, the log kept in memory
// and written through before answering). `cargo xtask bench` bundles it beside the jose peer
// (whose `jose` it imports) into target/bench/jose/dist/limited.mjs.
import { jwtVerify, importJWK } from "jose";

let edKeyP;
const edKey = (env) => (edKeyP ??= importJWK({ kty: "OKP", crv: "Ed25519", x: env.ED_X }, "EdDSA"));
const json = (status, v, headers = {}) =>
  new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json", ...headers } });
const PERIODS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export class Limiter {
  constructor(state) {
    this.state = state;
    this.log = null;
  }

  async fetch(req) {
    const url = new URL(req.url);
    const limit = Number(url.searchParams.get("n"));
    const window = Number(url.searchParams.get("ms"));
    this.log ??= (await this.state.storage.get("log")) ?? [];
    const now = Date.now();
    let drop = 0;
    while (drop < this.log.length && this.log[drop] <= now - window) drop++;
    if (drop) this.log.splice(0, drop);
    if (this.log.length >= limit) {
      const wait = Math.max(1, Math.ceil((this.log[0] + window - now) / 1_000));
      return new Response(null, { status: 429, headers: { "Retry-After": String(wait) } });
    }
    this.log.push(now);
    await this.state.storage.put("log", this.log);
    return new Response(null, { status: 204 });
  }
}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/verify/eddsa") return json(404, { error: "not_found" });
    const [n, period] = (env.ANON_RATE ?? "100/day").split("/");
    const ms = PERIODS[period[0]];
    const ip = req.headers.get("CF-Connecting-IP") ?? "unknown";
    const stub = env.LIMITER.get(env.LIMITER.idFromName(`anon:${ip}`));
    const verdict = await stub.fetch(`https://limiter/?n=${n}&ms=${ms}`);
    if (verdict.status === 429) {
      const wait = verdict.headers.get("Retry-After");
      return json(429, { detail: `Request was throttled. Expected available in ${wait} seconds.` }, { "Retry-After": wait });
    }
    let body;
    try {
      body = await req.json();
    } catch {
      return json(400, { error: "bad_request" });
    }
    try {
      await jwtVerify(body.token, await edKey(env), { algorithms: ["EdDSA"] });
      return json(200, {});
    } catch (e) {
      return json(401, { error: "invalid_token", detail: String(e?.code ?? e) });
    }
  },
};
