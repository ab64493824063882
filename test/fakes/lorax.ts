import type { ServerResponse } from 'node:http';
import { answerWords, completion, FakeServer, json, openAIChunks, toyTokens, type Received } from './server.js';

// LoRAX's error shape: {"error": "...", "error_type": "validation"} with 422.
const invalid = (res: ServerResponse, message: string) => json(res, 422, { error: message, error_type: 'validation' });

const STRATEGIES = new Set(['linear', 'ties', 'dare_linear', 'dare_ties']);
const SIGN_METHODS = new Set(['total', 'frequency']);

function validate(request: Received, res: ServerResponse): boolean {
  const body = request.body;
  if (typeof body?.inputs !== 'string') {
    json(res, 422, { error: 'Failed to deserialize the JSON body into the target type: missing field `inputs`', error_type: 'validation' });
    return false;
  }
  if (body.inputs.length === 0) return (invalid(res, '`inputs` cannot be empty'), false);
  const p = body.parameters ?? {};
  if (p.temperature !== undefined && p.temperature !== null && !(p.temperature > 0)) return (invalid(res, '`temperature` must be strictly positive'), false);
  if (p.top_p !== undefined && p.top_p !== null && !(p.top_p > 0 && p.top_p < 1)) return (invalid(res, '`top_p` must be > 0.0 and < 1.0'), false);
  if (p.max_new_tokens !== undefined && p.max_new_tokens !== null && !(Number.isInteger(p.max_new_tokens) && p.max_new_tokens > 0)) return (invalid(res, '`max_new_tokens` must be strictly positive'), false);
  if (Array.isArray(p.stop) && p.stop.length > 4) return (invalid(res, '`stop` supports up to 4 stop sequences'), false);
  const merged = p.merged_adapters;
  if (merged !== undefined && merged !== null) {
    if (p.adapter_id) return (invalid(res, 'cannot specify both `adapter_id` and `merged_adapters`'), false);
    if (!Array.isArray(merged.ids) || merged.ids.length === 0 || !merged.ids.every((id: unknown) => typeof id === 'string')) {
      json(res, 422, { error: 'Failed to deserialize the JSON body into the target type: parameters.merged_adapters: missing field `ids`', error_type: 'validation' });
      return false;
    }
    const weights = merged.weights ?? [];
    if (!Array.isArray(weights) || !weights.every((w: unknown) => typeof w === 'number')) return (invalid(res, '`merged_adapters.weights` must be numbers'), false);
    if (weights.length > 0 && weights.length !== merged.ids.length) return (invalid(res, 'number of adapter IDs must match number of adapter weights'), false);
    const strategy = merged.merge_strategy ?? 'linear';
    if (!STRATEGIES.has(strategy)) return (invalid(res, `unknown merge_strategy ${strategy}`), false);
    if ((strategy === 'ties' || strategy.startsWith('dare')) && !(merged.density > 0 && merged.density <= 1)) return (invalid(res, 'density must be in (0, 1] for ties and dare'), false);
    if (merged.majority_sign_method !== undefined && merged.majority_sign_method !== null && !SIGN_METHODS.has(merged.majority_sign_method)) return (invalid(res, 'unknown majority_sign_method'), false);
  }
  return true;
}

function adapterSummary(parameters: Record<string, any> = {}): string {
  if (parameters.merged_adapters) return `merged=${parameters.merged_adapters.ids.map((id: string, i: number) => `${id}:${Number((parameters.merged_adapters.weights?.[i] ?? 1).toFixed(4))}`).join('|')}`;
  return `adapter=${parameters.adapter_id ?? 'base'}`;
}

/** Fake LoRAX: native /generate and /generate_stream with per-request adapter merging, and its OpenAI chat endpoint. */
export async function startFakeLorax() {
  const fake = new FakeServer();
  fake
    .route('POST', '/generate', (request, res) => {
      if (!validate(request, res)) return;
      const words = answerWords(fake.behaviour, request, adapterSummary(request.body.parameters), ['hello', 'from', 'lorax', adapterSummary(request.body.parameters)]);
      const details = { finish_reason: 'length', prompt_tokens: 7, generated_tokens: words.length, seed: null, prefill: [], tokens: [] };
      json(res, 200, { generated_text: words.join(' '), ...(request.body.parameters?.details ? { details } : {}) });
    })
    .route('POST', '/generate_stream', async (request, res) => {
      if (!validate(request, res)) return;
      const words = answerWords(fake.behaviour, request, adapterSummary(request.body.parameters), ['hello', 'from', 'lorax', adapterSummary(request.body.parameters)]);
      const events = words.map((word, i) =>
        JSON.stringify({
          token: { id: i + 1, text: i === 0 ? word : ` ${word}`, logprob: -0.1, special: false },
          generated_text: i === words.length - 1 ? words.join(' ') : null,
          details: i === words.length - 1 ? { finish_reason: 'eos_token', prompt_tokens: 7, generated_tokens: words.length, seed: null } : null,
        }),
      );
      await fake.streamEvents(res, events, false);
    })
    .route('POST', '/v1/chat/completions', async (request, res) => {
      if (typeof request.body?.model !== 'string') return json(res, 422, { error: 'Failed to deserialize the JSON body into the target type: missing field `model`', error_type: 'validation' });
      if (!Array.isArray(request.body.messages)) return json(res, 422, { error: 'missing field `messages`', error_type: 'validation' });
      const words = answerWords(fake.behaviour, request, request.body.model, ['hello', 'from', 'lorax', `adapter=${request.body.model}`]);
      if (request.body.stream) return fake.streamEvents(res, openAIChunks('chat', request.body.model, words));
      json(res, 200, completion('chat', request.body.model, words.join(' ')));
    })
    .route('POST', '/v1/completions', async (request, res) => {
      if (typeof request.body?.model !== 'string') return json(res, 422, { error: 'missing field `model`', error_type: 'validation' });
      json(res, 200, { id: 'cmpl', object: 'text_completion', created: 0, model: request.body.model, choices: [{ index: 0, text: `adapter=${request.body.model}`, finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    })
    .route('GET', '/health', (_request, res) => void res.writeHead(200).end())
    .route('GET', '/v1/models', (_request, res) => json(res, 200, { object: 'list', data: [{ id: 'mistralai/Mistral-7B-v0.1', object: 'model', created: 0, owned_by: 'lorax' }] }))
    // LoRAX (from TGI): POST /tokenize {inputs} → the tokens with their offsets.
    .route('POST', '/tokenize', (request, res) => {
      if (typeof request.body?.inputs !== 'string') return json(res, 422, { error: 'missing field `inputs`', error_type: 'validation' });
      let at = 0;
      json(res, 200, toyTokens(request.body.inputs).map((token) => ({ id: token.id, text: token.word, start: at, stop: (at += token.word.length + 1) - 1 })));
    });
  return fake.start();
}
