import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Pool, errors, type Dispatcher } from 'undici';
import { AnswerTooLargeError, boundedText, DEFAULT_MAX_ANSWER_BYTES } from '../bounded-text.js';
import { GatewayError } from '../errors.js';
import { tracer } from '../observability/tracing.js';
import type { ExchangeSignal } from './exchange-abort.js';

export interface UpstreamClientOptions {
  url: string;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** The largest answer `text()` reads (default: 64 MiB). */
  maxAnswerBytes?: number;
  connections?: number;
}

export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  /** JSON-serialised unless a string or bytes (sent as they are). */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | ExchangeSignal;
}

const REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);
const RESET = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);

/** undici pool to one upstream: pooled keep-alive connections, bounded timeouts, safe retries only. */
export class UpstreamClient {
  private readonly pool: Pool;
  readonly origin: string;
  private readonly basePath: string;

  constructor(private readonly options: UpstreamClientOptions) {
    const url = new URL(options.url);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(this.origin, {
      connections: options.connections ?? 128,
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  /**
   * Sends a request. Retried only when nothing can have reached the upstream (connection refused),
   * and for GETs also on a reset connection. Failures become 502/504 GatewayErrors.
   */
  request(request: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    // A span (and W3C traceparent upstream) for calls made within a traced request; health checks and start-up calls have none.
    return trace.getSpan(context.active()) ? this.traced(request) : this.send(request);
  }

  private async traced(request: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    const path = request.path.split('?')[0];
    const span = tracer.startSpan('lorauter.upstream', {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': request.method, 'url.path': this.basePath + path, 'server.address': this.origin },
    });
    const headers = { ...request.headers };
    propagation.inject(trace.setSpan(context.active(), span), headers);
    try {
      const response = await this.send({ ...request, headers });
      span.setAttribute('http.response.status_code', response.statusCode);
      if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      // Streams: the span lasts until the answer has been read.
      response.body.once('close', () => span.end());
      return response;
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      span.end();
      throw error;
    }
  }

  private async send(request: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    const body =
      request.body === undefined ? undefined : typeof request.body === 'string' || Buffer.isBuffer(request.body) ? request.body : JSON.stringify(request.body);
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.pool.request({ method: request.method, path: this.basePath + request.path, headers, body, signal: request.signal });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        const retriable = REFUSED.has(code) || (request.method === 'GET' && RESET.has(code));
        if (retriable && attempt < 2 && !request.signal?.aborted) {
          await new Promise((resolve) => setTimeout(resolve, 50 * 3 ** attempt));
          continue;
        }
        throw toGatewayError(error as Error, this.origin);
      }
    }
  }

  /**
   * An answer's body as text, up to maxAnswerBytes: a larger one (by its content-length, or as it comes when chunked)
   * is not read on, and is the upstream's failure (502).
   */
  async text(response: Dispatcher.ResponseData): Promise<string> {
    const limit = this.options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
    try {
      return await boundedText(response, limit);
    } catch (error) {
      if (error instanceof AnswerTooLargeError) {
        throw new GatewayError(502, `The upstream at ${this.origin} answered more than ${limit} bytes (LORAUTER_UPSTREAM_MAX_ANSWER_BYTES).`, 'upstream_error', null, 'upstream_answer_too_large');
      }
      throw toGatewayError(error as Error, this.origin);
    }
  }

  /** A JSON request whose non-2xx answer is an error; for the drivers' own calls. */
  async json<T>(method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string>, signal?: AbortSignal): Promise<{ status: number; data: T; text: string }> {
    const response = await this.request({ method, path, body, headers, signal });
    const text = await this.text(response);
    let data: unknown = text;
    try {
      data = JSON.parse(text);
    } catch {
      // plain-text answers (vLLM's load_lora_adapter) stay text
    }
    return { status: response.statusCode, data: data as T, text };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

export function toGatewayError(error: Error, origin: string): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) {
    return new GatewayError(504, `The upstream at ${origin} did not answer in time.`, 'timeout_error', null, 'upstream_timeout');
  }
  if (error instanceof errors.ConnectTimeoutError) {
    return new GatewayError(504, `Connecting to the upstream at ${origin} timed out.`, 'timeout_error', null, 'upstream_connect_timeout');
  }
  if (error instanceof errors.RequestAbortedError || error.name === 'AbortError') {
    return new GatewayError(499, 'The client closed the request.', 'invalid_request_error', null, 'client_closed_request');
  }
  const code = (error as NodeJS.ErrnoException).code;
  return new GatewayError(502, `The upstream at ${origin} is unreachable (${code ?? error.message}).`, 'upstream_error', null, 'upstream_unavailable');
}
