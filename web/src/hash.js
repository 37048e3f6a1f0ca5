// The EELBERT n-gram hash in JavaScript, bit-identical to runtime/eelbert_runtime/hashing.py (tested on
// the export's test vectors and on thousands of vocabulary tokens): a token is marked (^play$, ##ing -> ing$),
// cut into character n-grams (code points, not UTF-16 units), each n-gram's UTF-8 bytes get a keyed 64-bit
// BLAKE2b (the seed is the salt), the hash is expanded into `dim` values by splitmix64 on a counter, and
// the token's vector is the float32 mean (or sum) of its n-grams' vectors, accumulated in order.
// Python: runtime/eelbert_runtime/hashing.py.

// 64-bit words are pairs of unsigned 32-bit halves (no BigInt in the hot path: ~30x faster, same bits).
const IV32 = new Uint32Array([
  0xf3bcc908, 0x6a09e667, 0x84caa73b, 0xbb67ae85, 0xfe94f82b, 0x3c6ef372, 0x5f1d36f1, 0xa54ff53a,
  0xade682d1, 0x510e527f, 0x2b3e6c1f, 0x9b05688c, 0xfb41bd6b, 0x1f83d9ab, 0x137e2179, 0x5be0cd19,
]); // BLAKE2b's IV, (low, high) per word
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4], [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13], [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11], [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5], [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];
const TWO_32 = 0x100000000;
const GAMMA = [0x9e3779b9, 0x7f4a7c15]; // splitmix64 constants (Steele et al. 2014), (high, low)
const MIX_1 = [0xbf58476d, 0x1ce4e5b9];
const MIX_2 = [0x94d049bb, 0x133111eb];
const SPECIAL_TOKEN_BODY = /^\[[^\[\]]+\]$/u;
// Python's str.isspace(), which `\s` in the Python pattern follows (JavaScript's \s differs on a few).
const PYTHON_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const encoder = new TextEncoder();

const v = new Uint32Array(32);
const m = new Uint32Array(32);

function add64(a, b) { // v[a] += v[b] (64-bit, words a and b are low halves)
  const low = v[a] + v[b];
  v[a + 1] = v[a + 1] + v[b + 1] + (low >= TWO_32 ? 1 : 0);
  v[a] = low;
}

function add64Constant(a, low, high) {
  const sum = v[a] + low;
  v[a + 1] = v[a + 1] + high + (sum >= TWO_32 ? 1 : 0);
  v[a] = sum;
}

function mix(a, b, c, d, x, y) { // BLAKE2b's G on word pairs; rotations by 32, 24, 16, 63
  add64(a, b); add64Constant(a, m[x], m[x + 1]);
  let low = v[d] ^ v[a], high = v[d + 1] ^ v[a + 1];
  v[d] = high; v[d + 1] = low;
  add64(c, d);
  low = v[b] ^ v[c]; high = v[b + 1] ^ v[c + 1];
  v[b] = (low >>> 24) ^ (high << 8); v[b + 1] = (high >>> 24) ^ (low << 8);
  add64(a, b); add64Constant(a, m[y], m[y + 1]);
  low = v[d] ^ v[a]; high = v[d + 1] ^ v[a + 1];
  v[d] = (low >>> 16) ^ (high << 16); v[d + 1] = (high >>> 16) ^ (low << 16);
  add64(c, d);
  low = v[b] ^ v[c]; high = v[b + 1] ^ v[c + 1];
  v[b] = (high >>> 31) ^ (low << 1); v[b + 1] = (low >>> 31) ^ (high << 1);
}

function compress(h, block, counter, last) {
  for (let i = 0; i < 32; i++) m[i] = block[4 * i] | (block[4 * i + 1] << 8) | (block[4 * i + 2] << 16) | (block[4 * i + 3] << 24);
  v.set(h, 0);
  v.set(IV32, 16);
  v[24] ^= counter % TWO_32;
  v[25] ^= Math.floor(counter / TWO_32);
  if (last) { v[28] = ~v[28]; v[29] = ~v[29]; }
  for (let round = 0; round < 12; round++) {
    const s = SIGMA[round % 10];
    mix(0, 8, 16, 24, 2 * s[0], 2 * s[1]); mix(2, 10, 18, 26, 2 * s[2], 2 * s[3]);
    mix(4, 12, 20, 28, 2 * s[4], 2 * s[5]); mix(6, 14, 22, 30, 2 * s[6], 2 * s[7]);
    mix(0, 10, 20, 30, 2 * s[8], 2 * s[9]); mix(2, 12, 22, 24, 2 * s[10], 2 * s[11]);
    mix(4, 14, 16, 26, 2 * s[12], 2 * s[13]); mix(6, 8, 18, 28, 2 * s[14], 2 * s[15]);
  }
  for (let i = 0; i < 16; i++) h[i] ^= v[i] ^ v[i + 16];
}

/** BLAKE2b with an 8-byte digest and the seed as the 16-byte little-endian salt, as [high, low] halves. */
function hashWords(ngram, seedHigh, seedLow) {
  const data = encoder.encode(ngram);
  const h = new Uint32Array(IV32);
  h[0] ^= 0x01010000 ^ 8; // depth 1, fanout 1, no key, 8-byte digest
  h[8] ^= seedLow; // salt bytes 0..7; bytes 8..15 are zero (a seed is below 2**64)
  h[9] ^= seedHigh;
  const blocks = Math.max(1, Math.ceil(data.length / 128));
  const block = new Uint8Array(128);
  for (let b = 0; b < blocks; b++) {
    block.fill(0);
    block.set(data.subarray(b * 128, b * 128 + 128));
    const last = b === blocks - 1;
    compress(h, block, last ? data.length : (b + 1) * 128, last);
  }
  return [h[1], h[0]];
}

function seedHalves(seed) {
  const big = BigInt(seed);
  return [Number((big >> 32n) & 0xffffffffn), Number(big & 0xffffffffn)];
}

/** Python's hashlib.blake2b(s.encode(), digest_size=8, salt=seed.to_bytes(16, "little")), read little-endian. */
export function hashNgram(ngram, seed = 0n) {
  const [high, low] = hashWords(ngram, ...seedHalves(seed));
  return (BigInt(high) << 32n) | BigInt(low);
}

/** The low 64 bits of (ah, al) * (bh, bl), as [high, low]. */
function multiply64(ah, al, bh, bl) {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const middle = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const low = (((middle & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const carry = p11 + (p01 >>> 16) + (p10 >>> 16) + (middle >>> 16); // the high half of al * bl
  return [(carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0, low];
}

function expandWords(hashHigh, hashLow, dim, values, out) {
  for (let j = 0; j < dim; j++) {
    // z = hash + (j + 1) * gamma: (j + 1) * gamma's halves are exact doubles below 2**53
    const lowProduct = (j + 1) * GAMMA[1];
    let low = lowProduct % TWO_32;
    let high = ((j + 1) * GAMMA[0] + Math.floor(lowProduct / TWO_32)) % TWO_32;
    const sum = low + hashLow;
    high = (high + hashHigh + (sum >= TWO_32 ? 1 : 0)) >>> 0;
    low = sum >>> 0;
    low = (low ^ ((low >>> 30) | (high << 2))) >>> 0; high = (high ^ (high >>> 30)) >>> 0;
    [high, low] = multiply64(high, low, MIX_1[0], MIX_1[1]);
    low = (low ^ ((low >>> 27) | (high << 5))) >>> 0; high = (high ^ (high >>> 27)) >>> 0;
    [high, low] = multiply64(high, low, MIX_2[0], MIX_2[1]);
    low = (low ^ ((low >>> 31) | (high << 1))) >>> 0; high = (high ^ (high >>> 31)) >>> 0;
    out[j] = values === "ternary" ? (high % 3) - 1 : (high >>> 8) * 2 ** -23 - 1; // top 24 bits -> [-1, 1)
  }
  return out;
}

/** Row value j = splitmix64(hash + (j+1) * gamma) mapped to [-1, 1) (top 24 bits) or {-1, 0, 1}. */
export function expandHash(hash, dim, values = "uniform") {
  const big = BigInt(hash);
  return expandWords(Number(big >> 32n), Number(big & 0xffffffffn), dim, values, new Float32Array(dim));
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
  const [seedHigh, seedLow] = seedHalves(settings.seed ?? 0);
  for (const gram of grams) {
    let vector = cache.get(gram);
    if (vector === undefined) {
      const [high, low] = hashWords(gram, seedHigh, seedLow);
      vector = expandWords(high, low, dim, settings.values ?? "uniform", new Float32Array(dim));
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
