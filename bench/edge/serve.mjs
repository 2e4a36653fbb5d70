// Serves one Worker on workerd through the Miniflare API: workerd itself listens on the port
// (no Node proxy in front, unlike `wrangler dev`). Used by the benchmark (origin/benches/system.rs).
// usage: node serve.mjs '<json>' with {modules, modulesRoot, port, compatibilityDate, bindings,
// durableObjects?}; prints "ready <url> <workerd pid>" once it answers, stops on SIGTERM.
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { execFileSync } from "node:child_process";

const cfg = JSON.parse(process.argv[2]);
// Miniflare 5 takes a new options shape; the v4 one (what its README documents) is converted.
const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: cfg.port,
    // The benchmark sets CF-Connecting-IP itself, as Cloudflare's edge does.
    stripCfConnectingIp: false,
    // [{type: "ESModule" | "CompiledWasm", path}], the entry module first.
    modules: cfg.modules,
    modulesRoot: cfg.modulesRoot,
    compatibilityDate: cfg.compatibilityDate,
    bindings: cfg.bindings ?? {},
    durableObjects: cfg.durableObjects ?? {},
  }),
);
const url = await mf.ready;
// workerd is a child of this process: its CPU time and RSS are what the benchmark reads.
const children = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)]).toString();
const workerd = children.split("\n").map((l) => l.trim().split(/\s+/)).find(([, comm]) => comm?.startsWith("workerd"));
console.log(`ready ${url} ${workerd ? workerd[0] : 0}`);
const stop = async () => { await mf.dispose(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
