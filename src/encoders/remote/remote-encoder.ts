import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { AnswerTooLargeError, boundedText } from '../../bounded-text.js';
import { EncoderUnavailableError } from '../../errors.js';
import { l2Normalize, type EncodePurpose, type Encoder, withPrefix } from '../encoder.js';
import { EncoderSetupError } from '../errors.js';
import { MicroBatcher } from '../micro-batcher.js';

export interface RemoteEncoderOptions {
  /** Server base URL (…/v1 or bare) or the full …/embeddings URL. */
  url: string;
  modelName?: string;
  apiKey?: string;
  queryPrefix: string;
  examplePrefix: string;
  maxBatch: number;
  batchWaitMs: number;
  timeoutMs: number;
  /** The largest answer read; a larger one fails the request (the same request would get it again). */
  maxAnswerBytes: number;
  retries: number;
  maxRetryWaitMs: number;
}

interface EmbeddingsResponse {
  data?: { embedding?: unknown; index?: number }[];
}

class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * An OpenAI-compatible `POST /v1/embeddings` server (text-embeddings-inference, vLLM pooling
 * models, Ollama, OpenAI). Concurrent texts are batched into one request of at most `maxBatch`
 * inputs; 429, 5xx and connection failures are retried, honouring Retry-After up to a bound.
 * The dimension is learnt at start-up; a server that later answers with another one runs another
 * model, and its vectors are refused rather than mixed with the index's.
 */
export class RemoteEncoder implements Encoder {
  readonly kind = 'remote';
  readonly fingerprint: string;
  dimensions = 0;
  private readonly endpoint: string;
  private readonly agent: Agent;
  private readonly batcher: MicroBatcher<string, Float32Array>;

  private constructor(private readonly options: RemoteEncoderOptions) {
    this.endpoint = embeddingsEndpoint(options.url);
    this.agent = new Agent({ connectTimeout: options.timeoutMs, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
    this.batcher = new MicroBatcher((texts) => this.request(texts), { maxBatch: options.maxBatch, maxWaitMs: options.batchWaitMs });
    this.fingerprint = `remote:${createHash('sha256')
      .update(JSON.stringify([this.endpoint, options.modelName ?? null, options.queryPrefix, options.examplePrefix, 'l2']))
      .digest('hex')
      .slice(0, 16)}`;
  }

  static async connect(options: RemoteEncoderOptions): Promise<RemoteEncoder> {
    const encoder = new RemoteEncoder(options);
    try {
      const [probe] = await encoder.request(['probe']);
      encoder.dimensions = probe.length;
    } catch (error) {
      await encoder.close();
      throw new EncoderSetupError(
        `embeddings server ${encoder.endpoint}${options.modelName ? ` (model ${options.modelName})` : ''} did not answer a test request: ${(error as Error).message}. Check LORAUTER_ENCODER_URL, LORAUTER_ENCODER_MODEL_NAME and LORAUTER_ENCODER_API_KEY, and that the server is up.`,
      );
    }
    return encoder;
  }

  async encode(texts: readonly string[], purpose: EncodePurpose = 'query'): Promise<Float32Array[]> {
    try {
      return await this.batcher.submitMany(withPrefix(texts, purpose, this.options));
    } catch (error) {
      throw new EncoderUnavailableError(`The embeddings server failed: ${(error as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async request(texts: string[]): Promise<Float32Array[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.requestOnce(texts);
      } catch (error) {
        if (!(error instanceof RetryableError) || attempt >= this.options.retries) throw error;
        const backoff = Math.min(100 * 2 ** attempt, this.options.maxRetryWaitMs);
        await sleep(Math.min(error.retryAfterMs ?? backoff, this.options.maxRetryWaitMs));
      }
    }
  }

  private async requestOnce(texts: string[]): Promise<Float32Array[]> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    const body = JSON.stringify({ input: texts, ...(this.options.modelName ? { model: this.options.modelName } : {}) });
    // undici's own timeouts tick coarsely (about a second); the signal bounds the whole exchange exactly.
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    let response;
    let text: string;
    try {
      response = await request(this.endpoint, { method: 'POST', headers, body, dispatcher: this.agent, signal });
      text = await boundedText(response, this.options.maxAnswerBytes);
    } catch (error) {
      if (error instanceof AnswerTooLargeError) throw new Error(`${error.message} (LORAUTER_ENCODER_MAX_ANSWER_BYTES)`);
      const reason = signal.aborted ? `no answer within ${this.options.timeoutMs} ms` : (error as Error).message;
      throw new RetryableError(reason);
    }
    if (response.statusCode === 429 || response.statusCode >= 500) {
      throw new RetryableError(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`, retryAfterMs(response.headers['retry-after']));
    }
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
    let parsed: EmbeddingsResponse;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error('the answer is not JSON');
    }
    const rows = parsed.data;
    if (!Array.isArray(rows) || rows.length !== texts.length) throw new Error(`expected ${texts.length} embeddings in "data", got ${Array.isArray(rows) ? rows.length : 'none'}`);
    const vectors: Float32Array[] = new Array(texts.length);
    rows.forEach((row, position) => {
      const index = Number.isInteger(row.index) ? row.index! : position;
      if (!Array.isArray(row.embedding) || !row.embedding.every((x) => typeof x === 'number')) {
        throw new Error('an embedding is not an array of numbers (base64 answers are not supported)');
      }
      vectors[index] = l2Normalize(Float32Array.from(row.embedding as number[]));
    });
    const expected = this.dimensions || vectors[0]?.length;
    const wrong = vectors.find((vector) => !vector || vector.length !== expected);
    if (wrong) {
      throw new Error(
        `the embeddings server now answers with ${wrong?.length ?? 'missing'}-dimensional vectors; the routing index was built with ${expected}. It runs another model now: restart the gateway to rebuild the index.`,
      );
    }
    return vectors;
  }
}

function embeddingsEndpoint(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  if (trimmed.endsWith('/embeddings')) return trimmed;
  return trimmed.endsWith('/v1') ? `${trimmed}/embeddings` : `${trimmed}/v1/embeddings`;
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}
