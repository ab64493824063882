import { createHash } from 'node:crypto';
import { l2Normalize, type EncodePurpose, type Encoder, type EncoderModel } from './encoder.js';

/**
 * The built-in (lexical) vector and a neural vector, each L2-normalised, concatenated as
 * [√(1−w)·lexical, √w·neural]: the dot product of two such vectors is (1−w)·cos_lexical + w·cos_neural.
 * Lexical features catch templated prompts; the neural part catches paraphrases and unseen tasks.
 */
export class HybridEncoder implements Encoder {
  readonly kind = 'hybrid';
  readonly fingerprint: string;
  readonly dimensions: number;
  readonly model?: EncoderModel;
  private readonly lexicalScale: number;
  private readonly neuralScale: number;

  constructor(
    private readonly lexical: Encoder,
    private readonly neural: Encoder,
    readonly neuralWeight: number,
  ) {
    if (!(neuralWeight >= 0 && neuralWeight <= 1)) throw new RangeError('the neural weight must be in [0, 1]');
    this.dimensions = lexical.dimensions + neural.dimensions;
    this.model = neural.model;
    this.lexicalScale = Math.sqrt(1 - neuralWeight);
    this.neuralScale = Math.sqrt(neuralWeight);
    this.fingerprint = `hybrid:${createHash('sha256').update(JSON.stringify([lexical.fingerprint, neural.fingerprint, neuralWeight])).digest('hex').slice(0, 16)}`;
  }

  async encode(texts: readonly string[], purpose: EncodePurpose = 'query'): Promise<Float32Array[]> {
    const [lexical, neural] = await Promise.all([this.lexical.encode(texts, purpose), this.neural.encode(texts, purpose)]);
    return texts.map((_, i) => {
      const out = new Float32Array(this.dimensions);
      const a = l2Normalize(Float32Array.from(lexical[i]));
      const b = l2Normalize(Float32Array.from(neural[i]));
      for (let j = 0; j < a.length; j++) out[j] = this.lexicalScale * a[j];
      for (let j = 0; j < b.length; j++) out[a.length + j] = this.neuralScale * b[j];
      return out;
    });
  }
}
