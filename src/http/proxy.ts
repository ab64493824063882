import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { toGatewayError, type UpstreamClient } from '../upstreams/client.js';
import { SSE_DONE, sseEvent, ssePayloads } from '../upstreams/sse.js';
import type { PreparedRequest } from '../upstreams/types.js';

export interface ProxyTarget {
  client: UpstreamClient;
  kind: string;
  apiKey?: string;
  metrics: GatewayMetrics;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

/**
 * Sends a prepared request upstream and relays the answer: JSON as it comes (or translated), and
 * streams as a true pass-through of server-sent events with backpressure. A client that goes away
 * aborts the upstream request; an upstream failure mid-stream ends the stream with an OpenAI-shaped
 * error event and `data: [DONE]`.
 */
export async function relayUpstream(request: FastifyRequest, reply: FastifyReply, target: ProxyTarget, prepared: PreparedRequest, stream: boolean, endpoint: string) {
  const controller = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort();
  };
  reply.raw.once('close', onClose);
  const headers: Record<string, string> = { 'x-request-id': request.id, accept: stream ? 'text/event-stream' : 'application/json' };
  const authorization = upstreamAuthorization(target.apiKey, request);
  if (authorization) headers.authorization = authorization;

  const started = performance.now();
  let response: Dispatcher.ResponseData;
  try {
    response = await target.client.request({ method: 'POST', path: prepared.path, body: prepared.body, headers, signal: controller.signal });
  } catch (error) {
    target.metrics.upstreamRequests.inc({ upstream: target.kind, endpoint, outcome: 'unreachable' });
    throw error;
  }
  target.metrics.upstreamDuration.observe({ upstream: target.kind }, (performance.now() - started) / 1000);
  const contentType = String(response.headers['content-type'] ?? '');
  const isEventStream = contentType.includes('text/event-stream');
  target.metrics.upstreamRequests.inc({ upstream: target.kind, endpoint, outcome: String(response.statusCode) });

  if (!stream || response.statusCode !== 200 || !isEventStream) {
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      throw toGatewayError(error as Error, target.client.origin);
    }
    reply.code(response.statusCode);
    if (response.statusCode >= 400) {
      prepared.onUpstreamStatus?.(response.statusCode, text);
      return reply.type('application/json').send(openAIShapedError(text, response.statusCode));
    }
    if (prepared.translateResponse) return reply.type('application/json').send(JSON.stringify(withModel(prepared.translateResponse(JSON.parse(text)), prepared.answerModel)));
    if (prepared.answerModel) {
      copyHeaders(response.headers, reply);
      return reply.send(renamedJson(text, prepared.answerModel));
    }
    copyHeaders(response.headers, reply);
    return reply.send(text);
  }

  reply.code(200).headers({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  const body = response.body;
  let source: AsyncIterable<string | Buffer> = body;
  if (prepared.translateStream || prepared.answerModel) {
    const payloads = prepared.translateStream ? prepared.translateStream(ssePayloads(body)) : ssePayloads(body);
    source = withDone(prepared.answerModel ? renameModel(payloads, prepared.answerModel) : payloads);
  }
  return reply.send(Readable.from(relayWithErrorEvent(source, body, controller, target.client.origin)));
}

function withModel(answer: unknown, model: string | undefined): unknown {
  return model && answer && typeof answer === 'object' && 'model' in answer ? { ...answer, model } : answer;
}

/** The JSON answer with its `model` renamed; anything that is not a JSON object goes as it came. */
function renamedJson(text: string, model: string): string {
  try {
    return JSON.stringify(withModel(JSON.parse(text), model));
  } catch {
    return text;
  }
}

async function* renameModel(payloads: AsyncIterable<string>, model: string): AsyncIterable<string> {
  for await (const payload of payloads) yield renamedJson(payload, model);
}

export interface RawRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path and query string. */
  url: string;
  body?: Buffer;
  contentType?: string;
}

/**
 * Any other endpoint of the upstream (embeddings, responses, tokenize, …): the request and the
 * answer pass through untouched, bodies as bytes, streams as they come.
 */
export async function relayRaw(request: FastifyRequest, reply: FastifyReply, target: ProxyTarget, raw: RawRequest) {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  const headers: Record<string, string> = { 'x-request-id': request.id, accept: String(request.headers.accept ?? '*/*') };
  if (raw.contentType) headers['content-type'] = raw.contentType;
  const authorization = upstreamAuthorization(target.apiKey, request);
  if (authorization) headers.authorization = authorization;
  let response: Dispatcher.ResponseData;
  try {
    response = await target.client.request({ method: raw.method, path: raw.url, body: raw.body, headers, signal: controller.signal });
  } catch (error) {
    target.metrics.upstreamRequests.inc({ upstream: target.kind, endpoint: 'passthrough', outcome: 'unreachable' });
    throw error;
  }
  target.metrics.upstreamRequests.inc({ upstream: target.kind, endpoint: 'passthrough', outcome: String(response.statusCode) });
  reply.code(response.statusCode);
  copyHeaders(response.headers, reply);
  reply.header('x-lorauter-composition', 'passthrough');
  return reply.send(response.body);
}

/** The configured upstream key when there is one, else the client's own Authorization. */
export function upstreamAuthorization(apiKey: string | undefined, request: FastifyRequest): string | undefined {
  return apiKey ? `Bearer ${apiKey}` : request.headers.authorization;
}

async function* withDone(payloads: AsyncIterable<string>): AsyncIterable<string> {
  for await (const payload of payloads) yield sseEvent(payload);
  yield SSE_DONE;
}

async function* relayWithErrorEvent(source: AsyncIterable<string | Buffer>, body: Dispatcher.ResponseData['body'], controller: AbortController, origin: string) {
  try {
    for await (const chunk of source) yield chunk;
  } catch (error) {
    if (controller.signal.aborted) return;
    const gatewayError = toGatewayError(error as Error, origin);
    const message = gatewayError.statusCode === 504 ? 'The upstream stopped sending before the answer was complete (timeout).' : `The upstream stream failed: ${(error as Error).message}`;
    yield sseEvent(JSON.stringify({ error: { message, type: gatewayError.type, param: null, code: gatewayError.code } }));
    yield SSE_DONE;
  } finally {
    if (!body.readableEnded) body.destroy();
  }
}

function copyHeaders(headers: Dispatcher.ResponseData['headers'], reply: FastifyReply) {
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'x-request-id' || name.startsWith('x-lorauter-')) continue;
    reply.header(name, value);
  }
}

/** Upstream errors keep their status; a body that is not already an OpenAI error is wrapped in one. */
export function openAIShapedError(text: string, status: number): string {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null && typeof parsed.error.message === 'string') return text;
    // vLLM (older) answers {"object":"error","message",...}; LoRAX {"error": "...", "error_type"}
    const message = typeof parsed?.message === 'string' ? parsed.message : typeof parsed?.error === 'string' ? parsed.error : text;
    const type = typeof parsed?.type === 'string' ? parsed.type : typeof parsed?.error_type === 'string' ? parsed.error_type : 'upstream_error';
    return JSON.stringify(new GatewayError(status, message, 'upstream_error', null, String(status)).toBody(), (key, value) => (key === 'type' ? type : value));
  } catch {
    return JSON.stringify(new GatewayError(status, text || `upstream answered ${status}`, 'upstream_error', null, String(status)).toBody());
  }
}
