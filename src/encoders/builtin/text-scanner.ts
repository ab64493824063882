const SPACE = 1;
const WORD = 2;
const SYMBOL = 3;

// Class of every UTF-16 code unit, computed once: letters and digits make words, whitespace
// separates, anything else is a one-character symbol token (FLAN templates differ in punctuation).
const CLASS_OF = new Uint8Array(65536);
for (let code = 0; code < 65536; code++) {
  const char = String.fromCharCode(code);
  CLASS_OF[code] = /\s/u.test(char) ? SPACE : /[\p{L}\p{N}]/u.test(char) ? WORD : SYMBOL;
}
const IS_WORD_CODE_POINT = /^[\p{L}\p{N}]$/u;

export function isSpace(code: number): boolean {
  return CLASS_OF[code] === SPACE;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SECOND_SEED = 0x2545f491;
const SECOND_PRIME = 0x5bd1e995;

/**
 * Scans a text once (NFKC, lower case) into reusable typed arrays: its UTF-16 code units, the
 * number of whitespace-delimited tokens, and its word n-grams as 64-bit keys (two 32-bit hashes),
 * so that no string is allocated per n-gram. Words are runs of letters/digits; every other
 * non-space character is a token of its own. Not re-entrant: one text at a time per scanner.
 */
export class TextScanner {
  /** Word n-gram keys of the last scanned text: [0, wordNgramCount). */
  keys1 = new Int32Array(512);
  keys2 = new Int32Array(512);
  wordNgramCount = 0;
  /** Code units of the last scanned text after normalisation: [0, codeCount). */
  codes = new Uint16Array(1024);
  codeCount = 0;
  /** Whitespace-delimited tokens of the last scanned text. */
  tokenCount = 0;
  private wordHash1 = new Int32Array(256);
  private wordHash2 = new Int32Array(256);

  constructor(private readonly wordNgrams: readonly number[]) {}

  scan(text: string): void {
    const normalized = text.normalize('NFKC').toLowerCase();
    const length = normalized.length;
    if (this.codes.length < length) this.codes = new Uint16Array(2 * length);
    const codes = this.codes;
    let tokens = 0;
    for (let i = 0; i < length; i++) {
      const code = normalized.charCodeAt(i);
      codes[i] = code;
      if (CLASS_OF[code] !== SPACE && (i === 0 || CLASS_OF[codes[i - 1]] === SPACE)) tokens++;
    }
    this.codeCount = length;
    this.tokenCount = tokens;
    this.scanWords(normalized, length);
  }

  private scanWords(normalized: string, length: number): void {
    const codes = this.codes;
    let words = 0;
    let i = 0;
    while (i < length) {
      const code = codes[i];
      let kind = CLASS_OF[code];
      let width = 1;
      if (code >= 0xd800 && code <= 0xdbff && i + 1 < length && codes[i + 1] >= 0xdc00 && codes[i + 1] <= 0xdfff) {
        width = 2;
        kind = IS_WORD_CODE_POINT.test(normalized.slice(i, i + 2)) ? WORD : SYMBOL;
      }
      if (kind === SPACE) {
        i += width;
        continue;
      }
      let end = i + width;
      if (kind === WORD) {
        while (end < length) {
          const next = codes[end];
          if (next >= 0xd800 && next <= 0xdbff && end + 1 < length) {
            if (!IS_WORD_CODE_POINT.test(normalized.slice(end, end + 2))) break;
            end += 2;
          } else if (CLASS_OF[next] === WORD) {
            end++;
          } else break;
        }
      }
      if (words === this.wordHash1.length) {
        this.wordHash1 = grow(this.wordHash1, words * 2);
        this.wordHash2 = grow(this.wordHash2, words * 2);
      }
      let h1 = FNV_OFFSET;
      let h2 = SECOND_SEED;
      for (let j = i; j < end; j++) {
        h1 = Math.imul(h1 ^ codes[j], FNV_PRIME);
        h2 = Math.imul(h2 ^ codes[j], SECOND_PRIME) ^ (h2 >>> 15);
      }
      this.wordHash1[words] = h1;
      this.wordHash2[words] = h2;
      words++;
      i = end;
    }
    let count = 0;
    for (const n of this.wordNgrams) {
      for (let t = 0; t + n <= words; t++) {
        let h1 = 0x9e3779b9 ^ n;
        let h2 = 0x85ebca6b ^ n;
        for (let k = t; k < t + n; k++) {
          h1 = Math.imul(h1 ^ this.wordHash1[k], FNV_PRIME) ^ (h1 >>> 13);
          h2 = Math.imul(h2 ^ this.wordHash2[k], SECOND_PRIME) ^ (h2 >>> 16);
        }
        if (count === this.keys1.length) {
          this.keys1 = grow(this.keys1, count * 2);
          this.keys2 = grow(this.keys2, count * 2);
        }
        this.keys1[count] = h1;
        this.keys2[count++] = h2;
      }
    }
    this.wordNgramCount = count;
  }
}

function grow(array: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(size);
  bigger.set(array);
  return bigger;
}
