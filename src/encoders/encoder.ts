/**
 * Turns texts into fixed-length vectors. Implementations: the embedded n-gram encoder (fitted on
 * the registry's examples, no download), and later ONNX and remote encoders.
 */
export interface Encoder {
  /** Short name of the implementation, e.g. "ngram-tfidf". */
  readonly kind: string;
  /** Changes whenever what `encode` computes changes; part of every embedding cache key. */
  readonly fingerprint: string;
  readonly dimensions: number;
  encode(texts: readonly string[]): Promise<Float32Array[]>;
}

export function l2Normalize(vector: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i] * vector[i];
  if (sum === 0) return vector;
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < vector.length; i++) vector[i] *= scale;
  return vector;
}
