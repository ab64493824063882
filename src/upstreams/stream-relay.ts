import type { Dispatcher } from 'undici';
import { shuttingDown } from '../errors.js';
import { toGatewayError } from './client.js';
import { ShutdownAbort, type ExchangeSignal } from './exchange-abort.js';
import { IncompleteStreamError, SSE_DONE, sseEvent, type OpenAIStreamRelay } from './sse.js';

/** Where a stream's text goes (the client's response): `write` answers false while it is full, until 'drain'. */
export interface EventSink {
  write(text: string): boolean;
  end(text?: string): unknown;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  readonly destroyed: boolean;
}

/** The upstream's side of one streamed exchange. */
export interface StreamSource {
  body: Dispatcher.ResponseData['body'];
  signal: ExchangeSignal;
  origin: string;
  /** Gives the upstream slot back. */
  release: () => void;
}

/** Bytes an upstream may still send after [DONE] before its connection is given up rather than reused. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

/**
 * An OpenAI stream written to the sink chunk by chunk as the upstream's bytes arrive, through the relay (the model
 * renamed), with no promise between the two sockets: what a chunk costs is paid on every chunk of every stream in
 * flight (8–10% less CPU a streamed request than through a generator, docs/benchmarks.md). The upstream is paused
 * while the sink is full. The last event and the end of the response go in one write; a stream that fails or ends
 * before [DONE] ends with an error event and [DONE].
 */
export function relayEvents(relay: OpenAIStreamRelay, sink: EventSink, source: StreamSource): void {
  const { body } = source;
  let settled = false;
  const settle = (tail: string | undefined, complete: boolean) => {
    if (settled) return;
    settled = true;
    body.off('data', onData);
    finish(source, complete);
    if (!sink.destroyed) sink.end(tail);
  };
  const onData = (chunk: Buffer) => {
    if (sink.destroyed) return settle(undefined, false);
    const text = relay.push(chunk);
    if (relay.done) return settle(text, true);
    if (text && !sink.write(text)) {
      body.pause();
      whenWritable(sink, () => body.resume());
    }
  };
  sink.once('close', () => settle(undefined, false));
  body.on('data', onData);
  body.once('end', () => settle(failureEvents(new IncompleteStreamError('The upstream ended the stream before data: [DONE].'), source), false));
  // Stays after settling: an abort may still destroy the body with an error.
  body.on('error', (error: Error) => settle(failureEvents(error, source), false));
}

/** Translated events (a native stream's, framed and ended by [DONE]) written to the sink, waiting while it is full. */
export async function pumpEvents(events: AsyncIterable<string>, sink: EventSink, source: StreamSource): Promise<void> {
  let complete = false;
  let tail: string | undefined;
  try {
    for await (const text of events) {
      if (sink.destroyed) break;
      if (text === SSE_DONE) {
        complete = true;
        tail = SSE_DONE;
        break;
      }
      if (!sink.write(text)) await new Promise<void>((resolve) => whenWritable(sink, resolve));
    }
    if (!complete && !sink.destroyed) throw new IncompleteStreamError('The upstream ended the stream before its last event.');
  } catch (error) {
    tail = failureEvents(error as Error, source);
  } finally {
    finish(source, complete);
  }
  if (!sink.destroyed) sink.end(tail);
}

function whenWritable(sink: EventSink, resume: () => void): void {
  const done = () => {
    sink.off('drain', done);
    sink.off('close', done);
    resume();
  };
  sink.on('drain', done);
  sink.on('close', done);
}

/**
 * The slot given back; the rest of the body read and dropped when the stream was complete (so that the connection is
 * reused: bounded by the body timeout and DRAIN_LIMIT_BYTES), else the upstream request aborted (so that it stops
 * generating).
 */
function finish({ body, signal, release }: StreamSource, complete: boolean): void {
  release();
  if (body.readableEnded) return;
  if (complete && !signal.aborted) body.dump({ limit: DRAIN_LIMIT_BYTES }).catch(() => {});
  else body.destroy();
}

/** The error event and [DONE] a failed stream ends with; nothing when its client has gone. */
function failureEvents(error: Error, { signal, origin }: StreamSource): string | undefined {
  if (signal.aborted && signal.reason instanceof ShutdownAbort) {
    return sseEvent(JSON.stringify(shuttingDown(signal.reason.message).toBody())) + SSE_DONE;
  }
  if (signal.aborted) return undefined;
  const gatewayError = toGatewayError(error, origin);
  const message =
    error instanceof IncompleteStreamError
      ? error.message
      : gatewayError.statusCode === 504
        ? 'The upstream stopped sending before the answer was complete (timeout).'
        : `The upstream stream failed: ${error.message}`;
  return sseEvent(JSON.stringify({ error: { message, type: gatewayError.type, param: null, code: gatewayError.code } })) + SSE_DONE;
}
