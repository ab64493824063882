import { Tokenizer } from '@huggingface/tokenizers';
import { createHash } from 'node:crypto';
import ort from 'onnxruntime-node';
import { EncoderUnavailableError } from '../../errors.js';
import { withPrefix, type EncodePurpose, type Encoder, type EncoderModel } from '../encoder.js';
import { EncoderSetupError } from '../errors.js';
import { MicroBatcher } from '../micro-batcher.js';
import { poolTokens, type Pooling } from '../pooling.js';
import { readModelFolder, type ModelFolder, type ModelSource } from './model-folder.js';

export interface OnnxEncoderOptions {
  /** Model folder, or a .onnx file inside one. */
  model: string;
  /** Prefer the quantized export of a folder that has both. */
  quantized?: boolean;
  /** The hub repository and commit the folder was downloaded from. */
  source?: ModelSource;
  /** Overrides 1_Pooling/config.json; mean when neither says. */
  pooling?: Pooling;
  queryPrefix: string;
  examplePrefix: string;
  /** onnxruntime sizes its pool to the host otherwise, ignoring container CPU limits. */
  threads: number;
  maxBatch: number;
  batchWaitMs: number;
}

const TOKEN_OUTPUTS = ['last_hidden_state', 'token_embeddings'];
// A token is at least one character for the tokenizers in use; longer texts are cut before
// tokenising so that a huge prompt costs no more than a long one (64 leaves room for whitespace).
const CHARACTERS_PER_TOKEN_BOUND = 64;

/**
 * A sentence-transformers model exported to ONNX, run with onnxruntime-node: tokenise (Hugging
 * Face tokenizer.json), truncate to the model's length keeping the special tokens, run the graph,
 * pool the token vectors and L2-normalise. Concurrent requests are micro-batched into one run.
 */
export class OnnxEncoder implements Encoder {
  readonly kind = 'onnx';
  readonly fingerprint: string;
  readonly model: EncoderModel;
  private readonly batcher: MicroBatcher<string, Float32Array>;

  private constructor(
    private readonly folder: ModelFolder,
    private readonly session: ort.InferenceSession,
    private readonly tokenizer: Tokenizer,
    private readonly specialTokens: { leading: number[]; trailing: number[] },
    private readonly inputTypes: Map<string, string>,
    private readonly outputName: string,
    readonly pooling: Pooling,
    private readonly options: OnnxEncoderOptions,
    public dimensions = 0,
  ) {
    this.batcher = new MicroBatcher((texts) => this.run(texts), { maxBatch: options.maxBatch, maxWaitMs: options.batchWaitMs });
    this.fingerprint = `onnx:${createHash('sha256')
      .update(JSON.stringify([folder.contentHash, pooling, options.queryPrefix, options.examplePrefix, folder.maxLength, 'l2', ...(folder.source ? [folder.source.repo, folder.source.commit] : [])]))
      .digest('hex')
      .slice(0, 16)}`;
    this.model = { path: folder.modelPath, ...folder.source };
  }

  static async load(options: OnnxEncoderOptions): Promise<OnnxEncoder> {
    const folder = await readModelFolder(options.model, { quantized: options.quantized, source: options.source });
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(folder.modelPath, {
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (error) {
      throw new EncoderSetupError(`${folder.modelPath}: onnxruntime cannot load the graph: ${(error as Error).message}`);
    }
    const inputTypes = new Map<string, string>();
    for (const input of session.inputMetadata) inputTypes.set(input.name, input.isTensor ? input.type : 'not a tensor');
    const missing = ['input_ids', 'attention_mask'].filter((name) => !inputTypes.has(name));
    const unknown = [...inputTypes.keys()].filter((name) => !['input_ids', 'attention_mask', 'token_type_ids'].includes(name));
    if (missing.length > 0 || unknown.length > 0) {
      throw new EncoderSetupError(
        `${folder.modelPath}: the graph's inputs are ${[...inputTypes.keys()].join(', ')}; a sentence encoder takes input_ids, attention_mask and optionally token_type_ids. Export it with --task feature-extraction.`,
      );
    }
    for (const [name, type] of inputTypes) {
      if (type !== 'int64' && type !== 'int32') throw new EncoderSetupError(`${folder.modelPath}: input ${name} is ${type}; expected int64 or int32 token ids`);
    }
    const outputName = TOKEN_OUTPUTS.find((name) => session.outputNames.includes(name));
    if (!outputName) {
      throw new EncoderSetupError(
        `${folder.modelPath}: the graph's outputs are ${session.outputNames.join(', ')}; expected last_hidden_state (or token_embeddings) of shape [batch, tokens, hidden]. Export it with --task feature-extraction.`,
      );
    }
    const tokenizer = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig);
    const encoder = new OnnxEncoder(folder, session, tokenizer, specialTokensOf(tokenizer), inputTypes, outputName, options.pooling ?? folder.pooling ?? 'mean', options);
    try {
      const [probe] = await encoder.run(['probe']);
      encoder.dimensions = probe.length;
    } catch (error) {
      await session.release();
      throw new EncoderSetupError(`${folder.modelPath}: a test run failed: ${(error as Error).message}`);
    }
    return encoder;
  }

  get maxLength(): number {
    return this.folder.maxLength;
  }

  async encode(texts: readonly string[], purpose: EncodePurpose = 'query'): Promise<Float32Array[]> {
    try {
      return await this.batcher.submitMany(withPrefix(texts, purpose, this.options));
    } catch (error) {
      throw new EncoderUnavailableError(`The ONNX encoder failed: ${(error as Error).message}`);
    }
  }

  /** Token ids with the tokenizer's special tokens, the content truncated so that all fit in the model's length. */
  tokenize(text: string): number[] {
    const { leading, trailing } = this.specialTokens;
    const room = this.folder.maxLength - leading.length - trailing.length;
    const content = this.tokenizer.encode(text.slice(0, this.folder.maxLength * CHARACTERS_PER_TOKEN_BOUND), { add_special_tokens: false }).ids;
    return [...leading, ...content.slice(0, Math.max(0, room)), ...trailing];
  }

  async close(): Promise<void> {
    await this.session.release();
  }

  private async run(texts: string[]): Promise<Float32Array[]> {
    const ids = texts.map((text) => this.tokenize(text));
    const length = Math.max(...ids.map((row) => row.length));
    const batch = ids.length;
    const inputIds = new Array<number>(batch * length).fill(0);
    const mask = new Array<number>(batch * length).fill(0);
    ids.forEach((row, b) => {
      for (let p = 0; p < row.length; p++) {
        inputIds[b * length + p] = row[p];
        mask[b * length + p] = 1;
      }
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: this.tensor('input_ids', inputIds, batch, length),
      attention_mask: this.tensor('attention_mask', mask, batch, length),
    };
    if (this.inputTypes.has('token_type_ids')) feeds.token_type_ids = this.tensor('token_type_ids', new Array(batch * length).fill(0), batch, length);
    let output: ort.Tensor | undefined;
    try {
      const results = await this.session.run(feeds, [this.outputName]);
      output = results[this.outputName];
      const [, tokens, width] = output.dims;
      if (output.dims.length !== 3 || tokens !== length) throw new Error(`output ${this.outputName} has shape [${output.dims.join(', ')}]; expected [${batch}, ${length}, hidden]`);
      return poolTokens(output.data as Float32Array, mask, batch, length, width, this.pooling);
    } finally {
      for (const tensor of Object.values(feeds)) tensor.dispose();
      output?.dispose();
    }
  }

  private tensor(name: string, values: number[], batch: number, length: number): ort.Tensor {
    if (this.inputTypes.get(name) === 'int32') return new ort.Tensor('int32', Int32Array.from(values), [batch, length]);
    return new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [batch, length]);
  }
}

/** The special tokens the tokenizer's post-processor puts before and after a text ([CLS] … [SEP], <s> … </s>, none). */
function specialTokensOf(tokenizer: Tokenizer): { leading: number[]; trailing: number[] } {
  const bare = tokenizer.encode('a', { add_special_tokens: false }).ids;
  const full = tokenizer.encode('a', { add_special_tokens: true }).ids;
  for (let start = 0; start + bare.length <= full.length; start++) {
    if (bare.every((id: number, i: number) => full[start + i] === id)) return { leading: full.slice(0, start), trailing: full.slice(start + bare.length) };
  }
  return { leading: [], trailing: [] };
}
