// The capacity model (docs/capacity.md), computed from the benchmark's measurements in
// bench/results/bench.json: per-request CPU at the edge and the origin, Durable Object calls and
// writes per request from the throttle design, PostgreSQL statements per request from the code
// paths, and Cloudflare's published prices. `node bench/capacity.mjs` rewrites the document;
// `--check` fails if it is not what the current bench.json gives (`cargo xtask test` runs that).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bench = JSON.parse(readFileSync(join(root, "bench/results/bench.json"), "utf8"));
const out = join(root, "docs/capacity.md");

// The load to plan for.
const LOAD = { users: 10e6, verify: 50_000, login: 1_000, reset: 100 };
const MONTH_S = 30 * 86_400;

// Cloudflare Workers Paid and Durable Objects (key-value storage backend), published prices:
// https://developers.cloudflare.com/workers/platform/pricing/ and
// https://developers.cloudflare.com/durable-objects/platform/pricing/
const PRICE = {
  base: 5, // USD per month
  requests: { included: 10e6, perMillion: 0.3 },
  cpuMs: { included: 30e6, perMillion: 0.02 },
  doRequests: { included: 1e6, perMillion: 0.15 },
  doWrites: { included: 1e6, perMillion: 1.0 },
};

// The throttle design (shared::lease, docs/security.md): a leased scope costs one object call
// and one write per lease; a lease is a 32nd of what is left in the window, 1 to 32 permits.
// "Busy": keys with most of their window left (full leases); "default anon": 100/day, leases of
// at most 3.
const LEASE = { busy: 32, defaultAnon: 3, defaultUser: 31 };

// PostgreSQL statements (round trips) per request, from the origin's code paths
// (origin/src/services): login = by_email + the attempt's insert and decision + open_family;
// me = by_id; refresh = BEGIN, lock, by_id, mark_used, insert, COMMIT; reset request = BEGIN,
// by_email, enqueue, audit, COMMIT, and the sender's BEGIN, claim, mark_sent, COMMIT.
const PG = { login: 4, me: 1, refresh: 6, reset: 9, verify: 0 };

const find = (system, workload) => bench.workloads.find((w) => w.system === system && w.workload === workload);
const ours = (w) => find("ours (workerd)", w);
const cpu = (row) => row?.cpu_ms_per_request ?? null;
const fmt = (x, d = 0) =>
  x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const usd = (x) => "$" + fmt(x, 0);
const billed = (units, { included, perMillion }) => (Math.max(0, units - included) / 1e6) * perMillion;

const edge = {
  verify: cpu(ours("POST /jwt/verify/")),
  me: cpu(ours("GET /me/")),
  login: cpu(ours("POST /jwt/create/ (login)")),
  jwks: cpu(ours("GET /.well-known/jwks.json (floor)")),
};
// Not benchmarked on its own: the reset request costs the edge what a login does (three limiter
// checks and one OtpStore call instead of two checks and one origin call): the login's figure.
edge.reset = edge.login;
const origin = {
  login: cpu(find("origin", "login (internal)")),
  me: cpu(find("origin", "me (internal)")),
  refresh: cpu(find("origin", "refresh rotation (internal)")),
  register: cpu(find("origin", "register (internal)")),
};

// Durable Object requests and writes per request of each route.
const doPer = {
  verifyBusy: { requests: 1 / LEASE.busy, writes: 1 / LEASE.busy },
  verifyDefault: { requests: 1 / LEASE.defaultAnon, writes: 1 / LEASE.defaultAnon },
  me: { requests: 1 / LEASE.defaultUser, writes: 1 / LEASE.defaultUser },
  // anon (leased) + auth (exact)
  login: { requests: 1 / LEASE.defaultAnon + 1, writes: 1 / LEASE.defaultAnon + 1 },
  // anon (leased) + password_reset per network and per email (exact) + OtpStore issue (a put
  // and its clean-up alarm)
  reset: { requests: 1 / LEASE.defaultAnon + 3, writes: 1 / LEASE.defaultAnon + 2 + 2 },
};

const perSecond = {
  requests: LOAD.verify + LOAD.login + LOAD.reset,
  edgeCpuMs: LOAD.verify * edge.verify + LOAD.login * edge.login + LOAD.reset * edge.reset,
  doRequestsBusy: LOAD.verify * doPer.verifyBusy.requests + LOAD.login * doPer.login.requests + LOAD.reset * doPer.reset.requests,
  doRequestsDefault: LOAD.verify * doPer.verifyDefault.requests + LOAD.login * doPer.login.requests + LOAD.reset * doPer.reset.requests,
  doWritesBusy: LOAD.verify * doPer.verifyBusy.writes + LOAD.login * doPer.login.writes + LOAD.reset * doPer.reset.writes,
  doWritesDefault: LOAD.verify * doPer.verifyDefault.writes + LOAD.login * doPer.login.writes + LOAD.reset * doPer.reset.writes,
  // The reset request's origin work (a lookup, the outbox row, the audit row, then the send)
  // is not measured alone: the refresh rotation's, a write transaction of the same size.
  originCpuMs: LOAD.login * origin.login + LOAD.reset * origin.refresh,
  pgStatements: LOAD.login * PG.login + LOAD.reset * PG.reset,
};
const month = Object.fromEntries(Object.entries(perSecond).map(([k, v]) => [k, v * MONTH_S]));
const cost = {
  requests: billed(month.requests, PRICE.requests),
  cpu: billed(month.edgeCpuMs, PRICE.cpuMs),
  doRequestsBusy: billed(month.doRequestsBusy, PRICE.doRequests),
  doRequestsDefault: billed(month.doRequestsDefault, PRICE.doRequests),
  doWritesBusy: billed(month.doWritesBusy, PRICE.doWrites),
  doWritesDefault: billed(month.doWritesDefault, PRICE.doWrites),
};
const originCores = perSecond.originCpuMs / 1_000;
const cores = bench.cores;
// PostgreSQL on the benchmark machine: pgbench -S transactions per second (one statement each).
const pgCeiling = bench.pgbench_select_tps;

// Storage: a user row with its indexes (email, lower(email), username, pk) ~ 0.5 KB; the audit
// log (one row per login, reset, refresh reuse, …, ~0.2 KB with its index) kept
// AUDIT_RETENTION_DAYS (365 by default); refresh tokens purged by the janitor after expiry
// (a family and a token per login, a token per refresh, one day).
const STORAGE = { userKb: 0.5, auditKb: 0.2, tokenKb: 0.25, retentionDays: 365 };
const usersGb = (LOAD.users * STORAGE.userKb) / 1e6;
const auditRowsPerDay = (LOAD.login + LOAD.reset) * 86_400;
const auditGb = (auditRowsPerDay * STORAGE.retentionDays * STORAGE.auditKb) / 1e6;
const tokensGb = (LOAD.login * 86_400 * 2 * STORAGE.tokenKb) / 1e6;

const perThousand = (x) => fmt(x * 1_000, 0);
const doc = `# Capacity model

Computed by \`node bench/capacity.mjs\` from \`bench/results/bench.json\` (the benchmark run of
${bench.cores} cores, concurrency ${bench.concurrency}, ${bench.seconds_per_workload} s per workload; \`cargo xtask
bench\` writes it). Every figure below follows from those measurements and the constants at the
top of the script; rerun the benchmark and the script to update it (\`cargo xtask test\` checks
that this file is current).

The load: **${fmt(LOAD.users)} users, ${fmt(LOAD.verify)} verifies/s, ${fmt(LOAD.login)} logins/s,
${fmt(LOAD.reset)} password resets/s**.

## Measured per-request costs

| route | edge CPU ms (workerd, incl. its Durable Objects) | Durable Object requests per 1,000 | DO writes per 1,000 | origin CPU ms | PostgreSQL statements |
|---|---:|---:|---:|---:|---:|
| \`POST /jwt/verify/\` (busy client: full leases) | ${fmt(edge.verify, 3)} | ${perThousand(doPer.verifyBusy.requests)} | ${perThousand(doPer.verifyBusy.writes)} | – | ${PG.verify} |
| \`POST /jwt/verify/\` (default \`anon\` 100/day: leases of 3) | ${fmt(edge.verify, 3)} | ${perThousand(doPer.verifyDefault.requests)} | ${perThousand(doPer.verifyDefault.writes)} | – | ${PG.verify} |
| \`GET /me/\` | ${fmt(edge.me, 3)} | ${perThousand(doPer.me.requests)} | ${perThousand(doPer.me.writes)} | ${fmt(origin.me, 3)} | ${PG.me} |
| \`POST /jwt/create/\` (login) | ${fmt(edge.login, 3)} | ${perThousand(doPer.login.requests)} | ${perThousand(doPer.login.writes)} | ${fmt(origin.login, 3)} | ${PG.login} |
| \`POST /password/reset/\` | ${fmt(edge.reset, 3)} (login's, not measured alone) | ${perThousand(doPer.reset.requests)} | ${perThousand(doPer.reset.writes)} | ${fmt(origin.refresh, 3)} (refresh rotation's, not measured alone) | ${PG.reset} |
| \`GET /.well-known/jwks.json\` (floor) | ${fmt(edge.jwks, 3)} | 0 | 0 | – | 0 |

Origin refresh rotation: ${fmt(origin.refresh, 3)} ms CPU, ${PG.refresh} statements; sign-up: ${fmt(origin.register, 3)} ms (argon2id).
The edge's CPU was measured on a local workerd, where the Durable Objects run in the same
process: on Cloudflare the objects' CPU is not billed as the Worker's, so the Worker CPU below is
an upper bound.

## What the load needs

| part | per second | per month (30 days) | cost per month |
|---|---:|---:|---:|
| Worker requests | ${fmt(perSecond.requests)} | ${fmt(month.requests / 1e9, 1)} billion | ${usd(cost.requests)} |
| Worker CPU | ${fmt(perSecond.edgeCpuMs)} CPU-ms | ${fmt(month.edgeCpuMs / 1e9, 1)} billion CPU-ms | ${usd(cost.cpu)} |
| Durable Object requests (busy clients / default \`anon\`) | ${fmt(perSecond.doRequestsBusy)} / ${fmt(perSecond.doRequestsDefault)} | ${fmt(month.doRequestsBusy / 1e9, 2)} / ${fmt(month.doRequestsDefault / 1e9, 2)} billion | ${usd(cost.doRequestsBusy)} / ${usd(cost.doRequestsDefault)} |
| Durable Object writes (busy / default) | ${fmt(perSecond.doWritesBusy)} / ${fmt(perSecond.doWritesDefault)} | ${fmt(month.doWritesBusy / 1e9, 2)} / ${fmt(month.doWritesDefault / 1e9, 2)} billion | ${usd(cost.doWritesBusy)} / ${usd(cost.doWritesDefault)} |
| Workers Paid plan | | | ${usd(PRICE.base)} |
| origin CPU (argon2id dominates) | ${fmt(perSecond.originCpuMs)} CPU-ms | | **${fmt(originCores, 1)} cores** |
| PostgreSQL statements | ${fmt(perSecond.pgStatements)} | | ${fmt(perSecond.pgStatements / pgCeiling, 2)} of this machine's \`pgbench -S\` (${fmt(pgCeiling)}/s) |

Durable Object duration (128 MB per object while it is in memory) is not in the table: it
depends on how many distinct client networks and users are active at once, which the benchmark
does not measure. Each active throttle key keeps one object resident while it gets requests
(evicted after about 10 s idle), and leases make those requests rarer.

Storage: users ${fmt(usersGb, 1)} GB; refresh tokens (purged a day after expiry by the janitor)
${fmt(tokensGb, 1)} GB; the audit log, ${fmt(auditRowsPerDay / 1e6, 1)} million rows a day kept
${STORAGE.retentionDays} days, **${fmt(auditGb / 1e3, 1)} TB**. The audit log is the storage to plan
for: lower \`AUDIT_RETENTION_DAYS\`, or export it to cheaper storage, before that size.

## The first bottleneck, and how each part scales out

1. **Origin CPU, for argon2id** (${fmt(origin.login, 1)} ms of CPU per login, by design): ${fmt(LOAD.login)}
   logins/s need ${fmt(originCores, 1)} cores, i.e. ${fmt(Math.ceil(originCores / cores))} machines like the
   benchmark's (${cores} cores), before anything else is near its limit. The origin is stateless:
   add replicas behind the load balancer (docs/deploy.md: pool size × replicas under
   \`max_connections\`, or PgBouncer with \`DATABASE_STATEMENTS=unnamed\`); \`ARGON2_MAX_CONCURRENCY\`
   per replica at its core count.
2. **PostgreSQL**: ${fmt(perSecond.pgStatements)} statements/s of which most are small writes; one primary
   carries it (${fmt(perSecond.pgStatements / pgCeiling, 2)} of what this 2-core machine reads per
   second); \`/me\` and verify of refresh tokens are single-row reads that read replicas or a
   managed service's replicas can take. Storage is dominated by the audit log (above).
3. **The edge** scales with Cloudflare: Workers have no capacity to plan, only cost (above);
   the throttle's Durable Objects are one per key (client network, user, email), so they shard by
   key on their own, and a hot key costs one call per lease of up to 32 requests.
`;

// What follows the marker in docs/capacity.md is written by hand (the benchmark's command and
// the reading of its results) and kept as it is: only the model above it is generated.
const MARKER = "<!-- Written by hand below; \`node bench/capacity.mjs\` keeps it. -->\n";
const existing = (() => {
  try {
    return readFileSync(out, "utf8");
  } catch {
    return "";
  }
})();
const at = existing.indexOf(MARKER);
const handWritten = at < 0 ? "" : existing.slice(at + MARKER.length);
const whole = `${doc}\n${MARKER}${handWritten}`;

if (process.argv.includes("--check")) {
  if (at < 0 || existing !== whole) {
    console.error("docs/capacity.md is not what bench/results/bench.json gives: run `node bench/capacity.mjs`");
    process.exit(1);
  }
  console.log("docs/capacity.md is current");
} else {
  writeFileSync(out, whole);
  console.log(`wrote ${out}`);
}
