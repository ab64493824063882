import type { ServerResponse } from 'node:http';
import { answerWords, completion, FakeServer, json, openAIChunks, toyTokens, type Received } from './server.js';

// llama.cpp server's error shape: {"error": {"code", "message", "type"}}
const badRequest = (res: ServerResponse, message: string) => json(res, 400, { error: { code: 400, message, type: 'invalid_request_error' } });

/**
 * Fake llama.cpp server (tools/server): GET /lora-adapters lists the adapters loaded with --lora;
 * a request's "lora" must be an array of {id, scale} with valid ids, as the real parse_lora_request demands.
 */
export async function startFakeLlamaCpp(adapterPaths: string[]) {
  const fake = new FakeServer();
  const adapters = adapterPaths.map((path, id) => ({ id, path, scale: 0 }));

  const checkLora = (request: Received, res: ServerResponse): string | undefined => {
    if (!('lora' in request.body)) return 'lora:none';
    const lora = request.body.lora;
    if (!Array.isArray(lora)) {
      badRequest(res, "Error: 'lora' must be an array of objects with 'id' and 'scale' fields");
      return undefined;
    }
    const scales = adapters.map(() => 0);
    for (const entry of lora) {
      const id = typeof entry?.id === 'number' && Number.isInteger(entry.id) ? entry.id : -1;
      if (id < 0 || id >= adapters.length) {
        badRequest(res, 'invalid adapter id');
        return undefined;
      }
      scales[id] = typeof entry.scale === 'number' ? entry.scale : 0;
    }
    return `lora:${scales.map((s, i) => `${i}=${Number(s.toFixed(4))}`).join(',')}`;
  };

  const answer = (kind: 'chat' | 'completions') => async (request: Received, res: ServerResponse) => {
    if (typeof request.body !== 'object' || request.body === null) return badRequest(res, 'body must be a JSON object');
    if (kind === 'chat' && !Array.isArray(request.body.messages)) return badRequest(res, "'messages' is required");
    if (kind === 'completions' && request.body.prompt === undefined) return badRequest(res, "'prompt' is required");
    const summary = checkLora(request, res);
    if (summary === undefined) return;
    const words = answerWords(fake.behaviour, request, summary, ['hello', 'from', 'llama.cpp', summary]);
    const model = String(request.body.model ?? 'gpt-3.5-turbo');
    if (request.body.stream) return fake.streamEvents(res, openAIChunks(kind, model, words));
    json(res, 200, completion(kind, model, words.join(' ')));
  };

  const words = new Map<number, string>();
  fake
    .route('GET', '/lora-adapters', (_request, res) => json(res, 200, adapters))
    .route('GET', '/health', (_request, res) => json(res, 200, { status: 'ok' }))
    // llama.cpp's /tokenize {content} and /detokenize {tokens}.
    .route('POST', '/tokenize', (request, res) => {
      if (typeof request.body?.content !== 'string') return badRequest(res, "'content' is required");
      const tokens = toyTokens(request.body.content);
      for (const token of tokens) words.set(token.id, token.word);
      json(res, 200, { tokens: tokens.map((token) => token.id) });
    })
    .route('POST', '/detokenize', (request, res) => json(res, 200, { content: (request.body?.tokens ?? []).map((id: number) => words.get(id) ?? '?').join(' ') }))
    .route('GET', '/v1/models', (_request, res) => json(res, 200, { object: 'list', data: [{ id: 'tiny-llama.gguf', object: 'model', owned_by: 'llamacpp', created: 0 }] }))
    .route('POST', '/v1/chat/completions', answer('chat'))
    .route('POST', '/v1/completions', answer('completions'))
    .route('POST', '/completion', async (request, res) => {
      const summary = checkLora(request, res);
      if (summary === undefined) return;
      const content = `hello ${summary}`;
      if (request.body.stream) return fake.streamEvents(res, [JSON.stringify({ content, stop: false }), JSON.stringify({ content: '', stop: true })], false);
      json(res, 200, { content, stop: true });
    });
  return Object.assign(await fake.start(), { adapters });
}
