export interface MicroBatcherOptions {
  /** Most items in one run. */
  maxBatch: number;
  /** Longest an item waits for others to join its batch while nothing is running. */
  maxWaitMs: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers items submitted by concurrent callers into batches for one `run` each. One run at a
 * time: items that arrive during a run are batched for the next one, which starts as soon as the
 * run ends (they have waited already); an idle batcher waits at most `maxWaitMs` for a batch to fill.
 */
export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly options: MicroBatcherOptions,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  submitMany(items: readonly I[]): Promise<O[]> {
    return Promise.all(items.map((item) => this.submit(item)));
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queue.length >= this.options.maxBatch) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.maxWaitMs);
    }
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.running = true;
    Promise.resolve()
      .then(() => this.run(batch.map((pending) => pending.item)))
      .then(
      (outputs) => batch.forEach((pending, i) => pending.resolve(outputs[i])),
      (error) => batch.forEach((pending) => pending.reject(error)),
    ).finally(() => {
      this.running = false;
      if (this.queue.length > 0) this.flush();
    });
  }
}
