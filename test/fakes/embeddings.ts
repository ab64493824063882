import type { ServerResponse } from 'node:http';
import { FakeServer, json, sleep, type Received } from './server.js';

const error = (res: ServerResponse, status: number, message: string, type: string, param: string | null = null, headers: Record<string, string> = {}) => {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  json(res, status, { error: { message, type, param, code: null } });
};

/** A deterministic bag-of-words embedding: each lower-cased word adds to a hashed coordinate. */
export function bagOfWords(text: string, dimensions: number): number[] {
  const vector = new Array<number>(dimensions).fill(0);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    let hash = 0x811c9dc5;
    for (let i = 0; i < word.length; i++) hash = Math.imul(hash ^ word.charCodeAt(i), 0x01000193);
    vector[(hash >>> 0) % dimensions] += hash < 0 ? -1 : 1;
  }
  return vector;
}

export interface FakeEmbeddingsOptions {
  model: string;
  dimensions: number;
  apiKey?: string;
}

/**
 * Fake OpenAI-compatible embeddings server (POST /v1/embeddings, as OpenAI, text-embeddings-inference,
 * vLLM and Ollama serve it): `input` a string or an array of strings, `model` the served model,
 * `data` entries carry their `index` (answered in reverse order to keep clients honest), 401 without
 * the API key when one is set. `failures` queues statuses to answer before the next successes;
 * `chunked` answers without a content-length.
 */
export async function startFakeEmbeddings(options: FakeEmbeddingsOptions) {
  const fake = new FakeServer();
  const state = { dimensions: options.dimensions, failures: [] as { status: number; retryAfter?: string }[], delayMs: 0, chunked: false };
  fake.route('POST', '/v1/embeddings', async (request: Received, res: ServerResponse) => {
    if (options.apiKey && request.headers.authorization !== `Bearer ${options.apiKey}`) {
      return error(res, 401, 'Incorrect API key provided.', 'invalid_request_error');
    }
    const { input, model } = request.body ?? {};
    const inputs = typeof input === 'string' ? [input] : input;
    if (!Array.isArray(inputs) || inputs.length === 0 || !inputs.every((x) => typeof x === 'string' && x.length > 0)) {
      return error(res, 400, "'input' must be a non-empty string or array of non-empty strings", 'invalid_request_error', 'input');
    }
    if (model !== undefined && model !== options.model) return error(res, 404, `The model \`${model}\` does not exist.`, 'invalid_request_error', 'model');
    if (state.delayMs) await sleep(state.delayMs);
    const failure = state.failures.shift();
    if (failure) {
      return error(res, failure.status, failure.status === 429 ? 'Rate limit reached' : 'Server overloaded', failure.status === 429 ? 'rate_limit_error' : 'server_error', null, failure.retryAfter ? { 'retry-after': failure.retryAfter } : {});
    }
    const data = inputs.map((text: string, index: number) => ({ object: 'embedding', embedding: bagOfWords(text, state.dimensions), index })).reverse();
    const answer = { object: 'list', data, model: options.model, usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } };
    if (!state.chunked) return json(res, 200, answer);
    // As a server that streams its answer out (no content-length: chunked), a row at a time.
    res.writeHead(200, { 'content-type': 'application/json' });
    const text = JSON.stringify(answer);
    for (let at = 0; at < text.length; at += 512) res.write(text.slice(at, at + 512));
    res.end();
  });
  await fake.start();
  return { fake, state };
}
