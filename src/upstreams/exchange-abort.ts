import { EventEmitter } from 'node:events';

/** The reason an exchange is aborted with when the gateway stops: its stream ends with an error event, not in silence. */
export class ShutdownAbort extends Error {
  override name = 'ShutdownAbort';
  constructor() {
    super('The gateway is shutting down; the answer was cut short.');
  }
}

/** What an exchange is aborted by (its client going away, the gateway stopping): undici takes it as a request's signal. */
export interface ExchangeSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  once(event: 'abort', listener: () => void): unknown;
}

/**
 * The abort source of one exchange, an EventEmitter rather than an AbortController: one per proxied request, and an
 * AbortController (an EventTarget with its own listener map) per request was promoted out of the young generation
 * under load: each scavenge copied twice the bytes and promoted 3.4× as many, a pause for every request in flight
 * (docs/benchmarks.md).
 */
export class ExchangeAbort extends EventEmitter implements ExchangeSignal {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown = new DOMException('The client closed the request.', 'AbortError')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

/**
 * The exchanges in flight, for shutdown to abort what is left at its deadline: a linked list through the exchanges
 * themselves, since a Set with an entry added and deleted on every request kept ~70 KB more of them alive through
 * each scavenge under load (docs/benchmarks.md).
 */
export class InflightExchanges {
  private readonly head: Linked = { previous: undefined, next: undefined };
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(exchange: ExchangeAbort): void {
    const node = exchange as ExchangeAbort & Linked;
    node.previous = this.head;
    node.next = this.head.next;
    if (this.head.next) this.head.next.previous = node;
    this.head.next = node;
    this.count++;
  }

  delete(exchange: ExchangeAbort): void {
    const node = exchange as ExchangeAbort & Linked;
    if (!node.previous) return;
    node.previous.next = node.next;
    if (node.next) node.next.previous = node.previous;
    node.previous = node.next = undefined;
    this.count--;
  }

  /** The exchanges as they are now: aborting one may take it, or another, out of the list at once. */
  [Symbol.iterator](): IterableIterator<ExchangeAbort> {
    const all: ExchangeAbort[] = [];
    for (let node = this.head.next; node; node = node.next) all.push(node as unknown as ExchangeAbort);
    return all[Symbol.iterator]();
  }
}

interface Linked {
  previous: Linked | undefined;
  next: Linked | undefined;
}
