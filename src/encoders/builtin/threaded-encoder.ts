import { extname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EncodePurpose, Encoder } from '../encoder.js';
import type { BuiltinEncoder, BuiltinEncoderOptions } from './builtin-encoder.js';
import type { EncoderThreadData, EncoderThreadReply } from './encoder-thread.js';

export interface EncoderThreadsOptions {
  /** Worker threads that encode prompts. */
  threads: number;
  /** Most prompts sent to a thread in one message. */
  maxBatch: number;
  /** A batch not answered within this long is encoded on the calling thread and its worker replaced. */
  timeoutMs: number;
  /** Told when a thread fails or disagrees with the local fit; the encoder goes on without it. */
  onProblem?: (message: string, error?: unknown) => void;
  /** Told how many prompts were encoded, and where. */
  onEncoded?: (thread: EncodingThread, count: number) => void;
  /** The worker's script (tests substitute a faulty one). */
  script?: URL;
}

export type EncodingThread = 'worker' | 'event_loop';

interface Job {
  texts: readonly string[];
  resolve: (vectors: Float32Array[]) => void;
  reject: (error: unknown) => void;
}

interface Batch {
  id: number;
  jobs: Job[];
  timer: NodeJS.Timeout;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  batch?: Batch;
}

const FROM_SOURCE = extname(fileURLToPath(import.meta.url)) === '.ts';
const THREAD_SCRIPT = new URL(`./encoder-thread${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

/**
 * A worker for the script. Run from TypeScript sources (tests, `npm run dev`), the thread loads it
 * through tsx, which Node 20 does not pass on to workers.
 */
function startWorker(script: URL, workerData: unknown): Worker {
  if (!script.pathname.endsWith('.ts')) return new Worker(script, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then(({ tsImport }) => tsImport(${JSON.stringify(script.href)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(code, { eval: true, workerData });
}

const FIRST_RESPAWN_DELAY_MS = 500;
const MAX_RESPAWN_DELAY_MS = 60_000;
// A turn of the event loop that found no I/O takes a few microseconds; one that served a request, tens.
const IDLE_TURN_MS = 0.03;

/**
 * The built-in encoder with prompts encoded on worker threads, so that the event loop serves HTTP
 * while another core encodes. Each thread fits the same encoder from the same examples (fitting is
 * deterministic; the fingerprints are compared), so a vector is the same wherever it was computed.
 * Prompts go to idle threads first; the event loop encodes those left queued only in turns it has
 * nothing else to do (see flush). Task examples, and every prompt while no thread is ready (starting, failed, closed), are
 * encoded on the calling thread: nothing waits for a thread that is not there.
 */
export class ThreadedBuiltinEncoder implements Encoder {
  readonly kind: string;
  readonly fingerprint: string;
  readonly dimensions: number;
  private readonly threads: Thread[] = [];
  private readonly queue: Job[] = [];
  private nextBatchId = 0;
  private respawnDelayMs = FIRST_RESPAWN_DELAY_MS;
  private closed = false;
  private flushing = false;
  private watchingForIdle = false;
  /** Threads started, batches sent to them and their prompts, prompts encoded on the calling thread. */
  readonly stats = { spawned: 0, batches: 0, threadTexts: 0, localTexts: 0 };

  constructor(
    private readonly local: BuiltinEncoder,
    private readonly examples: readonly (readonly string[])[],
    private readonly fitOptions: BuiltinEncoderOptions,
    private readonly options: EncoderThreadsOptions,
  ) {
    this.kind = local.kind;
    this.fingerprint = local.fingerprint;
    this.dimensions = local.dimensions;
    for (let i = 0; i < options.threads; i++) this.spawn();
  }

  /** Resolves when every thread has fitted its encoder (or failed to). */
  async started(): Promise<void> {
    while (!this.closed && this.threads.some((thread) => !thread.ready)) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  get readyThreads(): number {
    return this.threads.filter((thread) => thread.ready).length;
  }

  private get anyThreadReady(): boolean {
    return this.threads.some((thread) => thread.ready);
  }

  async encode(texts: readonly string[], purpose: EncodePurpose = 'query'): Promise<Float32Array[]> {
    if (purpose === 'example' || texts.length === 0) return this.encodeHere(texts);
    if (!this.anyThreadReady) return this.encodePromptsHere(texts);
    return new Promise((resolve, reject) => {
      this.queue.push({ texts, resolve, reject });
      this.flushSoon();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((thread) => this.retire(thread)));
    this.drainHere(this.queue.splice(0));
  }

  private encodeHere(texts: readonly string[]): Float32Array[] {
    this.stats.localTexts += texts.length;
    return texts.map((text) => this.local.encodeOne(text));
  }

  /** Prompts (not task examples), counted as encoded on the event loop. */
  private encodePromptsHere(texts: readonly string[]): Float32Array[] {
    this.options.onEncoded?.('event_loop', texts.length);
    return this.encodeHere(texts);
  }

  /** Queued prompts, encoded on the calling thread. */
  private drainHere(jobs: readonly Job[]): void {
    for (const job of jobs) {
      try {
        job.resolve(this.encodePromptsHere(job.texts));
      } catch (error) {
        job.reject(error);
      }
    }
  }

  private spawn(): void {
    const data: EncoderThreadData = { examples: this.examples, options: this.fitOptions };
    const worker = startWorker(this.options.script ?? THREAD_SCRIPT, data);
    const thread: Thread = { worker, ready: false };
    this.threads.push(thread);
    this.stats.spawned++;
    worker.on('message', (reply: EncoderThreadReply) => this.received(thread, reply));
    worker.on('error', (error) => this.lost(thread, 'an encoder thread failed', error));
    worker.on('exit', (code) => this.lost(thread, `an encoder thread exited with code ${code}`));
  }

  private received(thread: Thread, reply: EncoderThreadReply): void {
    if (reply.type === 'ready') {
      if (reply.fingerprint !== this.fingerprint) {
        this.options.onProblem?.(`an encoder thread fitted ${reply.fingerprint}, not ${this.fingerprint}: prompts are encoded on the event loop`);
        void this.close();
        return;
      }
      thread.ready = true;
      thread.worker.unref();
      this.respawnDelayMs = FIRST_RESPAWN_DELAY_MS;
      if (this.queue.length > 0) this.flushSoon();
      return;
    }
    const batch = thread.batch;
    if (!batch || batch.id !== reply.id) return;
    clearTimeout(batch.timer);
    thread.batch = undefined;
    thread.worker.unref();
    let row = 0;
    for (const job of batch.jobs) {
      // Copies: a cached vector must not keep its whole batch's buffer alive.
      job.resolve(job.texts.map(() => reply.vectors.slice(row * this.dimensions, ++row * this.dimensions)));
    }
    if (this.queue.length > 0) this.send(thread, this.take(this.options.maxBatch));
  }

  /**
   * Prompts that arrive in one turn of the event loop are shared out once its I/O has been read
   * (setImmediate): idle threads take equal shares (at most maxBatch each), and a thread that
   * answers takes the next batch from the queue at once. What the busy threads leave queued, the
   * event loop encodes itself, one call's prompts at a time, in turns that found no I/O to do: it
   * never sits idle while prompts wait, and I/O that arrives meanwhile waits for one call at most.
   * Encoding on the event loop costs more than on a thread (its caches hold the HTTP work, not the
   * encoder's tables), so it does not take a share up front.
   */
  private flushSoon(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      this.flush();
    });
  }

  private flush(): void {
    if (!this.anyThreadReady) return this.drainHere(this.queue.splice(0));
    const idle = this.threads.filter((thread) => thread.ready && !thread.batch);
    if (idle.length > 0) {
      const queued = this.queue.reduce((sum, job) => sum + job.texts.length, 0);
      const share = Math.min(this.options.maxBatch, Math.ceil(queued / idle.length));
      for (const thread of idle) if (this.queue.length > 0) this.send(thread, this.take(share));
    }
    if (this.queue.length > 0) this.encodeWhenIdle();
  }

  /**
   * While prompts are queued, checks every turn of the event loop (setImmediate keeps the loop
   * polling without blocking) and encodes one queued call here when the turn before was idle: it
   * took no more than IDLE_TURN_MS, so the loop found no I/O to do.
   */
  private encodeWhenIdle(): void {
    if (this.watchingForIdle) return;
    this.watchingForIdle = true;
    let turnStarted = performance.now();
    const check = () => {
      if (this.queue.length > 0 && performance.now() - turnStarted <= IDLE_TURN_MS) this.drainHere(this.take(1));
      if (this.queue.length === 0) {
        this.watchingForIdle = false;
        return;
      }
      turnStarted = performance.now();
      setImmediate(check);
    };
    setImmediate(check);
  }

  private take(count: number): Job[] {
    const jobs: Job[] = [];
    let taken = 0;
    while (this.queue.length > 0 && (jobs.length === 0 || taken + this.queue[0].texts.length <= count)) {
      const job = this.queue.shift()!;
      jobs.push(job);
      taken += job.texts.length;
    }
    return jobs;
  }

  private send(thread: Thread, jobs: Job[]): void {
    const id = this.nextBatchId++;
    const timer = setTimeout(() => this.lost(thread, `an encoder thread did not answer within ${this.options.timeoutMs} ms`), this.options.timeoutMs);
    timer.unref();
    thread.batch = { id, jobs, timer };
    // A batch in flight keeps the process alive until it is answered.
    thread.worker.ref();
    const texts = jobs.flatMap((job) => job.texts);
    thread.worker.postMessage({ id, texts });
    this.stats.batches++;
    this.stats.threadTexts += texts.length;
    this.options.onEncoded?.('worker', texts.length);
  }

  /** A thread that failed, exited or timed out is stopped (its batch is encoded here) and replaced. */
  private lost(thread: Thread, message: string, error?: unknown): void {
    const at = this.threads.indexOf(thread);
    if (at < 0) return;
    this.threads.splice(at, 1);
    void this.retire(thread);
    // Prompts queued for the threads: shared out again (on the event loop when no thread is left).
    if (this.queue.length > 0) this.flushSoon();
    if (this.closed) return;
    this.options.onProblem?.(message, error);
    const delay = this.respawnDelayMs;
    this.respawnDelayMs = Math.min(MAX_RESPAWN_DELAY_MS, delay * 2);
    setTimeout(() => {
      if (!this.closed) this.spawn();
    }, delay).unref();
  }

  /** Stops a thread; the batch it was encoding is encoded here. */
  private async retire(thread: Thread): Promise<void> {
    const batch = thread.batch;
    thread.batch = undefined;
    if (batch) {
      clearTimeout(batch.timer);
      this.drainHere(batch.jobs);
    }
    thread.worker.removeAllListeners('message');
    thread.worker.removeAllListeners('exit');
    thread.worker.removeAllListeners('error');
    thread.worker.on('error', () => {});
    await thread.worker.terminate();
  }
}
