import { randomUUID } from 'node:crypto';
import { GatewayError } from '../../errors.js';

/** OpenAI completion parameters → LoRAX /generate parameters (LoRAX rejects what it cannot take). */
export function generateParameters(body: Record<string, unknown>): Record<string, unknown> {
  const parameters: Record<string, unknown> = { details: true };
  const number = (key: string) => (typeof body[key] === 'number' ? (body[key] as number) : undefined);
  const maxTokens = number('max_tokens');
  if (maxTokens !== undefined) parameters.max_new_tokens = maxTokens;
  const temperature = number('temperature');
  // LoRAX wants temperature > 0; OpenAI's 0 means greedy, LoRAX's default.
  if (temperature !== undefined && temperature > 0) {
    parameters.temperature = temperature;
    parameters.do_sample = true;
  }
  const topP = number('top_p');
  if (topP !== undefined && topP > 0 && topP < 1) parameters.top_p = topP;
  const seed = number('seed');
  if (seed !== undefined && seed > 0) parameters.seed = seed;
  if (body.stop !== undefined && body.stop !== null) parameters.stop = ([] as unknown[]).concat(body.stop).slice(0, 4);
  return parameters;
}

export function promptOf(body: Record<string, unknown>): string {
  const prompt = body.prompt;
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') return prompt[0];
  throw new GatewayError(400, 'The LoRAX upstream takes exactly one string prompt per completion request.', 'invalid_request_error', 'prompt', 'invalid_value');
}

const FINISH: Record<string, string> = { length: 'length', eos_token: 'stop', stop_sequence: 'stop' };

interface Native {
  generated_text?: string | null;
  token?: { text: string; special: boolean };
  details?: { finish_reason?: string; prompt_tokens?: number; generated_tokens?: number } | null;
}

export function completionFromGenerate(native: unknown, model: string): unknown {
  const answer = native as Native;
  const details = answer.details ?? {};
  return {
    id: `cmpl-${randomUUID()}`,
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, text: answer.generated_text ?? '', logprobs: null, finish_reason: FINISH[details.finish_reason ?? ''] ?? 'stop' }],
    usage: {
      prompt_tokens: details.prompt_tokens ?? 0,
      completion_tokens: details.generated_tokens ?? 0,
      total_tokens: (details.prompt_tokens ?? 0) + (details.generated_tokens ?? 0),
    },
  };
}

/** LoRAX /generate_stream events → OpenAI text_completion chunks. */
export async function* completionChunksFromGenerateStream(payloads: AsyncIterable<string>, model: string): AsyncIterable<string> {
  const id = `cmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  for await (const payload of payloads) {
    const event = JSON.parse(payload) as Native & { error?: string };
    if (event.error) {
      yield JSON.stringify({ error: { message: event.error, type: 'upstream_error', param: null, code: null } });
      continue;
    }
    const text = event.token && !event.token.special ? event.token.text : '';
    const finish = event.details?.finish_reason ? FINISH[event.details.finish_reason] ?? 'stop' : null;
    yield JSON.stringify({ id, object: 'text_completion', created, model, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] });
  }
}
