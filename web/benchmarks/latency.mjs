// Batch-1 latency of the JavaScript runtime in node (onnxruntime-web WASM, one thread) on an export.
//   node benchmarks/latency.mjs EXPORT_DIR SENTENCES.txt [REPEATS]   -> one JSON line
// "cold": the first pass, each token's hash vector computed on first sight; "warm": later passes.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { loadExportDirectory } from "../src/node.js";

const [directory, sentencesFile, repeats = "3"] = process.argv.slice(2);
const sentences = readFileSync(sentencesFile, "utf-8").split("\n").filter(Boolean);
const quantile = (values, q) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];
const started = performance.now();
const model = await loadExportDirectory(directory);
const loadMs = performance.now() - started;
const passes = [];
for (let pass = 0; pass < Number(repeats); pass++) {
  const times = [];
  for (const sentence of sentences) {
    const t0 = performance.now();
    await model.predict([sentence]);
    times.push(performance.now() - t0);
  }
  passes.push(times);
}
const warm = passes.slice(1).flat();
console.log(JSON.stringify({
  load_ms: loadMs, sentences: sentences.length,
  cold_median_ms: quantile(passes[0], 0.5), cold_p95_ms: quantile(passes[0], 0.95),
  warm_median_ms: quantile(warm, 0.5), warm_p95_ms: quantile(warm, 0.95),
}));
