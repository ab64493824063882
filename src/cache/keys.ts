import { hash } from 'node:crypto';

/** SHA-256 of the UTF-8 text, hex: what cache keys hold instead of the text. */
export function textDigest(text: string): string {
  // One-shot hashing: several times cheaper than a Hash object for prompt-sized texts.
  return hash('sha256', text, 'hex');
}

/** Cache key of one text under one encoder: fingerprint + the text's digest. */
export function embeddingKey(fingerprint: string, text: string): string {
  return `${fingerprint}:${textDigest(text)}`;
}

export function float32ToBuffer(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

/** Copies first: a Buffer from ioredis may start at an offset not divisible by 4. */
export function bufferToFloat32(buffer: Buffer, dimensions: number): Float32Array | undefined {
  if (buffer.byteLength !== dimensions * 4) return undefined;
  const copy = new ArrayBuffer(buffer.byteLength);
  new Uint8Array(copy).set(buffer);
  return new Float32Array(copy);
}
