import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import * as ort from "onnxruntime-web";

import { ExportedModel, parseNpy } from "../src/model.js";
import { loadExportDirectory } from "../src/node.js";
import { REFERENCE_DIR, reference, SKIP } from "../support/reference.js";

test("fp32 logits are within 1e-4 of Python's on every sentence (onnxruntime-web, WASM)", { skip: SKIP }, async () => {
  const model = await loadExportDirectory(join(REFERENCE_DIR, "fp32"));
  const logits = await model.logits(reference.sentences);
  const worst = Math.max(...logits.flatMap((row, i) => row.map((x, j) => Math.abs(x - reference.logits.fp32[i][j]))));
  console.log(`# fp32: max |JS - Python| logit ${worst.toExponential(2)} over ${logits.length} sentences`);
  assert.ok(reference.sentences.length >= 50);
  assert.ok(worst < 1e-4, `max |difference| ${worst}`);
});

test("int8 labels agree with Python's on >= 99.5% of sentences", { skip: SKIP }, async () => {
  const model = await loadExportDirectory(join(REFERENCE_DIR, "int8"));
  const logits = await model.logits(reference.sentences);
  const argmax = (row) => row.indexOf(Math.max(...row));
  const agree = logits.filter((row, i) => argmax(row) === argmax(reference.logits.int8[i])).length / logits.length;
  const worst = Math.max(...logits.flatMap((row, i) => row.map((x, j) => Math.abs(x - reference.logits.int8[i][j]))));
  console.log(`# int8: labels agree on ${(100 * agree).toFixed(1)}%, max |JS - Python| logit ${worst.toExponential(2)}`);
  assert.ok(agree >= 0.995);
  const predictions = await model.predict(["a gorgeous, witty film", "a dull, lifeless mess"]);
  assert.deepEqual(predictions.map((p) => p.label), ["fresh", "rotten"]);
  assert.ok(Math.abs(Object.values(predictions[0].probabilities).reduce((a, b) => a + b) - 1) < 1e-9);
});

test("an export with a tampered hash seed is refused at load", { skip: SKIP }, async () => {
  const directory = join(REFERENCE_DIR, "int8");
  const read = async (name) => {
    const bytes = new Uint8Array(readFileSync(join(directory, name)));
    if (name !== "export.json") return bytes;
    const document = JSON.parse(new TextDecoder().decode(bytes));
    document.hash.seed = 3;
    return new TextEncoder().encode(JSON.stringify(document));
  };
  await assert.rejects(ExportedModel.load(read, ort), /do not reproduce the export's test vector/);
});

test("a float32 .npy word table reads as numpy wrote it", { skip: SKIP }, () => {
  const { shape, data } = parseNpy(new Uint8Array(readFileSync(join(REFERENCE_DIR, reference.npy.file))));
  assert.deepEqual(shape, reference.npy.shape);
  assert.deepEqual(Array.from(data), reference.npy.values.map(Math.fround));
});
