// BERT WordPiece tokenization from an export's vocab.txt and its "wordpiece" settings, matching Hugging Face
// tokenizers' BertNormalizer + BertPreTokenizer + WordPiece + [CLS] A [SEP] B [SEP] (tested on the same
// sentences as the Python runtime: identical ids). Special tokens are matched in the raw text first, as
// tokenizers matches its added tokens.

// Rust's char::is_whitespace (Unicode White_Space): what tokenizers uses; JavaScript's \s differs on U+0085 and U+FEFF.
const WHITESPACE = /[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const CONTROL = /\p{C}/u; // Cc, Cf, Cs, Co, Cn: unicode_categories' is_other(), BertNormalizer's is_control
const NONSPACING_MARK = /\p{Mn}/u;
const PUNCTUATION = /[!-\/:-@\[-`{-~]|\p{P}/u;

function isChinese(cp) {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df)
    || (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf)
    || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

export function normalize(text, settings) {
  let chars = Array.from(text);
  if (settings.clean_text) {
    chars = chars
      .filter((c) => !(c === "\0" || c === "\ufffd" || (c !== "\t" && c !== "\n" && c !== "\r" && CONTROL.test(c))))
      .map((c) => (WHITESPACE.test(c) ? " " : c));
  }
  if (settings.handle_chinese_chars) chars = chars.map((c) => (isChinese(c.codePointAt(0)) ? ` ${c} ` : c));
  let out = chars.join("");
  if (settings.strip_accents ?? settings.lowercase) out = Array.from(out.normalize("NFD")).filter((c) => !NONSPACING_MARK.test(c)).join("");
  if (settings.lowercase) out = Array.from(out, (c) => c.toLowerCase()).join(""); // per character: no final-sigma context
  return out;
}

/** Whitespace-separated words, each punctuation character a word of its own. */
export function preTokenize(text) {
  const words = [];
  let current = "";
  for (const c of text) {
    if (WHITESPACE.test(c)) {
      if (current) words.push(current);
      current = "";
    } else if (PUNCTUATION.test(c)) {
      if (current) words.push(current);
      words.push(c);
      current = "";
    } else {
      current += c;
    }
  }
  if (current) words.push(current);
  return words;
}

export class WordPieceTokenizer {
  /** @param {string[]} vocabulary tokens in id order  @param {object} settings export.json's "wordpiece" */
  constructor(vocabulary, settings) {
    this.vocabulary = vocabulary;
    this.settings = settings;
    this.ids = new Map(vocabulary.map((token, id) => [token, id]));
    for (const role of ["unk_token", "cls_token", "sep_token", "pad_token"]) {
      if (!this.ids.has(settings[role])) throw new Error(`the vocabulary lacks the ${role.replace("_", " ")} ${JSON.stringify(settings[role])}`);
    }
    // longest first, so that at one position the longest special token wins (leftmost-longest matching)
    this.specials = [...settings.special_tokens].sort((a, b) => b.length - a.length);
  }

  static fromVocabText(text, settings) {
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    return new WordPieceTokenizer(lines, settings);
  }

  wordPieces(word) {
    const { unk_token: unk, continuing_subword_prefix: prefix, max_input_chars_per_word: limit } = this.settings;
    const chars = Array.from(word);
    if (chars.length > limit) return [this.ids.get(unk)];
    const pieces = [];
    for (let start = 0; start < chars.length;) {
      let end = chars.length;
      let found;
      for (; end > start; end--) {
        const piece = (start > 0 ? prefix : "") + chars.slice(start, end).join("");
        found = this.ids.get(piece);
        if (found !== undefined) break;
      }
      if (found === undefined) return [this.ids.get(unk)];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  /** Ids of one text without [CLS]/[SEP]: special tokens found in the raw text, the rest normalised and split. */
  encodeText(text) {
    const ids = [];
    let rest = text;
    while (rest.length) {
      let at = -1;
      let special = null;
      for (const token of this.specials) {
        const index = rest.indexOf(token);
        if (index !== -1 && (at === -1 || index < at)) [at, special] = [index, token];
      }
      const plain = at === -1 ? rest : rest.slice(0, at);
      for (const word of preTokenize(normalize(plain, this.settings))) ids.push(...this.wordPieces(word));
      if (at === -1) break;
      ids.push(this.ids.get(special));
      rest = rest.slice(at + special.length);
    }
    return ids;
  }

  /** [CLS] a [SEP] (b [SEP]), cut to maxLength tokens the way tokenizers' longest_first does. */
  encode(text, pair = null, maxLength = Infinity) {
    let a = this.encodeText(text);
    let b = pair === null ? null : this.encodeText(pair);
    const budget = maxLength - (b === null ? 2 : 3);
    if (b === null) {
      a = a.slice(0, Math.max(0, budget));
    } else if (a.length + b.length > budget) {
      [a, b] = truncateLongestFirst(a, b, budget);
    }
    const cls = this.ids.get(this.settings.cls_token);
    const sep = this.ids.get(this.settings.sep_token);
    const ids = [cls, ...a, sep, ...(b === null ? [] : [...b, sep])];
    const typeIds = [...new Array(a.length + 2).fill(0), ...(b === null ? [] : new Array(b.length + 1).fill(1))];
    return { ids, typeIds };
  }
}

/** tokenizers' LongestFirst for a pair: the shorter (the first on a tie) keeps up to half, the longer the rest. */
export function truncateLongestFirst(a, b, budget) {
  const swap = a.length > b.length;
  let [short, long] = swap ? [b, a] : [a, b];
  const keepShort = Math.min(short.length, Math.floor(budget / 2));
  short = short.slice(0, keepShort);
  long = long.slice(0, budget - keepShort);
  return swap ? [long, short] : [short, long];
}
