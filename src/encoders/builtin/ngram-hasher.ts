export interface NgramOptions {
  wordNgrams: readonly number[];
  charNgrams: readonly number[];
}

export const DEFAULT_NGRAMS: NgramOptions = { wordNgrams: [1, 2], charNgrams: [1, 2, 3] };

export const WORD_BLOCK = 0;
export const CHAR_BLOCK = 1;

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

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SECOND_SEED = 0x2545f491;
const SECOND_PRIME = 0x5bd1e995;
// Separates the kinds of n-gram inside the 64-bit key space.
const KIND_SALT = [0x9e3779b9, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f];

/**
 * Hashes the n-gram features of a text to 64-bit keys (two 32-bit hashes) in reusable typed
 * arrays: no string is allocated per n-gram. Words are runs of letters/digits, each other
 * non-space character is a token of its own; word n-grams join tokens. Character n-grams run over
 * each whitespace-delimited token padded with one space on each side (code units, as in JS strings);
 * they are hashed per token on demand, so that a caller can look a known token's features up once.
 * Not re-entrant: one text at a time per hasher.
 */
export class NgramHasher {
  /** Word n-gram keys of the last scanned text: [0, wordCount). */
  wordKeys1 = new Int32Array(512);
  wordKeys2 = new Int32Array(512);
  wordCount = 0;
  /** Whitespace-delimited tokens of the last scanned text: span and 64-bit hash, [0, tokenCount). */
  tokenStart = new Int32Array(128);
  tokenEnd = new Int32Array(128);
  tokenKeys1 = new Int32Array(128);
  tokenKeys2 = new Int32Array(128);
  tokenCount = 0;
  /** UTF-16 code units of the last scanned text, after normalisation. */
  codeCount = 0;
  /** Character n-gram keys of the last `charNgrams` call: [0, charCount). */
  charKeys1 = new Int32Array(256);
  charKeys2 = new Int32Array(256);
  charCount = 0;
  private codes = new Uint16Array(1024);
  private wordHash1 = new Int32Array(256);
  private wordHash2 = new Int32Array(256);

  constructor(private readonly options: NgramOptions) {}

  scan(text: string): void {
    const normalized = text.normalize('NFKC').toLowerCase();
    const length = normalized.length;
    if (this.codes.length < length) this.codes = new Uint16Array(2 * length);
    const codes = this.codes;
    for (let i = 0; i < length; i++) codes[i] = normalized.charCodeAt(i);
    this.codeCount = length;
    this.scanWords(normalized, length);
    this.scanWhitespaceTokens(length);
  }

  /** Hashes the character n-grams of whitespace token `token` of the last scanned text. */
  charNgrams(token: number): number {
    const codes = this.codes;
    const start = this.tokenStart[token];
    // The padded token is " " + codes[start..end) + " "; padded position p is codes[start + p - 1].
    const paddedLength = this.tokenEnd[token] - start + 2;
    this.charCount = 0;
    for (const n of this.options.charNgrams) {
      for (let p = 0; p + n <= paddedLength; p++) {
        let h1 = KIND_SALT[2] ^ n;
        let h2 = KIND_SALT[3] ^ n;
        for (let q = p; q < p + n; q++) {
          const code = q === 0 || q === paddedLength - 1 ? 32 : codes[start + q - 1];
          h1 = Math.imul(h1 ^ code, FNV_PRIME);
          h2 = Math.imul(h2 ^ code, SECOND_PRIME) ^ (h2 >>> 15);
        }
        if (this.charCount === this.charKeys1.length) {
          this.charKeys1 = grow(this.charKeys1, this.charCount * 2);
          this.charKeys2 = grow(this.charKeys2, this.charCount * 2);
        }
        this.charKeys1[this.charCount] = h1;
        this.charKeys2[this.charCount++] = h2;
      }
    }
    return this.charCount;
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
    this.wordCount = 0;
    for (const n of this.options.wordNgrams) {
      for (let t = 0; t + n <= words; t++) {
        let h1 = KIND_SALT[0] ^ n;
        let h2 = KIND_SALT[1] ^ n;
        for (let k = t; k < t + n; k++) {
          h1 = Math.imul(h1 ^ this.wordHash1[k], FNV_PRIME) ^ (h1 >>> 13);
          h2 = Math.imul(h2 ^ this.wordHash2[k], SECOND_PRIME) ^ (h2 >>> 16);
        }
        if (this.wordCount === this.wordKeys1.length) {
          this.wordKeys1 = grow(this.wordKeys1, this.wordCount * 2);
          this.wordKeys2 = grow(this.wordKeys2, this.wordCount * 2);
        }
        this.wordKeys1[this.wordCount] = h1;
        this.wordKeys2[this.wordCount++] = h2;
      }
    }
  }

  private scanWhitespaceTokens(length: number): void {
    const codes = this.codes;
    let tokens = 0;
    let i = 0;
    while (i < length) {
      if (CLASS_OF[codes[i]] === SPACE) {
        i++;
        continue;
      }
      let h1 = FNV_OFFSET;
      let h2 = SECOND_SEED;
      let end = i;
      while (end < length && CLASS_OF[codes[end]] !== SPACE) {
        h1 = Math.imul(h1 ^ codes[end], FNV_PRIME);
        h2 = Math.imul(h2 ^ codes[end], SECOND_PRIME) ^ (h2 >>> 15);
        end++;
      }
      if (tokens === this.tokenStart.length) {
        const size = tokens * 2;
        this.tokenStart = grow(this.tokenStart, size);
        this.tokenEnd = grow(this.tokenEnd, size);
        this.tokenKeys1 = grow(this.tokenKeys1, size);
        this.tokenKeys2 = grow(this.tokenKeys2, size);
      }
      this.tokenStart[tokens] = i;
      this.tokenEnd[tokens] = end;
      this.tokenKeys1[tokens] = h1;
      this.tokenKeys2[tokens] = h2;
      tokens++;
      i = end;
    }
    this.tokenCount = tokens;
  }
}

function grow(array: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(size);
  bigger.set(array);
  return bigger;
}
