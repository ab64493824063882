import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { startWorker, threadScript } from '../../threads/start-worker.js';
import type { EncodePurpose, Encoder } from '../encoder.js';
import type { BuiltinEncoder, BuiltinEncoderOptions } from './builtin-encoder.js';
import type { EncoderThreadData, EncoderThreadReply } from './encoder-thread.js';
import { PromptQueue } from './prompt-queue.js';

export interface EncoderThreadsOptions {
  /** Worker threads that encode prompts. */
  threads: number;
  /**
   * A prompt a thread holds this long is encoded on the calling thread and the thread replaced; a
   * prompt no thread has taken within this long is encoded on the calling thread.
   */
  timeoutMs: number;
  /** Told when a thread fails or disagrees with the local fit; the encoder goes on without it. */
  onProblem?: (message: string, error?: unknown) => void;
  /** Told how many prompts were encoded, and where. */
  onEncoded?: (thread: EncodingThread, count: number) => void;
  /** The worker's script (tests substitute a faulty one). */
  script?: URL;
  /** Prompts shared with the threads at once, and UTF-16 units of their text; more wait here. */
  slots?: number;
  textUnits?: number;
  /** What timeouts and the idle rule measure, in ms (performance.now; tests drive their own). */
  clock?: () => number;
}

export type EncodingThread = 'worker' | 'event_loop';

interface Job {
  texts: readonly string[];
  vectors: Float32Array[];
  remaining: number;
  resolve: (vectors: Float32Array[]) => void;
  reject: (error: unknown) => void;
}

/** One prompt of a job, and when it was queued. */
interface Pending {
  job: Job;
  index: number;
  queuedAt: number;
}

interface Thread {
  /** Claims in the shared queue carry it; a replacement gets a new one. */
  index: number;
  worker: Worker;
  ready: boolean;
}

const THREAD_SCRIPT = threadScript('encoder-thread', import.meta.url);

const FIRST_RESPAWN_DELAY_MS = 500;
const MAX_RESPAWN_DELAY_MS = 60_000;
// A turn of the event loop that found no I/O takes a few microseconds; one that served a request, tens.
const IDLE_TURN_MS = 0.03;
const DEFAULT_SLOTS = 256;
// 2 MB: a request body (1 MiB by default) fits whole.
const DEFAULT_TEXT_UNITS = 1 << 20;

/**
 * The built-in encoder with prompts encoded on worker threads, so that the event loop serves HTTP
 * while another core encodes. Each thread fits the same encoder from the same examples (fitting is
 * deterministic; the fingerprints are compared), so a vector is the same wherever it was computed.
 * Prompts go into a queue in shared memory (see PromptQueue) the moment they arrive; threads take
 * them one at a time, oldest first, and the event loop takes the oldest itself only in turns it
 * has nothing else to do (see encodeWhenIdle). Task examples, and every prompt while no thread is
 * ready (starting, failed, closed), are encoded on the calling thread: nothing waits for a thread
 * that is not there.
 */
export class ThreadedBuiltinEncoder implements Encoder {
  readonly kind: string;
  readonly fingerprint: string;
  readonly dimensions: number;
  private readonly threads: Thread[] = [];
  private readonly queue: PromptQueue;
  /** The prompt in each slot of the shared queue. */
  private readonly inSlots: (Pending | undefined)[];
  private slotsInUse = 0;
  /** Prompts that found no free slot yet. */
  private readonly waiting: Pending[] = [];
  /** When a thread was first seen holding a slot's prompt. */
  private readonly heldSince = new Map<number, { thread: number; since: number }>();
  private readonly watchdog: NodeJS.Timeout;
  private nextThreadIndex = 0;
  private respawnDelayMs = FIRST_RESPAWN_DELAY_MS;
  private closed = false;
  private watchingForIdle = false;
  /** Threads started, prompts encoded by them, prompts encoded on the calling thread, passes of the watchdog. */
  readonly stats = { spawned: 0, threadTexts: 0, localTexts: 0, watchdogPasses: 0 };
  private readonly now: () => number;

  constructor(
    private readonly local: BuiltinEncoder,
    private readonly examples: readonly (readonly string[])[],
    private readonly fitOptions: BuiltinEncoderOptions,
    private readonly options: EncoderThreadsOptions,
  ) {
    this.now = options.clock ?? (() => performance.now());
    this.kind = local.kind;
    this.fingerprint = local.fingerprint;
    this.dimensions = local.dimensions;
    this.queue = PromptQueue.create(options.slots ?? DEFAULT_SLOTS, options.textUnits ?? DEFAULT_TEXT_UNITS, local.dimensions);
    this.inSlots = new Array(this.queue.memory.slots).fill(undefined);
    this.watchdog = setInterval(() => this.checkWaits(), Math.min(1000, Math.max(5, options.timeoutMs / 4)));
    this.watchdog.unref();
    for (let i = 0; i < options.threads; i++) this.spawn();
  }

  /** Resolves when every thread has fitted its encoder (or failed to). */
  async started(): Promise<void> {
    while (!this.closed && this.threads.some((thread) => !thread.ready)) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  get readyThreads(): number {
    let ready = 0;
    for (const thread of this.threads) if (thread.ready) ready++;
    return ready;
  }

  private get anyThreadReady(): boolean {
    return this.threads.some((thread) => thread.ready);
  }

  async encode(texts: readonly string[], purpose: EncodePurpose = 'query'): Promise<Float32Array[]> {
    if (purpose === 'example' || texts.length === 0) return this.encodeHere(texts);
    if (!this.anyThreadReady) return this.encodePromptsHere(texts);
    return new Promise((resolve, reject) => {
      const job: Job = { texts, vectors: new Array(texts.length), remaining: texts.length, resolve, reject };
      const queuedAt = this.now();
      for (let index = 0; index < texts.length; index++) {
        if (texts[index].length > this.queue.textCapacity) this.encodeOneHere({ job, index, queuedAt });
        else this.waiting.push({ job, index, queuedAt });
      }
      this.placeWaiting();
      if (this.waiting.length > 0 || this.slotsInUse > 0) this.encodeWhenIdle();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((thread) => this.retire(thread)));
    this.drainHere();
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

  private encodeOneHere(pending: Pending): void {
    let vector: Float32Array;
    try {
      vector = this.encodePromptsHere([pending.job.texts[pending.index]])[0];
    } catch (error) {
      pending.job.remaining = -1;
      pending.job.reject(error);
      return;
    }
    this.deliver(pending, vector);
  }

  private deliver(pending: Pending, vector: Float32Array): void {
    const { job } = pending;
    // A job whose other prompt failed has already been rejected.
    if (job.remaining < 0) return;
    job.vectors[pending.index] = vector;
    if (--job.remaining === 0) job.resolve(job.vectors);
  }

  /** Moves waiting prompts into free slots of the shared queue. */
  private placeWaiting(): void {
    let placed = 0;
    while (placed < this.waiting.length) {
      const pending = this.waiting[placed];
      const slot = this.queue.place(pending.job.texts[pending.index]);
      if (slot < 0) break;
      this.inSlots[slot] = pending;
      placed++;
    }
    if (placed === 0) return;
    this.waiting.splice(0, placed);
    // Prompts on the threads keep the process alive until they are answered.
    if (this.slotsInUse === 0) for (const thread of this.threads) thread.worker.ref();
    this.slotsInUse += placed;
  }

  /** Frees a slot whose prompt has been delivered (or taken back from a stopped thread). */
  private freeSlot(slot: number): void {
    this.queue.release(slot);
    this.inSlots[slot] = undefined;
    this.heldSince.delete(slot);
    if (--this.slotsInUse === 0) for (const thread of this.threads) thread.worker.unref();
    if (this.waiting.length > 0) this.placeWaiting();
  }

  /** Delivers the prompts the threads have encoded. */
  private collect(): void {
    this.queue.acknowledge();
    let count = 0;
    for (let slot = 0; slot < this.inSlots.length; slot++) {
      const pending = this.inSlots[slot];
      if (!pending || !this.queue.isDone(slot)) continue;
      const vector = this.queue.result(slot);
      this.freeSlot(slot);
      this.deliver(pending, vector);
      count++;
    }
    if (count === 0) return;
    this.stats.threadTexts += count;
    this.options.onEncoded?.('worker', count);
  }

  /** Encodes here the prompt of a slot the event loop has claimed or taken back, and frees the slot. */
  private encodeSlotHere(slot: number): void {
    const pending = this.inSlots[slot]!;
    this.freeSlot(slot);
    this.encodeOneHere(pending);
  }

  /** Encodes the oldest queued prompt here: one in a slot, else one still waiting for a slot. */
  private takeOldest(): boolean {
    const slot = this.queue.claimOldest();
    if (slot >= 0) {
      this.encodeSlotHere(slot);
      return true;
    }
    const pending = this.waiting.shift();
    if (!pending) return false;
    this.encodeOneHere(pending);
    return true;
  }

  /** Prompts no thread and no turn of the event loop has taken yet. */
  private get anyQueued(): boolean {
    return this.waiting.length > 0 || this.queue.hasQueued();
  }

  /** Every prompt not yet on a thread, encoded here. */
  private drainHere(): void {
    while (this.takeOldest());
  }

  /**
   * While prompts are queued, checks every turn of the event loop (setImmediate keeps the loop
   * polling without blocking) and encodes the oldest here when every ready thread is encoding one
   * and the turn before was idle: it took no more than IDLE_TURN_MS, so the loop found no I/O to
   * do. Encoding on the event loop costs more than on a thread (its caches hold the HTTP work, not
   * the encoder's tables), so it leaves prompts to idle threads and never takes one while it has
   * requests to serve; I/O that arrives meanwhile waits for one prompt.
   */
  private encodeWhenIdle(): void {
    if (this.watchingForIdle) return;
    this.watchingForIdle = true;
    let turnStarted = this.now();
    const check = () => {
      let queued = this.anyQueued;
      if (queued && this.now() - turnStarted <= IDLE_TURN_MS && this.queue.heldByThreads() >= this.readyThreads) {
        this.takeOldest();
        queued = this.anyQueued;
      }
      if (!queued) {
        this.watchingForIdle = false;
        return;
      }
      turnStarted = this.now();
      setImmediate(check);
    };
    setImmediate(check);
  }

  /**
   * Bounds every wait: a prompt queued longer than timeoutMs is encoded here, and a thread that has
   * held one prompt that long is replaced (its prompt encoded here).
   */
  private checkWaits(): void {
    this.stats.watchdogPasses++;
    if (this.slotsInUse > 0) this.collect();
    const now = this.now();
    const late = (pending: Pending) => now - pending.queuedAt > this.options.timeoutMs;
    while (this.waiting.length > 0 && late(this.waiting[0])) this.encodeOneHere(this.waiting.shift()!);
    for (let slot = 0; slot < this.inSlots.length; slot++) {
      const pending = this.inSlots[slot];
      if (!pending) continue;
      if (this.queue.isQueued(slot)) {
        if (late(pending) && this.queue.claim(slot)) this.encodeSlotHere(slot);
        continue;
      }
      const owner = this.queue.owner(slot);
      if (owner < 0) continue;
      const held = this.heldSince.get(slot);
      if (!held || held.thread !== owner) this.heldSince.set(slot, { thread: owner, since: now });
      else if (now - held.since > this.options.timeoutMs) {
        const thread = this.threads.find((candidate) => candidate.index === owner);
        if (thread) this.lost(thread, `an encoder thread did not answer within ${this.options.timeoutMs} ms`);
      }
    }
  }

  private spawn(): void {
    const index = this.nextThreadIndex++;
    const data: EncoderThreadData = { examples: this.examples, options: this.fitOptions, queue: this.queue.memory, thread: index };
    const worker = startWorker(this.options.script ?? THREAD_SCRIPT, data);
    const thread: Thread = { index, worker, ready: false };
    this.threads.push(thread);
    this.stats.spawned++;
    worker.on('message', (reply: EncoderThreadReply) => this.received(thread, reply));
    worker.on('error', (error) => this.lost(thread, 'an encoder thread failed', error));
    worker.on('exit', (code) => this.lost(thread, `an encoder thread exited with code ${code}`));
  }

  private received(thread: Thread, reply: EncoderThreadReply): void {
    if (reply.type === 'encoded') return this.collect();
    if (reply.fingerprint !== this.fingerprint) {
      this.options.onProblem?.(`an encoder thread fitted ${reply.fingerprint}, not ${this.fingerprint}: prompts are encoded on the event loop`);
      void this.close();
      return;
    }
    thread.ready = true;
    if (this.slotsInUse === 0) thread.worker.unref();
    this.respawnDelayMs = FIRST_RESPAWN_DELAY_MS;
  }

  /** A thread that failed, exited or timed out is stopped (its prompt is encoded here) and replaced. */
  private lost(thread: Thread, message: string, error?: unknown): void {
    const at = this.threads.indexOf(thread);
    if (at < 0) return;
    this.threads.splice(at, 1);
    void this.retire(thread);
    // With no thread left, what is queued is encoded here.
    if (!this.anyThreadReady) this.drainHere();
    if (this.closed) return;
    this.options.onProblem?.(message, error);
    const delay = this.respawnDelayMs;
    this.respawnDelayMs = Math.min(MAX_RESPAWN_DELAY_MS, delay * 2);
    setTimeout(() => {
      if (!this.closed) this.spawn();
    }, delay).unref();
  }

  /**
   * Stops a thread, then encodes here the prompts it held: once it has stopped it can neither take
   * another nor write into a slot that has been reused.
   */
  private async retire(thread: Thread): Promise<void> {
    thread.worker.removeAllListeners('message');
    thread.worker.removeAllListeners('exit');
    thread.worker.removeAllListeners('error');
    thread.worker.on('error', () => {});
    await thread.worker.terminate();
    for (let slot = 0; slot < this.inSlots.length; slot++) {
      if (this.inSlots[slot] && this.queue.takeBack(slot, thread.index, true)) this.encodeSlotHere(slot);
    }
    // Its last announcement may have been dropped with its listeners.
    this.collect();
  }
}
