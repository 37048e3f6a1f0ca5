// eelbert-web: an `eelbert export` in JavaScript (browser or node). See README.md.
export { checkTestVectors, expandHash, hashNgram, tokenNgrams, tokenVector } from "./hash.js";
export { ExportedModel, parseNpy } from "./model.js";
export { normalize, preTokenize, WordPieceTokenizer } from "./wordpiece.js";
