import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { completion, FakeServer, json, openAIChunks, text, type Received } from './server.js';

// vLLM's OpenAI server error shape.
const error = (res: ServerResponse, status: number, message: string, type: string, param: string | null = null) =>
  json(res, status, { error: { message, type, param, code: status } });

/**
 * Fake vLLM OpenAI server with --enable-lora and runtime LoRA updating: one adapter per request,
 * named in `model` (404 for an unknown name); POST /v1/load_lora_adapter and /v1/unload_lora_adapter
 * answer plain text on success, as vLLM does, and the adapter directory must hold a PEFT adapter.
 */
export async function startFakeVllm(options: { baseModel: string; staticAdapters?: string[]; maxLoraRank?: number; maxLoras?: number }) {
  const fake = new FakeServer();
  const loaded = new Map<string, { path?: string; rank?: number }>((options.staticAdapters ?? []).map((name) => [name, {}]));

  const answer = (kind: 'chat' | 'completions') => async (request: Received, res: ServerResponse) => {
    const model = request.body?.model;
    if (kind === 'chat' && !Array.isArray(request.body?.messages)) return error(res, 400, 'messages: Field required', 'BadRequestError', 'messages');
    if (kind === 'completions' && request.body?.prompt === undefined) return error(res, 400, 'prompt: Field required', 'BadRequestError', 'prompt');
    // vLLM's check_model: no model name, or the base model's, is the base model.
    if (model !== undefined && model !== null && model !== '' && model !== options.baseModel && !loaded.has(model)) {
      return error(res, 404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
    }
    const served = model || options.baseModel;
    const words = fake.behaviour.words ?? ['hello', 'from', 'vllm', `model=${served}`];
    if (request.body.stream) return fake.streamEvents(res, openAIChunks(kind, served, words));
    json(res, 200, completion(kind, served, words.join(' ')));
  };

  fake
    .route('POST', '/v1/chat/completions', answer('chat'))
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
      text(res, 200, `Success: LoRA adapter '${name}' added successfully.`);
    })
    .route('POST', '/v1/unload_lora_adapter', (request, res) => {
      const name = request.body?.lora_name;
      if (typeof name !== 'string') return error(res, 400, 'lora_name must be provided.', 'InvalidUserInput');
      if (!loaded.has(name)) return error(res, 404, `The lora adapter '${name}' cannot be found.`, 'NotFoundError');
      loaded.delete(name);
      text(res, 200, `Success: LoRA adapter '${name}' removed successfully.`);
    });
  return Object.assign(await fake.start(), { loaded });
}
