// The EELBERT n-gram hash in JavaScript, bit-identical to runtime/eelbert_runtime/hashing.py (tested on
// the export's test vectors and on thousands of vocabulary tokens): a token is marked (^play$, ##ing -> ing$),
// cut into character n-grams (code points, not UTF-16 units), each n-gram's UTF-8 bytes get a keyed 64-bit
// BLAKE2b (the seed is the salt), the hash is expanded into `dim` values by splitmix64 on a counter, and
// the token's vector is the float32 mean (or sum) of its n-grams' vectors, accumulated in order.

const MASK64 = (1n << 64n) - 1n;
const IV = [
  0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n,
];
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4], [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13], [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11], [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5], [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;
const MIX_1 = 0xbf58476d1ce4e5b9n;
const MIX_2 = 0x94d049bb133111ebn;
const SPECIAL_TOKEN_BODY = /^\[[^\[\]]+\]$/u;
// Python's str.isspace(), which `\s` in the Python pattern follows (JavaScript's \s differs on a few).
const PYTHON_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const encoder = new TextEncoder();

const rotr = (x, n) => ((x >> n) | (x << (64n - n))) & MASK64;

function compress(h, block, counter, last) {
  const m = new Array(16);
  const view = new DataView(block.buffer, block.byteOffset, 128);
  for (let i = 0; i < 16; i++) m[i] = view.getBigUint64(i * 8, true);
  const v = [...h, ...IV];
  v[12] ^= counter & MASK64;
  v[13] ^= counter >> 64n;
  if (last) v[14] ^= MASK64;
  const g = (a, b, c, d, x, y) => {
    v[a] = (v[a] + v[b] + x) & MASK64; v[d] = rotr(v[d] ^ v[a], 32n);
    v[c] = (v[c] + v[d]) & MASK64; v[b] = rotr(v[b] ^ v[c], 24n);
    v[a] = (v[a] + v[b] + y) & MASK64; v[d] = rotr(v[d] ^ v[a], 16n);
    v[c] = (v[c] + v[d]) & MASK64; v[b] = rotr(v[b] ^ v[c], 63n);
  };
  for (let round = 0; round < 12; round++) {
    const s = SIGMA[round % 10];
    g(0, 4, 8, 12, m[s[0]], m[s[1]]); g(1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(2, 6, 10, 14, m[s[4]], m[s[5]]); g(3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(0, 5, 10, 15, m[s[8]], m[s[9]]); g(1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(2, 7, 8, 13, m[s[12]], m[s[13]]); g(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/** BLAKE2b with an 8-byte digest and `seed` as the 16-byte little-endian salt: Python's
 * hashlib.blake2b(data, digest_size=8, salt=seed.to_bytes(16, "little")), read as a little-endian integer. */
export function hashNgram(ngram, seed = 0n) {
  const data = encoder.encode(ngram);
  const salt = BigInt(seed);
  const h = [...IV];
  h[0] ^= 0x01010000n ^ 8n; // depth 1, fanout 1, no key, 8-byte digest
  h[4] ^= salt & MASK64; // salt bytes 0..7; bytes 8..15 are zero (a seed is below 2**64)
  h[5] ^= salt >> 64n;
  const blocks = Math.max(1, Math.ceil(data.length / 128));
  for (let b = 0; b < blocks; b++) {
    const block = new Uint8Array(128);
    block.set(data.subarray(b * 128, b * 128 + 128));
    const last = b === blocks - 1;
    compress(h, block, BigInt(last ? data.length : (b + 1) * 128), last);
  }
  return h[0];
}

/** Row i, value j = splitmix64(hash + (j+1) * gamma) mapped to [-1, 1) (top 24 bits) or {-1, 0, 1}. */
export function expandHash(hash, dim, values = "uniform") {
  const out = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    let z = (hash + BigInt(j + 1) * GOLDEN_GAMMA) & MASK64;
    z ^= z >> 30n; z = (z * MIX_1) & MASK64;
    z ^= z >> 27n; z = (z * MIX_2) & MASK64;
    z ^= z >> 31n;
    out[j] = values === "ternary" ? Number((z >> 32n) % 3n) - 1 : Number(z >> 40n) * 2 ** -23 - 1;
  }
  return out;
}

export function isSpecialToken(token) {
  return SPECIAL_TOKEN_BODY.test(token) && !PYTHON_SPACE.test(token);
}

export function markToken(token) {
  if (token.startsWith("##") && token.length > 2) return `${token.slice(2)}$`;
  return `^${token}$`;
}

/** The n-grams whose vectors pool into `token`'s vector (repeats kept, in order). */
export function tokenNgrams(token, settings) {
  if (isSpecialToken(token)) return [token];
  const marked = markToken(token);
  if (settings.kind === "token") return [marked];
  const chars = Array.from(marked);
  const grams = [];
  for (let n = settings.ngram_min; n <= settings.ngram_max; n++) {
    for (let i = 0; i + n <= chars.length; i++) grams.push(chars.slice(i, i + n).join(""));
  }
  return grams.length ? grams : [marked];
}

/** The pooled hash vector of one token string, float32 throughout, as the Python runtime computes it. */
export function tokenVector(token, dim, settings, cache = new Map()) {
  const grams = tokenNgrams(token, settings);
  const pooled = new Float32Array(dim);
  const seed = BigInt(settings.seed ?? 0);
  for (const gram of grams) {
    let vector = cache.get(gram);
    if (vector === undefined) {
      vector = expandHash(hashNgram(gram, seed), dim, settings.values ?? "uniform");
      cache.set(gram, vector);
    }
    for (let j = 0; j < dim; j++) pooled[j] += vector[j]; // each sum rounded to float32, in order, as numpy does
  }
  if ((settings.pooling ?? "mean") === "mean") for (let j = 0; j < dim; j++) pooled[j] /= grams.length;
  const scale = Math.fround(settings.scale ?? 1);
  if (scale !== 1) for (let j = 0; j < dim; j++) pooled[j] *= scale;
  return pooled;
}

const HASH_DEFAULTS = { kind: "ngram", ngram_min: 1, ngram_max: 3, seed: 0, values: "uniform", pooling: "mean", scale: 1 };

/** The export's hash settings with defaults, refused when they are not a hash (kind "learned"). */
export function hashSettings(raw) {
  const settings = { ...HASH_DEFAULTS, ...raw };
  if (!["ngram", "token"].includes(settings.kind)) throw new Error(`hash kind ${JSON.stringify(settings.kind)} is not a hash this runtime computes`);
  return settings;
}

/** Throws unless this runtime reproduces every test vector of export.json (a tampered seed, n-gram range or
 * a different hash would otherwise give confident, wrong predictions). */
export function checkTestVectors(document) {
  const settings = hashSettings(document.hash);
  for (const vector of document.test_vectors ?? []) {
    const computed = tokenVector(vector.string, document.hidden, settings);
    vector.first_values.forEach((expected, j) => {
      if (Math.abs(computed[j] - expected) > 1e-6 + 1e-5 * Math.abs(expected)) {
        throw new Error(`the hash settings do not reproduce the export's test vector for ${JSON.stringify(vector.string)}`);
      }
    });
  }
  return settings;
}
