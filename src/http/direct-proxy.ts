import type { FastifyBaseLogger } from 'fastify';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { OpenAIEndpoint } from '../upstreams/types.js';
import { asGatewayError, validationError, type AjvIssue, type JsonBodyParser, type RequestError } from './errors.js';
import type { OpenAIProxy } from './openai-proxy.js';
import type { ProxyAnswer, ProxyCall } from './proxy.js';
import { requestIdOf } from './request-id.js';
import { requestLines } from './request-log.js';

/** Takes a request and answers it (true), or leaves it to Fastify (false) untouched: nothing of its body read. */
export type DirectHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

/** A compiled body schema, as Fastify's validator compiler makes it. */
export type BodyValidator = ((body: unknown) => boolean) & { errors?: AjvIssue[] | null };

export interface DirectProxyOptions {
  proxy: OpenAIProxy;
  parse: JsonBodyParser;
  /** The compiled schemas of the endpoints' bodies, from the same compiler as Fastify's routes. */
  validators: Record<OpenAIEndpoint, BodyValidator>;
  bodyLimit: number;
  /** A request's logger, as Fastify makes it (its child factory on the app's logger). */
  requestLog: (id: string) => FastifyBaseLogger;
  metrics: GatewayMetrics;
  /** Whether this request must go through Fastify anyway (it sheds load, or the app is closing). */
  handOver: () => boolean;
}

const ENDPOINTS: Record<string, OpenAIEndpoint> = { '/v1/chat/completions': 'chat', '/v1/completions': 'completions' };
// The spellings clients send; any other goes through Fastify, whose parser decides.
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8', 'application/json; charset=UTF-8']);
const DECIMAL = /^\d{1,10}$/;
const ERROR_TYPE = 'application/json; charset=utf-8';

/**
 * The OpenAI prompt endpoints (POST /v1/chat/completions, /v1/completions) answered outside Fastify's request
 * lifecycle: what Fastify costs a request there (hooks, the request and reply objects, content-type dispatch) is a
 * tenth of a proxied chat's CPU. Taken only when the answer is the one Fastify would give — a JSON body of a length
 * given and within the limit, nothing that would shed or refuse it — and made of the same parts: the same JSON parser,
 * the compiled schemas, the error mapping, the request id, the two log lines and the request metrics. Everything else,
 * and every request while Fastify sheds load or closes, goes through Fastify. test/direct-proxy.test.ts sends each
 * kind of request both ways and compares the answers.
 */
export function directProxy(options: DirectProxyOptions): DirectHandler {
  const { proxy, parse, validators, bodyLimit, metrics } = options;

  function takes(request: IncomingMessage): OpenAIEndpoint | undefined {
    if (request.method !== 'POST') return undefined;
    const endpoint = ENDPOINTS[request.url!];
    if (endpoint === undefined) return undefined;
    const { headers } = request;
    const length = headers['content-length'];
    if (length === undefined || !DECIMAL.test(length) || Number(length) > bodyLimit || headers['transfer-encoding'] !== undefined) return undefined;
    if (!JSON_TYPES.has(headers['content-type']!)) return undefined;
    return options.handOver() ? undefined : endpoint;
  }

  function serve(endpoint: OpenAIEndpoint, request: IncomingMessage, response: ServerResponse): void {
    const started = performance.now();
    const id = requestIdOf(request.headers);
    const log = options.requestLog(id);
    const headers: OutgoingHttpHeaders = { 'x-request-id': id };
    const call: ProxyCall = {
      id,
      authorization: request.headers.authorization,
      log,
      response,
      elapsedMs: () => performance.now() - started,
      header: (name, value) => void (headers[name.toLowerCase()] = value),
    };
    requestLines.incoming(log, request);
    const finished = (error?: Error) => {
      response.off('finish', finished);
      response.off('error', finished);
      const elapsed = performance.now() - started;
      metrics.httpRequests.inc({ route: request.url!, method: 'POST', status: String(response.statusCode) });
      metrics.httpDuration.observe({ route: request.url! }, elapsed / 1000);
      requestLines.completed(log, response.statusCode, elapsed, error);
    };
    response.on('finish', finished);
    response.on('error', finished);

    const fail = (error: unknown) => {
      if (response.writableEnded) return;
      if (response.headersSent) return void response.destroy();
      writeError(response, headers, asGatewayError(error as RequestError, log));
    };
    // As Fastify does when a body does not arrive or does not parse: the connection is closed after the answer (the
    // client may still be sending).
    const refuseBody = (error: unknown) => {
      headers.connection = 'close';
      fail(error);
    };
    const chunks: Buffer[] = [];
    let received = 0;
    request.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    request.on('error', (error: RequestError) => {
      if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400;
      refuseBody(error);
    });
    request.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = parse('POST', chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks, received).toString('utf8')) as Record<string, unknown>;
      } catch (error) {
        return refuseBody(error);
      }
      const validate = validators[endpoint];
      if (!validate(body)) return fail(validationError(validate.errors ?? [], 'body'));
      proxy.answer(endpoint, body, call).then((answer) => write(response, headers, answer), fail);
    });
  }

  return (request, response) => {
    const endpoint = takes(request);
    if (endpoint === undefined) return false;
    serve(endpoint, request, response);
    return true;
  };
}

function write(response: ServerResponse, headers: OutgoingHttpHeaders, answer: ProxyAnswer): void {
  if ('json' in answer) return writeJson(response, answer.status, headers, answer.json);
  response.writeHead(answer.status, headers);
  answer.relayTo(response);
}

function writeJson(response: ServerResponse, status: number, headers: OutgoingHttpHeaders, json: string): void {
  headers['content-length'] = String(Buffer.byteLength(json));
  response.writeHead(status, headers);
  response.end(json);
}

/** As sendError answers through Fastify: the headers set so far, Retry-After when the error has one. */
function writeError(response: ServerResponse, headers: OutgoingHttpHeaders, error: GatewayError): void {
  delete headers['content-length'];
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  headers['content-type'] = ERROR_TYPE;
  writeJson(response, error.statusCode, headers, JSON.stringify(error.toBody()));
}
