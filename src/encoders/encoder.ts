/** What a text is encoded as: a user's prompt, or one of a task's example prompts. */
export type EncodePurpose = 'query' | 'example';

/**
 * Turns texts into fixed-length vectors. Kinds (see ./kinds.ts): the built-in n-gram encoder
 * (fitted on the registry, no download), ONNX sentence encoders, a remote /v1/embeddings server,
 * and a hybrid of the built-in one with a neural one.
 */
export interface Encoder {
  /** Short name of the implementation, e.g. "ngram-tfidf". */
  readonly kind: string;
  /** Changes whenever what `encode` computes changes; part of every embedding cache key. */
  readonly fingerprint: string;
  readonly dimensions: number;
  /** The neural model behind it, when there is one (for /readyz and the start-up log). */
  readonly model?: EncoderModel;
  /** Encoders with instruction prefixes encode queries and task examples differently. */
  encode(texts: readonly string[], purpose?: EncodePurpose): Promise<Float32Array[]>;
  close?(): Promise<void>;
}

/** A neural encoder's model: a local folder, or a hub repository at the commit it resolved to. */
export interface EncoderModel {
  path: string;
  repo?: string;
  revision?: string;
  commit?: string;
}

export interface InstructionPrefixes {
  queryPrefix: string;
  examplePrefix: string;
}

export function withPrefix(texts: readonly string[], purpose: EncodePurpose, prefixes: InstructionPrefixes): string[] {
  const prefix = purpose === 'query' ? prefixes.queryPrefix : prefixes.examplePrefix;
  return texts.map((text) => prefix + text);
}

export function l2Normalize(vector: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i] * vector[i];
  if (sum === 0) return vector;
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < vector.length; i++) vector[i] *= scale;
  return vector;
}
