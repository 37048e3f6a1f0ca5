import assert from "node:assert/strict";
import { test } from "node:test";

import { normalize, preTokenize, truncateLongestFirst, WordPieceTokenizer } from "../src/wordpiece.js";
import { reference, SKIP } from "../support/reference.js";

const SETTINGS = {
  lowercase: true, strip_accents: null, clean_text: true, handle_chinese_chars: true, unk_token: "[UNK]",
  continuing_subword_prefix: "##", max_input_chars_per_word: 12, cls_token: "[CLS]", sep_token: "[SEP]", pad_token: "[PAD]",
  special_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
};
const VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##believ", "##able", "film", "!", "a", "é"];

test("BERT normalisation: controls dropped, spaces unified, CJK spaced, accents stripped, lowercased per character", () => {
  assert.equal(normalize("Crème\u0000\t\u200bBRÛLÉE", SETTINGS), "creme brulee");
  assert.equal(normalize("北京", SETTINGS), " 北  京 ");
  assert.equal(normalize("ΟΔΟΣ", SETTINGS), "οδοσ"); // no final sigma: tokenizers lowercases one character at a time
  assert.equal(normalize("Élan", { ...SETTINGS, lowercase: false }), "Élan");
  assert.equal(normalize("Élan", { ...SETTINGS, strip_accents: true, lowercase: false }), "Elan");
});

test("pre-tokenization splits on whitespace and isolates punctuation", () => {
  assert.deepEqual(preTokenize("don't stop—now!"), ["don", "'", "t", "stop", "—", "now", "!"]);
});

test("WordPiece: greedy longest match, [UNK] for a word that cannot be cut or is too long, specials in raw text", () => {
  const tokenizer = new WordPieceTokenizer(VOCABULARY, SETTINGS);
  assert.deepEqual(tokenizer.encode("Unbelievable film!").ids, [2, 5, 6, 7, 8, 9, 3]);
  assert.deepEqual(tokenizer.encode("unbelievablexx").ids, [2, 1, 3]);
  assert.deepEqual(tokenizer.encode("aaaaaaaaaaaaa").ids, [2, 1, 3]); // 13 characters > 12
  assert.deepEqual(tokenizer.encode("a[MASK]film").ids, [2, 10, 4, 8, 3]);
  assert.deepEqual(tokenizer.encode("a", "film").typeIds, [0, 0, 0, 1, 1]);
  assert.deepEqual(tokenizer.encode("a a a a a a", null, 4).ids, [2, 10, 10, 3]);
});

test("pair truncation follows tokenizers' longest_first (measured on tokenizers' own output)", () => {
  const cut = (n1, n2, budget) => truncateLongestFirst(new Array(n1).fill(0), new Array(n2).fill(1), budget).map((x) => x.length);
  assert.deepEqual(cut(3, 20, 8), [3, 5]);
  assert.deepEqual(cut(20, 5, 8), [4, 4]);
  assert.deepEqual(cut(10, 10, 9), [4, 5]);
  assert.deepEqual(cut(10, 9, 9), [5, 4]);
  assert.deepEqual(cut(20, 3, 9), [6, 3]);
});

test("token ids equal the Python runtime's on every sentence, single and paired", { skip: SKIP }, async () => {
  const { readFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { REFERENCE_DIR } = await import("../support/reference.js");
  const document = JSON.parse(readFileSync(join(REFERENCE_DIR, "fp32", "export.json"), "utf-8"));
  const tokenizer = WordPieceTokenizer.fromVocabText(readFileSync(join(REFERENCE_DIR, "fp32", document.tokenizer), "utf-8"), document.wordpiece);
  assert.ok(reference.sentences.length >= 50);
  reference.sentences.forEach((sentence, i) => {
    const got = tokenizer.encode(sentence, null, document.max_seq_len);
    assert.deepEqual(got.ids, reference.singles[i].ids, `sentence ${i}: ${JSON.stringify(sentence)}`);
    assert.deepEqual(got.typeIds, reference.singles[i].type_ids);
  });
  for (const { text, pair, ids, type_ids: typeIds } of reference.pairs) {
    const got = tokenizer.encode(text, pair, reference.pair_length);
    assert.deepEqual([got.ids, got.typeIds], [ids, typeIds], `pair ${JSON.stringify([text, pair])}`);
  }
});
