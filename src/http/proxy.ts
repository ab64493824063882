import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { UpstreamClient } from '../upstreams/client.js';
import { exchange, openAIShapedError } from '../upstreams/exchange.js';
import type { UpstreamLimiter } from '../upstreams/limiter.js';
import type { PreparedRequest } from '../upstreams/types.js';
import { ExchangeAbort, type InflightExchanges } from '../upstreams/exchange-abort.js';

export interface ProxyTarget {
  client: UpstreamClient;
  kind: string;
  apiKey?: string;
  /** The gateway checks API keys itself: the client's Authorization is not forwarded. */
  checksKeys: boolean;
  /** Where in-flight exchanges are registered, for shutdown. */
  inflight: InflightExchanges;
  limiter: UpstreamLimiter;
  metrics: GatewayMetrics;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);
// The upstream's cookies, auth challenges and redirects are for the gateway, not for its clients; so is its CORS
// policy (llama.cpp's server answers an empty access-control-allow-origin): browsers talk to the gateway.
const UPSTREAM_ONLY = new Set(['set-cookie', 'set-cookie2', 'www-authenticate', 'proxy-authenticate', 'location', 'refresh']);
const CORS_PREFIX = 'access-control-';

/**
 * Sends a prepared request upstream and writes the answer as the upstream layer shaped it: JSON, or
 * server-sent events passed through with backpressure. A client that goes away aborts the upstream
 * request.
 */
export async function relayUpstream(request: FastifyRequest, reply: FastifyReply, target: ProxyTarget, prepared: PreparedRequest, stream: boolean, endpoint: string, since?: number) {
  target.metrics.upstreamAdded.observe({ upstream: target.kind }, reply.elapsedTime / 1000);
  const controller = inFlight(reply, target);
  const headers: Record<string, string> = { 'x-request-id': request.id, accept: stream ? 'text/event-stream' : 'application/json' };
  const authorization = upstreamAuthorization(target.apiKey, request, target.checksKeys);
  if (authorization) headers.authorization = authorization;
  const answer = await exchange(target.client, prepared, { stream, headers, signal: controller, metrics: target.metrics, kind: target.kind, endpoint, limiter: target.limiter, since });
  reply.code(answer.status);
  copyHeaders(answer.headers, reply);
  if ('json' in answer) return reply.send(answer.json);
  reply.headers({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  // Hijacked: the events go straight to the socket, with no stream between (Fastify's onResponse hooks still run at the end).
  const response = reply.raw;
  response.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  reply.hijack();
  answer.relayTo(response);
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
  const controller = inFlight(reply, target);
  const headers: Record<string, string> = { 'x-request-id': request.id, accept: String(request.headers.accept ?? '*/*') };
  if (raw.contentType) headers['content-type'] = raw.contentType;
  const authorization = upstreamAuthorization(target.apiKey, request, target.checksKeys);
  if (authorization) headers.authorization = authorization;
  const release = await target.limiter.acquire(controller);
  let response: Dispatcher.ResponseData;
  try {
    response = await target.client.request({ method: raw.method, path: raw.url, body: raw.body, headers, signal: controller });
  } catch (error) {
    release();
    target.metrics.upstreamRequests.inc({ upstream: target.kind, endpoint: 'passthrough', outcome: 'unreachable' });
    throw error;
  }
  response.body.once('close', release);
  target.metrics.upstreamRequests.inc({ upstream: target.kind, endpoint: 'passthrough', outcome: String(response.statusCode) });
  if (response.statusCode >= 400) {
    // Errors in the OpenAI shape whatever the upstream wrote (FastAPI's {"detail"}, plain text, …).
    const text = await target.client.text(response);
    reply.code(response.statusCode).header('x-lorauter-composition', 'passthrough').type('application/json; charset=utf-8');
    return reply.send(openAIShapedError(text, response.statusCode));
  }
  reply.code(response.statusCode);
  copyHeaders(response.headers, reply);
  reply.header('x-lorauter-composition', 'passthrough');
  return reply.send(response.body);
}

/**
 * The exchange's abort handle, registered as in flight until the answer ends (shutdown aborts
 * what is left at its grace deadline); a client that goes away aborts it.
 */
function inFlight(reply: FastifyReply, target: ProxyTarget): ExchangeAbort {
  const controller = new ExchangeAbort();
  target.inflight.add(controller);
  reply.raw.once('close', () => {
    target.inflight.delete(controller);
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller;
}

/**
 * The configured upstream key when there is one, else the client's own Authorization — unless the
 * gateway checks keys itself: then the client's key is the gateway's, and never leaves it.
 */
export function upstreamAuthorization(apiKey: string | undefined, request: FastifyRequest, gatewayKeys = false): string | undefined {
  if (apiKey) return `Bearer ${apiKey}`;
  return gatewayKeys ? undefined : request.headers.authorization;
}

function copyHeaders(headers: Dispatcher.ResponseData['headers'], reply: FastifyReply) {
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || UPSTREAM_ONLY.has(name) || name.startsWith(CORS_PREFIX) || name === 'x-request-id' || name.startsWith('x-lorauter-')) continue;
    reply.header(name, value);
  }
}
