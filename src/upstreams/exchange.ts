import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { UpstreamClient } from './client.js';
import { OpenAIStreamRelay, SSE_DONE, sseEvent, ssePayloads } from './sse.js';
import { pumpEvents, relayEvents, type EventSink, type StreamSource } from './stream-relay.js';
import type { ExchangeSignal } from './exchange-abort.js';
import type { UpstreamLimiter } from './limiter.js';
import { withModelField } from './model-field.js';
import type { PreparedRequest } from './types.js';

/**
 * The upstream's answer in the one shape the HTTP layer writes: JSON text (upstream errors already
 * in the OpenAI shape, native answers already translated), or OpenAI server-sent events.
 */
export type UpstreamAnswer =
  | { status: number; headers: Dispatcher.ResponseData['headers']; json: string }
  | { status: 200; headers: Dispatcher.ResponseData['headers']; relayTo: (sink: EventSink) => void };

export interface ExchangeOptions {
  stream: boolean;
  headers: Record<string, string>;
  /** Aborted when the client goes away. */
  signal: ExchangeSignal;
  metrics: GatewayMetrics;
  kind: string;
  endpoint: string;
  limiter: UpstreamLimiter;
  /** When the request began waiting on the upstream (performance.now()): its queue wait counts from there. */
  since?: number;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/**
 * Sends a prepared request and turns the answer into an UpstreamAnswer: the driver's translation of
 * a native answer, the model the client asked for, the driver told of failures (so that it can drop
 * state the server lost), and a stream that fails midway ended with an error event and [DONE].
 */
export async function exchange(client: UpstreamClient, prepared: PreparedRequest, options: ExchangeOptions): Promise<UpstreamAnswer> {
  const { metrics, kind, endpoint } = options;
  // A slot for the whole exchange, stream included: released when the answer is read or the stream ends.
  let release: () => void;
  try {
    release = options.limiter.tryAcquire() ?? (await options.limiter.acquire(options.signal, options.since));
  } catch (error) {
    if ((error as GatewayError).code === 'upstream_busy') metrics.upstreamRequests.inc({ upstream: kind, endpoint, outcome: 'busy' });
    throw error;
  }
  const started = performance.now();
  let response: Dispatcher.ResponseData;
  try {
    response = await client.request({ method: 'POST', path: prepared.path, body: prepared.body, headers: options.headers, signal: options.signal });
  } catch (error) {
    release();
    metrics.upstreamRequests.inc({ upstream: kind, endpoint, outcome: 'unreachable' });
    throw error;
  }
  metrics.upstreamDuration.observe({ upstream: kind }, (performance.now() - started) / 1000);
  metrics.upstreamRequests.inc({ upstream: kind, endpoint, outcome: String(response.statusCode) });
  if (!options.stream || response.statusCode !== 200 || !String(response.headers['content-type'] ?? '').includes('text/event-stream')) {
    let text: string;
    try {
      text = await client.text(response);
    } finally {
      release();
    }
    if (response.statusCode >= 400) {
      prepared.onUpstreamStatus?.(response.statusCode, text);
      return { status: response.statusCode, headers: JSON_HEADERS, json: openAIShapedError(text, response.statusCode) };
    }
    // A completions endpoint answers JSON; a redirect or a body that is not JSON is the upstream's failure.
    if (response.statusCode >= 300) throw badGateway(`The upstream answered ${response.statusCode} (a redirect), which the gateway does not follow.`);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      throw badGateway(`The upstream answered ${response.statusCode} with a body that is not JSON.`);
    }
    if (prepared.translateResponse) return { status: response.statusCode, headers: JSON_HEADERS, json: JSON.stringify(withModel(prepared.translateResponse(answer), prepared.answerModel)) };
    return { status: response.statusCode, headers: response.headers, json: prepared.answerModel ? withModelField(text, prepared.answerModel) : text };
  }

  // OpenAI streams end with data: [DONE]; native ones (LoRAX's) do not, and are translated.
  const model = prepared.answerModel;
  const rename = (payload: string) => (model ? withModelField(payload, model) : payload);
  const source: StreamSource = { body: response.body, signal: options.signal, origin: client.origin, release };
  if (prepared.translateStream) {
    // Reading stops at [DONE]: the rest of the body (its last chunk) is drained, not destroyed, so the connection is reused.
    const events = framed(prepared.translateStream(ssePayloads(response.body.iterator({ destroyOnReturn: false }))), rename);
    return { status: 200, headers: response.headers, relayTo: (sink) => void pumpEvents(events, sink, source) };
  }
  const relay = new OpenAIStreamRelay(rename);
  return { status: 200, headers: response.headers, relayTo: (sink) => relayEvents(relay, sink, source) };
}

function withModel(answer: unknown, model: string | undefined): unknown {
  return model && answer && typeof answer === 'object' && 'model' in answer ? { ...answer, model } : answer;
}

function badGateway(message: string): GatewayError {
  return new GatewayError(502, message, 'upstream_error', null, 'bad_upstream_response');
}

/** Translated payloads as server-sent events, each rewritten, ended by [DONE]. */
async function* framed(payloads: AsyncIterable<string>, rewrite: (payload: string) => string): AsyncIterable<string> {
  for await (const payload of payloads) yield sseEvent(rewrite(payload));
  yield SSE_DONE;
}

/** Upstream errors keep their status; a body that is not already an OpenAI error is wrapped in one, one that nearly is gets the missing fields. */
export function openAIShapedError(text: string, status: number): string {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null && typeof parsed.error.message === 'string') {
      const { message, type, param, code } = parsed.error;
      return JSON.stringify({ error: { message, type: typeof type === 'string' ? type : 'upstream_error', param: param ?? null, code: code ?? String(status) } });
    }
    // vLLM (older) answers {"object":"error","message",...}; LoRAX {"error": "...", "error_type"}; FastAPI {"detail": ...}
    const detail = typeof parsed?.detail === 'string' ? parsed.detail : parsed?.detail !== undefined ? JSON.stringify(parsed.detail) : undefined;
    const message = typeof parsed?.message === 'string' ? parsed.message : typeof parsed?.error === 'string' ? parsed.error : (detail ?? text);
    const type = typeof parsed?.type === 'string' ? parsed.type : typeof parsed?.error_type === 'string' ? parsed.error_type : 'upstream_error';
    return JSON.stringify(new GatewayError(status, message, 'upstream_error', null, String(status)).toBody(), (key, value) => (key === 'type' ? type : value));
  } catch {
    return JSON.stringify(new GatewayError(status, text || `upstream answered ${status}`, 'upstream_error', null, String(status)).toBody());
  }
}
