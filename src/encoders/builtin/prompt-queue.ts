// Prompts shared with the encoder threads through memory, not messages: the event loop writes a
// prompt into a free slot, and a thread (or the event loop itself, in an idle turn) claims the
// oldest queued slot with a compare-and-swap. A thread that finds more work after a prompt never
// sleeps, so under load nobody pays for waking it (a message to a sleeping thread cost the event
// loop about 50 µs of CPU on a 2-core VM); it waits on a futex only when the queue is empty.

/**
 * Slot states. A thread's claim is OWNED_BY + its index and its write WRITING_BY + its index, so the
 * owner is known without a gap. Every change is a compare-and-swap by one side, except the stores
 * marked (store), which only the side holding the slot makes:
 *
 *   from             to               by                     when
 *   FREE             QUEUED           event loop (store)     a prompt is placed
 *   QUEUED           OWNED_BY+t       thread t               it claims the oldest queued prompt
 *   QUEUED           ON_EVENT_LOOP    event loop             it encodes the prompt itself (idle turn, late)
 *   OWNED_BY+t       WRITING_BY+t     thread t               its vector is ready: only now may it write
 *   WRITING_BY+t     DONE             thread t (store)       the vector is written
 *   OWNED_BY+t       ON_EVENT_LOOP    event loop             takeBack: thread t was too slow or failed;
 *                                                            t's swap to WRITING then fails and it writes nothing
 *   WRITING_BY+t     ON_EVENT_LOOP    event loop             takeBack of a stopped thread only (it died mid-write)
 *   DONE             FREE             event loop (store)     the result is read
 *   ON_EVENT_LOOP    FREE             event loop (store)     the event loop's own result is delivered
 *
 * So a thread writes into a slot only while the slot is WRITING_BY it, and the event loop never
 * reuses a slot in that state: a slot taken back and reused is never written by its old thread.
 */
const FREE = 0;
const QUEUED = 1;
const DONE = 2;
const ON_EVENT_LOOP = 3;
const OWNED_BY = 16;
const WRITING_BY = 1 << 16;

/** Control words: bumped after every prompt queued (threads wait on it); a result is announced. */
const PUBLISHED = 0;
const ANNOUNCED = 1;

/** What a thread needs to attach to the queue (all of it can be posted to a worker). */
export interface PromptQueueMemory {
  slots: number;
  dimensions: number;
  control: SharedArrayBuffer;
  /** Per slot: state, queue order, text start, text length. */
  slotWords: SharedArrayBuffer;
  text: SharedArrayBuffer;
  results: SharedArrayBuffer;
}

class QueueViews {
  readonly control: Int32Array;
  readonly state: Int32Array;
  readonly order: Int32Array;
  readonly textStart: Int32Array;
  readonly textLength: Int32Array;
  readonly text: Uint16Array;
  readonly results: Float32Array;

  constructor(readonly memory: PromptQueueMemory) {
    const { slots } = memory;
    this.control = new Int32Array(memory.control);
    this.state = new Int32Array(memory.slotWords, 0, slots);
    this.order = new Int32Array(memory.slotWords, 4 * slots, slots);
    this.textStart = new Int32Array(memory.slotWords, 8 * slots, slots);
    this.textLength = new Int32Array(memory.slotWords, 12 * slots, slots);
    this.text = new Uint16Array(memory.text);
    this.results = new Float32Array(memory.results);
  }

  /** The queued slot put in first, or -1. Plain reads to find it; the claim itself is atomic. */
  oldestQueued(): number {
    const { state, order } = this;
    let oldest = -1;
    for (let slot = 0; slot < state.length; slot++) {
      if (state[slot] === QUEUED && (oldest < 0 || order[slot] - order[oldest] < 0)) oldest = slot;
    }
    return oldest;
  }

  claim(owner: number): number {
    for (;;) {
      const slot = this.oldestQueued();
      if (slot < 0 || Atomics.compareExchange(this.state, slot, QUEUED, owner) === QUEUED) return slot;
    }
  }
}

/** The event loop's side: places prompts, takes back what threads leave, reads results. */
export class PromptQueue {
  private readonly views: QueueViews;
  private readonly freeSlots: number[] = [];
  /**
   * Text ranges in the order they were placed, so that the ring's space is reclaimed in order. A
   * range is its own record, not state of its slot: a slot freed out of order is reused while its
   * old range still waits for the ranges before it.
   */
  private readonly placed: { start: number; released: boolean }[] = [];
  private readonly placedBySlot = new Map<number, { released: boolean }>();
  private textHead = 0;
  private nextOrder = 0;

  constructor(readonly memory: PromptQueueMemory) {
    this.views = new QueueViews(memory);
    for (let slot = memory.slots - 1; slot >= 0; slot--) this.freeSlots.push(slot);
  }

  static create(slots: number, textUnits: number, dimensions: number): PromptQueue {
    return new PromptQueue({
      slots,
      dimensions,
      control: new SharedArrayBuffer(8),
      slotWords: new SharedArrayBuffer(16 * slots),
      text: new SharedArrayBuffer(2 * textUnits),
      results: new SharedArrayBuffer(4 * slots * dimensions),
    });
  }

  /** Longest text the queue can ever hold; longer ones are encoded by the caller. */
  get textCapacity(): number {
    return this.views.text.length;
  }

  /** Queues a prompt and wakes a waiting thread; the slot, or -1 when no slot or text space is free now. */
  place(text: string): number {
    if (this.freeSlots.length === 0) return -1;
    // An empty text still takes a unit, so that no two ranges start at the same place.
    const start = this.reserveText(Math.max(1, text.length));
    if (start < 0) return -1;
    const slot = this.freeSlots.pop()!;
    const { views } = this;
    for (let i = 0; i < text.length; i++) views.text[start + i] = text.charCodeAt(i);
    const range = { start, released: false };
    this.placed.push(range);
    this.placedBySlot.set(slot, range);
    views.textStart[slot] = start;
    views.textLength[slot] = text.length;
    views.order[slot] = this.nextOrder++ | 0;
    Atomics.store(views.state, slot, QUEUED);
    Atomics.add(views.control, PUBLISHED, 1);
    Atomics.notify(views.control, PUBLISHED, 1);
    return slot;
  }

  hasQueued(): boolean {
    return this.views.oldestQueued() >= 0;
  }

  /** Slots a thread is encoding now. */
  heldByThreads(): number {
    let held = 0;
    for (let slot = 0; slot < this.views.state.length; slot++) if (this.views.state[slot] >= OWNED_BY) held++;
    return held;
  }

  /** Claims the oldest queued slot for the event loop; -1 when none is queued. */
  claimOldest(): number {
    return this.views.claim(ON_EVENT_LOOP);
  }

  /** Claims a queued slot for the event loop: false when a thread claimed it first. */
  claim(slot: number): boolean {
    return Atomics.compareExchange(this.views.state, slot, QUEUED, ON_EVENT_LOOP) === QUEUED;
  }

  isQueued(slot: number): boolean {
    return Atomics.load(this.views.state, slot) === QUEUED;
  }

  /**
   * Takes a slot back from a thread: true when the thread still held it. From a live thread only a
   * slot it is still encoding (it then drops its vector unwritten); from a `stopped` one also a slot
   * it was writing into when it stopped.
   */
  takeBack(slot: number, thread: number, stopped = false): boolean {
    if (Atomics.compareExchange(this.views.state, slot, OWNED_BY + thread, ON_EVENT_LOOP) === OWNED_BY + thread) return true;
    return stopped && Atomics.compareExchange(this.views.state, slot, WRITING_BY + thread, ON_EVENT_LOOP) === WRITING_BY + thread;
  }

  /** Lets the next thread result send an announcement again; call before reading results. */
  acknowledge(): void {
    Atomics.store(this.views.control, ANNOUNCED, 0);
  }

  isDone(slot: number): boolean {
    return Atomics.load(this.views.state, slot) === DONE;
  }

  /** The thread holding the slot (encoding or writing), or -1 when none does. */
  owner(slot: number): number {
    const state = Atomics.load(this.views.state, slot);
    return state >= WRITING_BY ? state - WRITING_BY : state >= OWNED_BY ? state - OWNED_BY : -1;
  }

  /** A copy of a done slot's vector (a cached vector must not keep the shared buffer alive). */
  result(slot: number): Float32Array {
    const { dimensions } = this.memory;
    return this.views.results.slice(slot * dimensions, (slot + 1) * dimensions);
  }

  /** Frees a slot that is done or claimed by the event loop, and its text once earlier texts are freed. */
  release(slot: number): void {
    Atomics.store(this.views.state, slot, FREE);
    this.freeSlots.push(slot);
    const range = this.placedBySlot.get(slot)!;
    this.placedBySlot.delete(slot);
    range.released = true;
    while (this.placed.length > 0 && this.placed[0].released) this.placed.shift();
    if (this.placed.length === 0) this.textHead = 0;
  }

  /** Start of `length` free units in the text ring (kept contiguous), or -1. */
  private reserveText(length: number): number {
    const capacity = this.views.text.length;
    if (length > capacity) return -1;
    const tail = this.placed.length > 0 ? this.placed[0].start : this.textHead;
    const wrapped = this.placed.length > 0 && this.textHead <= tail;
    if (wrapped) {
      if (this.textHead + length > tail) return -1;
    } else if (this.textHead + length > capacity) {
      if (length > tail) return -1;
      this.textHead = 0;
    }
    const start = this.textHead;
    this.textHead += length;
    return start;
  }
}

/** A thread's side: claims prompts, writes vectors, announces results, waits when the queue is empty. */
export class PromptQueueWorker {
  private readonly views: QueueViews;

  constructor(
    memory: PromptQueueMemory,
    private readonly thread: number,
    private readonly announce: () => void,
  ) {
    this.views = new QueueViews(memory);
  }

  /** Encodes queued prompts for ever; `encode` must return vectors of the queue's dimensions. */
  serve(encode: (text: string) => Float32Array): never {
    const { views } = this;
    for (;;) {
      const slot = this.next();
      if (this.deliver(slot, encode(this.text(slot))) && Atomics.exchange(views.control, ANNOUNCED, 1) === 0) this.announce();
    }
  }

  /**
   * Writes a claimed slot's vector and marks it done; false, writing nothing, when the event loop
   * took the slot back meanwhile (this thread was too slow): the slot may already hold another prompt.
   */
  deliver(slot: number, vector: Float32Array): boolean {
    const { views } = this;
    if (Atomics.compareExchange(views.state, slot, OWNED_BY + this.thread, WRITING_BY + this.thread) !== OWNED_BY + this.thread) return false;
    views.results.set(vector, slot * views.memory.dimensions);
    Atomics.store(views.state, slot, DONE);
    return true;
  }

  /** Claims the oldest queued prompt's slot, waiting (asleep) until there is one. */
  next(): number {
    const { views } = this;
    for (;;) {
      const published = Atomics.load(views.control, PUBLISHED);
      const slot = views.claim(OWNED_BY + this.thread);
      if (slot >= 0) return slot;
      // Returns at once when a prompt was queued since `published` was read.
      Atomics.wait(views.control, PUBLISHED, published);
    }
  }

  text(slot: number): string {
    const start = this.views.textStart[slot];
    const units = this.views.text.subarray(start, start + this.views.textLength[slot]);
    let text = '';
    // fromCharCode keeps lone surrogates as they were (a decoder would replace them).
    for (let at = 0; at < units.length; at += 8192) text += String.fromCharCode.apply(null, units.subarray(at, at + 8192) as unknown as number[]);
    return text;
  }
}
