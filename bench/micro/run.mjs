// Runs the micro-benchmark cases compiled to wasm32 (bench/micro, built by `cargo xtask bench` with
// wasm-bindgen --target nodejs) under Node's V8, the engine workerd embeds.
// usage: node run.mjs <dir with micro_cases.js> <seconds per case>   → JSON on stdout
import { createRequire } from "node:module";
import path from "node:path";

const [dir, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 2);
const wasm = createRequire(import.meta.url)(path.resolve(dir, "micro_cases.js"));

function batch(name, iterations) {
  const t0 = process.hrtime.bigint();
  const right = wasm.run(name, iterations);
  const ns = Number(process.hrtime.bigint() - t0);
  if (right !== BigInt(iterations) && right !== iterations) {
    throw new Error(`${name}: ${right} of ${iterations} answers were right`);
  }
  return ns;
}

const results = [];
for (const name of wasm.cases()) {
  // Calibrate a batch to ~20 ms, warm up (Liftoff → TurboFan) for a quarter of the time,
  // then time batches; the median batch gives ns per operation.
  let iterations = 1;
  while (batch(name, iterations) < 20e6 && iterations < 1 << 24) iterations *= 2;
  const warmUntil = Date.now() + (seconds * 1000) / 4;
  while (Date.now() < warmUntil) batch(name, iterations);
  const perOp = [];
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until || perOp.length < 5) perOp.push(batch(name, iterations) / iterations);
  perOp.sort((a, b) => a - b);
  results.push({ name, ns_per_op: perOp[perOp.length >> 1], batches: perOp.length, iterations_per_batch: iterations });
}
console.log(JSON.stringify({ runtime: `node ${process.version} (V8 ${process.versions.v8})`, cases: results }));
