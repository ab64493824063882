import { l2Normalize } from './encoder.js';

export type Pooling = 'mean' | 'cls' | 'last_token';

/**
 * Sentence vectors from a [batch, length, hidden] token output (row-major) and its attention mask:
 * masked mean, the first token, or the last unmasked token (right padding); each L2-normalised.
 */
export function poolTokens(hidden: Float32Array, mask: ArrayLike<number>, batch: number, length: number, width: number, mode: Pooling): Float32Array[] {
  const vectors: Float32Array[] = [];
  for (let b = 0; b < batch; b++) {
    const out = new Float32Array(width);
    const rowOf = (position: number) => (b * length + position) * width;
    if (mode === 'mean') {
      let tokens = 0;
      for (let p = 0; p < length; p++) {
        if (!Number(mask[b * length + p])) continue;
        tokens++;
        const row = rowOf(p);
        for (let h = 0; h < width; h++) out[h] += hidden[row + h];
      }
      if (tokens > 0) for (let h = 0; h < width; h++) out[h] /= tokens;
    } else {
      let position = 0;
      if (mode === 'last_token') for (let p = 0; p < length; p++) if (Number(mask[b * length + p])) position = p;
      out.set(hidden.subarray(rowOf(position), rowOf(position) + width));
    }
    vectors.push(l2Normalize(out));
  }
  return vectors;
}
