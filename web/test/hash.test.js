import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { checkTestVectors, hashNgram, tokenNgrams, tokenVector } from "../src/hash.js";
import { REFERENCE_DIR, reference, SKIP } from "../support/reference.js";

const SETTINGS = { kind: "ngram", ngram_min: 1, ngram_max: 3, seed: 0, values: "uniform", pooling: "mean", scale: 1 };

test("BLAKE2b-64 with the seed as salt gives Python's hashes (short, multi-block, UTF-8, largest seed)", () => {
  // hashlib.blake2b(s.encode(), digest_size=8, salt=seed.to_bytes(16, "little")), little-endian
  assert.equal(hashNgram("^pl", 0n), 14371815549708592006n);
  assert.equal(hashNgram("", 5n), 16255693484243548681n);
  assert.equal(hashNgram("x".repeat(128), 0n), 154496675747142800n);
  assert.equal(hashNgram("é".repeat(100), 2n ** 64n - 1n), 6290984475996199540n);
  assert.equal(hashNgram("🎬", 12345n), 3304462488259650736n);
});

test("n-grams are cut on code points, specials stay whole, continuations have no word start", () => {
  assert.deepEqual(tokenNgrams("ab", SETTINGS), ["^", "a", "b", "$", "^a", "ab", "b$", "^ab", "ab$"]);
  assert.deepEqual(tokenNgrams("##🎬", { ...SETTINGS, ngram_min: 2, ngram_max: 2 }), ["🎬$"]);
  assert.deepEqual(tokenNgrams("[CLS]", SETTINGS), ["[CLS]"]);
  assert.deepEqual(tokenNgrams("play", { ...SETTINGS, kind: "token" }), ["^play$"]);
  assert.deepEqual(tokenNgrams("a", { ...SETTINGS, ngram_min: 5, ngram_max: 5 }), ["^a$"]);
});

test("a token vector is Python's, value for value", () => {
  assert.deepEqual(Array.from(tokenVector("play", 4, SETTINGS)), [0.013643089681863785, -0.08158792555332184, -0.15283918380737305, 0.13942521810531616]);
});

test("ternary values, sum pooling, a scale, a large seed and whole-token hashing match Python too", () => {
  // hash_vectors_numpy(["naïve"], 6, HashSettings(values="ternary", pooling="sum", scale=0.5, seed=2**63+5, ngram_min=2, ngram_max=4))
  const ternary = { kind: "ngram", ngram_min: 2, ngram_max: 4, seed: 2n ** 63n + 5n, values: "ternary", pooling: "sum", scale: 0.5 };
  assert.deepEqual(Array.from(tokenVector("naïve", 6, ternary)), [-1.5, 0, 0, 0, 1.5, 2]);
  const token = { ...SETTINGS, kind: "token", seed: 123456789012 };
  assert.deepEqual(Array.from(tokenVector("##ing", 5, token)),
    [0.5475671291351318, 0.025542020797729492, -0.8348844051361084, -0.1279827356338501, 0.6744846105575562]);
});

test("the export's own test vectors hold, and a tampered seed is caught", { skip: SKIP }, () => {
  const document = JSON.parse(readFileSync(join(REFERENCE_DIR, "int8", "export.json"), "utf-8"));
  assert.ok(document.test_vectors.length >= 5);
  checkTestVectors(document);
  assert.throws(() => checkTestVectors({ ...document, hash: { ...document.hash, seed: 7 } }), /do not reproduce the export's test vector/);
  assert.throws(() => checkTestVectors({ ...document, hash: { ...document.hash, ngram_max: 5 } }), /do not reproduce/);
});

test("JS hash == Python hash, bit for bit, on thousands of vocabulary tokens and Unicode strings", { skip: SKIP }, () => {
  const { strings, dim, settings, vectors_f32_base64: encoded } = reference.hash;
  const bytes = Buffer.from(encoded, "base64");
  const expected = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  assert.equal(expected.length, strings.length * dim);
  const cache = new Map();
  let differing = 0;
  strings.forEach((string, row) => {
    const got = tokenVector(string, dim, { ...SETTINGS, ...settings }, cache);
    for (let j = 0; j < dim; j++) if (got[j] !== expected[row * dim + j]) differing += 1;
  });
  assert.equal(differing, 0, `${differing} values differ`);
  assert.ok(strings.length >= 3000);
});
