import { GatewayError } from '../errors.js';
import type { ExchangeSignal } from './exchange-abort.js';

export interface LimiterOptions {
  /** Requests to the upstream at once. */
  maxConcurrency: number;
  /** Requests waiting for a slot at most; beyond, 503 at once. */
  maxQueue: number;
  /** The longest a request waits for a slot; then 503. */
  queueTimeoutMs: number;
}

const busy = (message: string, retryAfterSeconds: number) => {
  const error = new GatewayError(503, message, 'service_unavailable', null, 'upstream_busy');
  error.retryAfterSeconds = retryAfterSeconds;
  return error;
};

/**
 * Bounds the requests in flight to the upstream, with a bounded queue and a bounded wait: a burst
 * beyond what the upstream takes is answered 503 with Retry-After, never left waiting without end.
 */
export class UpstreamLimiter {
  private active = 0;
  private readonly waiting: { grant: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(private readonly options: LimiterOptions) {}

  /**
   * Resolves with a release function once a slot is free; rejects with a 503 when the queue is full or
   * the wait too long. The wait is counted from `since` (performance.now()) when the request already
   * waited on the upstream before it asked for a slot (a driver's own lookup), so that the two never
   * add up to more than the queue timeout.
   */
  acquire(signal?: ExchangeSignal, since = performance.now()): Promise<() => void> {
    const release = this.tryAcquire();
    if (release) return Promise.resolve(release);
    const retryAfter = Math.max(1, Math.ceil(this.options.queueTimeoutMs / 1000));
    if (this.waiting.length >= this.options.maxQueue) return Promise.reject(busy('The upstream is at capacity and the queue is full; try again shortly.', retryAfter));
    const waitMs = this.options.queueTimeoutMs - (performance.now() - since);
    if (waitMs <= 0) return Promise.reject(busy(`No upstream slot came free within ${this.options.queueTimeoutMs} ms; try again shortly.`, retryAfter));
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          clearTimeout(entry.timer);
          resolve(this.take());
        },
        timer: setTimeout(() => {
          this.drop(entry);
          reject(busy(`No upstream slot came free within ${this.options.queueTimeoutMs} ms; try again shortly.`, retryAfter));
        }, waitMs),
      };
      this.waiting.push(entry);
      signal?.once('abort', () => {
        if (this.drop(entry)) {
          clearTimeout(entry.timer);
          reject(signal.reason);
        }
      });
    });
  }

  /** A slot's release function when one is free now, else undefined (no promise on the common path). */
  tryAcquire(): (() => void) | undefined {
    return this.active < this.options.maxConcurrency ? this.take() : undefined;
  }

  private take(): () => void {
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.waiting.shift()?.grant();
    };
  }

  private drop(entry: (typeof this.waiting)[number]): boolean {
    const at = this.waiting.indexOf(entry);
    if (at >= 0) this.waiting.splice(at, 1);
    return at >= 0;
  }
}
