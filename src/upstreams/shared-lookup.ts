/**
 * A value a driver reads from its upstream for itself (llama.cpp's adapter table), shared by every
 * request: one read at a time whoever asks (single flight), kept `ttlMs`, each read bounded by its
 * own `timeoutMs`, a failed read remembered for `failureMemoryMs` (a dead upstream costs one timeout,
 * not one per request), and a forced refresh at most once per `minRefreshMs`. While no read has
 * succeeded, or after one fails, callers get the last value read (or `fallback`) at once.
 */
export interface SharedLookupOptions<T> {
  read: (signal: AbortSignal) => Promise<T>;
  fallback: T;
  ttlMs: number;
  timeoutMs: number;
  failureMemoryMs: number;
  minRefreshMs: number;
  onFailure?: (error: Error) => void;
  clock?: () => number;
}

export class SharedLookup<T> {
  private value?: { data: T; at: number };
  private failedAt = -Infinity;
  private inFlight?: Promise<T>;
  private lastRead = -Infinity;
  private readonly clock: () => number;

  constructor(private readonly options: SharedLookupOptions<T>) {
    this.clock = options.clock ?? Date.now;
  }

  /** The value, read again when it is older than the TTL, or when `refresh` asks and the last read is older than minRefreshMs. */
  get(refresh = false): Promise<T> {
    const now = this.clock();
    const fresh = this.value && now - this.value.at < this.options.ttlMs;
    const refreshDue = refresh && now - this.lastRead >= this.options.minRefreshMs;
    if (fresh && !refreshDue) return Promise.resolve(this.value!.data);
    if (this.inFlight) return this.inFlight;
    if (now - this.failedAt < this.options.failureMemoryMs || (refresh && !refreshDue)) return Promise.resolve(this.last());
    this.lastRead = now;
    this.inFlight = this.options
      .read(AbortSignal.timeout(this.options.timeoutMs))
      .then(
        (data) => {
          this.value = { data, at: this.clock() };
          this.failedAt = -Infinity;
          return data;
        },
        (error: Error) => {
          this.failedAt = this.clock();
          this.options.onFailure?.(error);
          return this.last();
        },
      )
      .finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** Forget the value (the upstream said it changed): the next get reads it again. */
  invalidate(): void {
    this.value = undefined;
    this.lastRead = -Infinity;
  }

  private last(): T {
    return this.value?.data ?? this.options.fallback;
  }
}
