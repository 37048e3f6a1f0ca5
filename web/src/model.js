// An `eelbert export` in JavaScript: the compact vocabulary and WordPiece settings, the hash table computed
// per token on demand (proven against the export's test vectors at load), and the ONNX graph through
// onnxruntime-web. Environment-free: the caller passes how to read a file of the export (fetch in a page,
// fs in node) and the onnxruntime module, so the same code runs in a web worker and under node's test runner.

import { checkTestVectors, tokenVector } from "./hash.js";
import { WordPieceTokenizer } from "./wordpiece.js";

const decoder = new TextDecoder("utf-8", { fatal: true });

function exportProblem(document) {
  if (document.format !== 2) return `export format ${JSON.stringify(document.format)}: this runtime reads format 2 (re-export with this eelbert)`;
  if (!["classification", "regression"].includes(document.type)) return `'type' must be classification or regression`;
  if (!Array.isArray(document.labels) || document.labels.length < 1) return "'labels' must list the classes";
  if (!Number.isInteger(document.max_seq_len) || document.max_seq_len < 2) return "'max_seq_len' must be a whole number >= 2";
  if (!Number.isInteger(document.hidden) || document.hidden < 1) return "'hidden' must be a whole number >= 1";
  if (!document.wordpiece) return "the tokenizer must be a vocab.txt with 'wordpiece' settings (this export ships tokenizer.json)";
  if ((document.hash == null) === (document.word_table == null)) return "exactly one of 'hash' and 'word_table' must be set";
  return null;
}

/** A little-endian float32 C-order .npy array (a BERT export's word table). */
export function parseNpy(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  if (!header.includes("'<f4'") || header.includes("'fortran_order': True")) throw new Error("the word table must be little-endian float32 in C order");
  const shape = header.match(/'shape': \((\d+), (\d+)\)/).slice(1).map(Number);
  const data = new Float32Array(bytes.slice(start + headerLength).buffer, 0, shape[0] * shape[1]);
  return { shape, data };
}

export class ExportedModel {
  constructor(document, tokenizer, session, wordVector, bytesRead) {
    Object.assign(this, { document, tokenizer, session, wordVector, bytesRead });
    this.labels = document.labels;
    this.regression = document.type === "regression";
    this.hidden = document.hidden;
    this.padId = tokenizer.ids.get(document.wordpiece.pad_token);
  }

  /** @param readFile (name) => Promise<Uint8Array>  @param ort the onnxruntime-web module  @param sessionOptions for ort */
  static async load(readFile, ort, sessionOptions = {}) {
    let bytesRead = 0;
    const read = async (name) => {
      const bytes = await readFile(name);
      bytesRead += bytes.byteLength;
      return bytes;
    };
    const document = JSON.parse(decoder.decode(await read("export.json")));
    const problem = exportProblem(document);
    if (problem) throw new Error(`export.json: ${problem}`);
    const tokenizer = WordPieceTokenizer.fromVocabText(decoder.decode(await read(document.tokenizer)), document.wordpiece);
    let wordVector;
    if (document.hash) {
      const settings = checkTestVectors(document);
      const ngramCache = new Map();
      const vectors = new Map();
      wordVector = (id) => {
        let vector = vectors.get(id);
        if (vector === undefined) {
          vector = tokenVector(tokenizer.vocabulary[id], document.hidden, settings, ngramCache);
          vectors.set(id, vector);
        }
        return vector;
      };
    } else {
      const { shape, data } = parseNpy(await read(document.word_table));
      if (shape[0] !== tokenizer.vocabulary.length || shape[1] !== document.hidden) {
        throw new Error(`the word table is [${shape}], the vocabulary and export.json need [${tokenizer.vocabulary.length}, ${document.hidden}]`);
      }
      wordVector = (id) => data.subarray(id * shape[1], (id + 1) * shape[1]);
    }
    const session = await ort.InferenceSession.create(await read(document.model), { executionProviders: ["wasm"], ...sessionOptions });
    const model = new ExportedModel(document, tokenizer, session, wordVector, bytesRead);
    model.ort = ort;
    return model;
  }

  /** Token ids and type ids of each text (and its pair), cut to the export's max_seq_len. */
  encode(texts, pairs = null) {
    return texts.map((text, i) => this.tokenizer.encode(text, pairs ? pairs[i] : null, this.document.max_seq_len));
  }

  /** Logits [texts, outputs] as rows of numbers; batches are padded to their longest text. */
  async logits(texts, pairs = null) {
    const encodings = this.encode(texts, pairs);
    const width = Math.max(...encodings.map((e) => e.ids.length));
    const batch = encodings.length;
    const embeds = new Float32Array(batch * width * this.hidden);
    const mask = new BigInt64Array(batch * width);
    const types = new BigInt64Array(batch * width);
    encodings.forEach((encoding, row) => {
      for (let position = 0; position < width; position++) {
        const id = position < encoding.ids.length ? encoding.ids[position] : this.padId;
        embeds.set(this.wordVector(id), (row * width + position) * this.hidden);
        if (position < encoding.ids.length) {
          mask[row * width + position] = 1n;
          types[row * width + position] = BigInt(encoding.typeIds[position]);
        }
      }
    });
    const { Tensor } = this.ort;
    const outputs = await this.session.run({
      inputs_embeds: new Tensor("float32", embeds, [batch, width, this.hidden]),
      attention_mask: new Tensor("int64", mask, [batch, width]),
      token_type_ids: new Tensor("int64", types, [batch, width]),
    });
    const logits = outputs.logits;
    const columns = logits.dims[1];
    return Array.from({ length: batch }, (_, row) => Array.from(logits.data.subarray(row * columns, (row + 1) * columns)));
  }

  /** For classification the arg-max label and the softmax over labels; for regression the score. */
  async predict(texts, pairs = null) {
    if (!texts.length) return [];
    return (await this.logits(texts, pairs)).map((row) => {
      if (this.regression) return { label: row[0], probabilities: null };
      const top = Math.max(...row);
      const exps = row.map((x) => Math.exp(x - top));
      const total = exps.reduce((a, b) => a + b, 0);
      const probabilities = Object.fromEntries(this.labels.map((label, i) => [label, exps[i] / total]));
      return { label: this.labels[row.indexOf(top)], probabilities };
    });
  }
}
