import type { RouteDecision } from '../router/router.js';
import type { Upstream } from '../upstreams/index.js';

/** An answer the upstream refused; `retriable` for 408, 429 and 5xx (a bad request or unknown adapter is not). */
export class ProbeError extends Error {
  override name = 'ProbeError';
  constructor(
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }
}

export interface ProbeOptions {
  maxTokens: number;
  apiKey?: string;
  /** Bound on one call (on top of the upstream client's own timeouts). */
  timeoutMs: number;
}

/**
 * Asks the upstream with exactly one adapter, greedily (temperature 0): the very request the gateway
 * sends when it routes a prompt to that adapter alone, in the upstream kind's own syntax (vLLM and
 * SGLang by name, LoRAX by path or name, llama.cpp as `lora` with that adapter at scale 1).
 * Resolves to the answer text; throws on an upstream error.
 */
export async function askAdapter(upstream: Upstream, adapter: string, prompt: string, options: ProbeOptions): Promise<string> {
  const body = { model: 'lorauter', messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: options.maxTokens, stream: false };
  const decision: RouteDecision = {
    tasks: [],
    adapters: [{ id: adapter, weight: 1 }],
    confidence: 1,
    abstained: false,
    embeddingSource: 'encoder',
    timings: { embedMs: 0, searchMs: 0 },
  };
  const prepared = await upstream.driver.prepareRouted({ endpoint: 'chat', body, stream: false, decision });
  const response = await upstream.client.request({
    method: 'POST',
    path: prepared.path,
    body: prepared.body,
    headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  const text = await upstream.client.text(response);
  if (response.statusCode !== 200) {
    throw new ProbeError(`upstream answered ${response.statusCode} for adapter "${adapter}": ${text.slice(0, 300)}`, response.statusCode === 408 || response.statusCode === 429 || response.statusCode >= 500);
  }
  let data: { choices?: { message?: { content?: unknown } }[] };
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`upstream answered invalid JSON for adapter "${adapter}"`);
  }
  if (prepared.translateResponse) data = prepared.translateResponse(data) as typeof data;
  const content = data.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw new Error(`upstream answer for adapter "${adapter}" has no choices[0].message.content`);
  return content;
}
