// The n-gram encoder as it was before the fast rewrite (issue 6), kept only as the benchmark baseline.
export interface NgramOptions {
  wordNgrams: readonly number[];
  charNgrams: readonly number[];
}

export const DEFAULT_NGRAMS: NgramOptions = { wordNgrams: [1, 2], charNgrams: [1, 2, 3] };

export const WORD_BLOCK = 0;
export const CHAR_BLOCK = 1;

const WORD_OR_SYMBOL = /[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu;
const NON_SPACE = /\S+/gu;

/**
 * Counts the n-gram features of a text: word n-grams (words and punctuation marks as tokens;
 * FLAN-style templates are told apart by their punctuation too) and character n-grams inside
 * space-padded whitespace tokens (they carry language and script). Keys are prefixed by block.
 */
export function countFeatures(text: string, options: NgramOptions, into = new Map<string, number>()): Map<string, number> {
  const normalized = text.normalize('NFKC').toLowerCase();
  const words = normalized.match(WORD_OR_SYMBOL) ?? [];
  for (const n of options.wordNgrams) {
    for (let i = 0; i + n <= words.length; i++) {
      const key = `w${n}\u0001${n === 1 ? words[i] : words.slice(i, i + n).join(' ')}`;
      into.set(key, (into.get(key) ?? 0) + 1);
    }
  }
  for (const token of normalized.match(NON_SPACE) ?? []) {
    const padded = ` ${token} `;
    for (const n of options.charNgrams) {
      for (let i = 0; i + n <= padded.length; i++) {
        const key = `c\u0001${padded.slice(i, i + n)}`;
        into.set(key, (into.get(key) ?? 0) + 1);
      }
    }
  }
  return into;
}

export function blockOf(featureKey: string): number {
  return featureKey.charCodeAt(0) === 119 /* w */ ? WORD_BLOCK : CHAR_BLOCK;
}
