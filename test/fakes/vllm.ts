import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { answerWords, completion, FakeServer, json, openAIChunks, text, toyTokens, type Received } from './server.js';

// vLLM's OpenAI server error shape.
const error = (res: ServerResponse, status: number, message: string, type: string, param: string | null = null) =>
  json(res, status, { error: { message, type, param, code: status } });

/**
 * Fake vLLM OpenAI server with --enable-lora and runtime LoRA updating: one adapter per request,
 * named in `model` (404 for an unknown name); POST /v1/load_lora_adapter and /v1/unload_lora_adapter
 * answer plain text on success, as vLLM does, and the adapter directory must hold a PEFT adapter.
 */
export async function startFakeVllm(options: { baseModel: string; staticAdapters?: string[]; maxLoraRank?: number; maxLoras?: number; resolverDir?: string }) {
  const fake = new FakeServer();
  const loaded = new Map<string, { path?: string; rank?: number }>((options.staticAdapters ?? []).map((name) => [name, {}]));
  // vLLM keeps a second copy when a name is loaded again after an unload (vllm#54839): recorded so that tests can check it never happens.
  const unloaded = new Set<string>();
  const reloaded: string[] = [];
  // The lora_filesystem_resolver plugin (VLLM_LORA_RESOLVER_CACHE_DIR): an unknown model names a folder there whose
  // adapter_config.json says peft_type LORA and base_model_name_or_path the served model.
  const resolve = (model: string): boolean => {
    if (!options.resolverDir) return false;
    const configPath = join(options.resolverDir, model, 'adapter_config.json');
    if (!existsSync(configPath)) return false;
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    if (config.peft_type !== 'LORA' || config.base_model_name_or_path !== options.baseModel) return false;
    loaded.set(model, { path: join(options.resolverDir, model), rank: config.r });
    return true;
  };

  // vLLM's request models (pydantic): `model` is a string when given.
  const badModel = (model: unknown) => model !== undefined && model !== null && typeof model !== 'string';

  const answer = (kind: 'chat' | 'completions') => async (request: Received, res: ServerResponse) => {
    const model = request.body?.model;
    if (badModel(model)) return error(res, 400, 'model: Input should be a valid string', 'BadRequestError', 'model');
    if (kind === 'chat' && !Array.isArray(request.body?.messages)) return error(res, 400, 'messages: Field required', 'BadRequestError', 'messages');
    if (kind === 'completions' && request.body?.prompt === undefined) return error(res, 400, 'prompt: Field required', 'BadRequestError', 'prompt');
    // vLLM's check_model: no model name, or the base model's, is the base model.
    if (model !== undefined && model !== null && model !== '' && model !== options.baseModel && !loaded.has(model) && !resolve(model)) {
      return error(res, 404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
    }
    const served = model || options.baseModel;
    const words = answerWords(fake.behaviour, request, String(served), ['hello', 'from', 'vllm', `model=${served}`]);
    if (request.body.stream) return fake.streamEvents(res, openAIChunks(kind, served, words));
    json(res, 200, completion(kind, served, words.join(' ')));
  };

  const served = (model: unknown) => model === undefined || model === options.baseModel || loaded.has(model as string);
  const words = new Map<number, string>();
  fake
    .route('GET', '/health', (_request, res) => void res.writeHead(200).end())
    .route('POST', '/v1/chat/completions', answer('chat'))
    // vLLM pooling/embedding endpoint (served when the model supports it): input string or array.
    .route('POST', '/v1/embeddings', (request, res) => {
      const { input, model } = request.body ?? {};
      if (badModel(model)) return error(res, 400, 'model: Input should be a valid string', 'BadRequestError', 'model');
      if (!served(model)) return error(res, 404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
      const inputs = typeof input === 'string' ? [input] : input;
      if (!Array.isArray(inputs)) return error(res, 400, 'input: Field required', 'BadRequestError', 'input');
      // OpenAI's input union: a string, strings, token ids, or lists of token ids.
      const tokens = (value: unknown) => Array.isArray(value) && value.every(Number.isInteger);
      if (!(inputs.every((item) => typeof item === 'string') || tokens(inputs) || inputs.every(tokens))) {
        return error(res, 400, 'input: Input should be a valid string or list of strings or token ids', 'BadRequestError', 'input');
      }
      // encoding_format "base64": little-endian float32 bytes, as OpenAI and vLLM answer it.
      const encode = (vector: number[]) => (request.body.encoding_format === 'base64' ? Buffer.from(Float32Array.from(vector).buffer).toString('base64') : vector);
      const data = inputs.map((text: string | number[], index: number) => ({ object: 'embedding', index, embedding: encode([String(text).length, index, 1]) }));
      json(res, 200, { object: 'list', model: model ?? options.baseModel, data, usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } });
    })
    // vLLM's /tokenize and /detokenize (root paths, not under /v1).
    .route('POST', '/tokenize', (request, res) => {
      if (typeof request.body?.prompt !== 'string') return error(res, 400, 'prompt: Field required', 'BadRequestError', 'prompt');
      const tokens = toyTokens(request.body.prompt);
      for (const token of tokens) words.set(token.id, token.word);
      json(res, 200, { count: tokens.length, max_model_len: 2048, tokens: tokens.map((token) => token.id) });
    })
    .route('POST', '/detokenize', (request, res) => {
      if (!Array.isArray(request.body?.tokens)) return error(res, 400, 'tokens: Field required', 'BadRequestError', 'tokens');
      json(res, 200, { prompt: request.body.tokens.map((id: number) => words.get(id) ?? '?').join(' ') });
    })
    // The Responses API: streamed as typed server-sent events.
    .route('POST', '/v1/responses', async (request, res) => {
      const { input, model, stream } = request.body ?? {};
      if (input === undefined) return error(res, 400, 'input: Field required', 'BadRequestError', 'input');
      if (!served(model)) return error(res, 404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
      const text = `response from ${model ?? options.baseModel}`;
      if (stream) {
        return fake.streamEvents(res, [JSON.stringify({ type: 'response.output_text.delta', delta: text }), JSON.stringify({ type: 'response.completed', response: { id: 'resp_1', status: 'completed' } })], false);
      }
      json(res, 200, { id: 'resp_1', object: 'response', model: model ?? options.baseModel, status: 'completed', output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text }] }] });
    })
    .route('POST', '/v1/completions', answer('completions'))
    .route('GET', '/v1/models', (_request, res) =>
      json(res, 200, {
        object: 'list',
        data: [options.baseModel, ...loaded.keys()].map((id) => ({ id, object: 'model', created: 0, owned_by: 'vllm', root: id, parent: id === options.baseModel ? null : options.baseModel })),
      }),
    )
    .route('POST', '/v1/load_lora_adapter', (request, res) => {
      const { lora_name: name, lora_path: path } = request.body ?? {};
      if (typeof name !== 'string' || typeof path !== 'string') return error(res, 400, 'Both lora_name and lora_path must be provided.', 'InvalidUserInput');
      if (loaded.has(name)) return error(res, 400, `The lora adapter '${name}' has already been loaded.`, 'InvalidUserInput');
      if (options.maxLoras !== undefined && loaded.size >= options.maxLoras) return error(res, 400, `Cannot load more than ${options.maxLoras} adapters.`, 'InvalidUserInput');
      if (!existsSync(join(path, 'adapter_config.json')) || !existsSync(join(path, 'adapter_model.safetensors'))) {
        return error(res, 400, `Loading lora ${name} failed: No adapter found for ${path}`, 'InvalidUserInput');
      }
      const config = JSON.parse(readFileSync(join(path, 'adapter_config.json'), 'utf8'));
      if (config.r > (options.maxLoraRank ?? 16)) {
        return error(res, 400, `LoRA rank ${config.r} is greater than max_lora_rank ${options.maxLoraRank ?? 16}.`, 'InvalidUserInput');
      }
      loaded.set(name, { path, rank: config.r });
      if (unloaded.has(name)) reloaded.push(name);
      text(res, 200, `Success: LoRA adapter '${name}' added successfully.`);
    })
    .route('POST', '/v1/unload_lora_adapter', (request, res) => {
      const name = request.body?.lora_name;
      if (typeof name !== 'string') return error(res, 400, 'lora_name must be provided.', 'InvalidUserInput');
      if (!loaded.has(name)) return error(res, 404, `The lora adapter '${name}' cannot be found.`, 'NotFoundError');
      loaded.delete(name);
      unloaded.add(name);
      text(res, 200, `Success: LoRA adapter '${name}' removed successfully.`);
    });
  return Object.assign(await fake.start(), { loaded, reloaded });
}
