import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { answerWords, completion, FakeServer, json, openAIChunks, type Received } from './server.js';

// SGLang's OpenAI-compatible error shape.
const error = (res: ServerResponse, status: number, message: string) => json(res, status, { object: 'error', message, type: 'BadRequestError', param: null, code: status });
const loadAnswer = (res: ServerResponse, status: number, message: string, loaded: Map<string, string>) =>
  json(res, status, { rid: null, success: status === 200, error_message: message, loaded_adapters: Object.fromEntries(loaded) });

/**
 * Fake SGLang server (--enable-lora): the OpenAI endpoints take `model` as "base-model:adapter"
 * (or the base model alone); adapters come from --lora-paths (`staticAdapters`) or POST
 * /load_lora_adapter {lora_name, lora_path}, dropped with /unload_lora_adapter; both answer JSON
 * {success, error_message, loaded_adapters}. A PEFT folder above --max-lora-rank is refused.
 */
export async function startFakeSglang(options: { baseModel: string; staticAdapters?: string[]; maxLoraRank?: number }) {
  const fake = new FakeServer();
  const loaded = new Map<string, string>((options.staticAdapters ?? []).map((name) => [name, `/static/${name}`]));
  const pinnedNames = new Set<string>();

  const answer = (kind: 'chat' | 'completions') => async (request: Received, res: ServerResponse) => {
    const model = request.body?.model;
    if (typeof model !== 'string') return error(res, 400, 'model: Field required');
    if (kind === 'chat' && !Array.isArray(request.body.messages)) return error(res, 400, 'messages: Field required');
    if (kind === 'completions' && request.body.prompt === undefined) return error(res, 400, 'prompt: Field required');
    const [base, adapter, ...rest] = model.split(':');
    if (base !== options.baseModel || rest.length > 0) return error(res, 404, `The model \`${model}\` does not exist.`);
    if (adapter !== undefined && !loaded.has(adapter)) return error(res, 400, `LoRA adapter '${adapter}' is not loaded.`);
    const words = answerWords(fake.behaviour, request, adapter ?? 'base', ['hello', 'from', 'sglang', `adapter=${adapter ?? 'base'}`]);
    if (request.body.stream) return fake.streamEvents(res, openAIChunks(kind, model, words));
    json(res, 200, completion(kind, model, words.join(' ')));
  };

  fake
    .route('GET', '/health', (_request, res) => void res.writeHead(200).end())
    .route('POST', '/v1/chat/completions', answer('chat'))
    .route('POST', '/v1/completions', answer('completions'))
    .route('GET', '/v1/models', (_request, res) => json(res, 200, { object: 'list', data: [{ id: options.baseModel, object: 'model', created: 0, owned_by: 'sglang', root: options.baseModel }] }))
    .route('POST', '/v1/embeddings', (request, res) => {
      const inputs = typeof request.body?.input === 'string' ? [request.body.input] : request.body?.input;
      if (!Array.isArray(inputs)) return error(res, 400, 'input: Field required');
      json(res, 200, { object: 'list', model: options.baseModel, data: inputs.map((text: string, index: number) => ({ object: 'embedding', index, embedding: [text.length] })), usage: { prompt_tokens: 1, total_tokens: 1 } });
    })
    .route('POST', '/load_lora_adapter', (request, res) => {
      const { lora_name: name, lora_path: path, pinned } = request.body ?? {};
      if (typeof name !== 'string' || typeof path !== 'string') return loadAnswer(res, 400, 'lora_name and lora_path are required', loaded);
      // LoadLoRAAdapterReqInput.pinned: bool = False
      if (pinned !== undefined && typeof pinned !== 'boolean') return loadAnswer(res, 400, 'pinned: Input should be a valid boolean', loaded);
      if (pinned) pinnedNames.add(name);
      if (loaded.has(name)) return loadAnswer(res, 400, `The LoRA adapter ${name} is already loaded.`, loaded);
      if (!existsSync(join(path, 'adapter_config.json')) || !existsSync(join(path, 'adapter_model.safetensors'))) {
        return loadAnswer(res, 400, `Failed to load LoRA adapter ${name}: no adapter found at ${path}`, loaded);
      }
      const config = JSON.parse(readFileSync(join(path, 'adapter_config.json'), 'utf8'));
      if (config.r > (options.maxLoraRank ?? 64)) return loadAnswer(res, 400, `LoRA adapter ${name} has rank ${config.r}, larger than --max-lora-rank ${options.maxLoraRank ?? 64}.`, loaded);
      loaded.set(name, path);
      loadAnswer(res, 200, '', loaded);
    })
    .route('POST', '/unload_lora_adapter', (request, res) => {
      const name = request.body?.lora_name;
      if (typeof name !== 'string' || !loaded.has(name)) return loadAnswer(res, 400, `LoRA adapter ${name} is not loaded.`, loaded);
      loaded.delete(name);
      loadAnswer(res, 200, '', loaded);
    });
  return Object.assign(await fake.start(), { loaded, pinned: pinnedNames });
}
