/**
 * Open-addressing hash table from a 64-bit n-gram key (two 32-bit halves) to a dense feature id.
 * One Int32Array with the two key halves and the id side by side, so that a probe touches one
 * cache line; lookups on the hot path allocate nothing.
 */
export class FeatureTable {
  // [key1, key2, id] per slot; id -1 marks an empty slot.
  private slots: Int32Array;
  private mask: number;
  size = 0;

  /** `maxLoad`: the share of slots in use before the table grows (probes stay short below 0.7). */
  constructor(
    capacity = 1024,
    private readonly maxLoad = 0.5,
  ) {
    const count = 2 ** Math.ceil(Math.log2(Math.max(16, capacity / maxLoad)));
    this.slots = emptySlots(count);
    this.mask = count - 1;
  }

  /** The id of a key, or -1. */
  get(key1: number, key2: number): number {
    const slots = this.slots;
    let slot = slotOf(key1, key2) & this.mask;
    for (;;) {
      const at = slot * 3;
      const id = slots[at + 2];
      if (id < 0) return -1;
      if (slots[at] === key1 && slots[at + 1] === key2) return id;
      slot = (slot + 1) & this.mask;
    }
  }

  /** The id of a key, adding it with the next id when new. */
  add(key1: number, key2: number): number {
    if (this.size + 1 > this.maxLoad * (this.mask + 1)) this.rehash((this.mask + 1) * 2);
    let slot = slotOf(key1, key2) & this.mask;
    for (;;) {
      const at = slot * 3;
      const id = this.slots[at + 2];
      if (id < 0) {
        this.slots[at] = key1;
        this.slots[at + 1] = key2;
        this.slots[at + 2] = this.size;
        return this.size++;
      }
      if (this.slots[at] === key1 && this.slots[at + 1] === key2) return id;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Keys in id order: [key1, key2] pairs flattened (for fingerprints). */
  keysInIdOrder(): Int32Array {
    const keys = new Int32Array(this.size * 2);
    for (let at = 0; at < this.slots.length; at += 3) {
      const id = this.slots[at + 2];
      if (id < 0) continue;
      keys[2 * id] = this.slots[at];
      keys[2 * id + 1] = this.slots[at + 1];
    }
    return keys;
  }

  private rehash(count: number): void {
    const old = this.slots;
    this.slots = emptySlots(count);
    this.mask = count - 1;
    for (let at = 0; at < old.length; at += 3) {
      if (old[at + 2] < 0) continue;
      let slot = slotOf(old[at], old[at + 1]) & this.mask;
      while (this.slots[slot * 3 + 2] >= 0) slot = (slot + 1) & this.mask;
      this.slots.set(old.subarray(at, at + 3), slot * 3);
    }
  }
}

function emptySlots(count: number): Int32Array {
  const slots = new Int32Array(count * 3);
  for (let at = 2; at < slots.length; at += 3) slots[at] = -1;
  return slots;
}

function slotOf(key1: number, key2: number): number {
  const mixed = Math.imul(key1 ^ Math.imul(key2, 0x27d4eb2f), 0x9e3779b1);
  return mixed ^ (mixed >>> 16);
}
