/**
 * Open-addressing hash table from a 64-bit n-gram key (two 32-bit halves) to a dense feature id.
 * Typed arrays only, so lookups on the hot path allocate nothing.
 */
export class FeatureTable {
  private keys1: Int32Array;
  private keys2: Int32Array;
  private ids: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(16, capacity * 2)));
    this.keys1 = new Int32Array(slots);
    this.keys2 = new Int32Array(slots);
    this.ids = new Int32Array(slots).fill(-1);
    this.mask = slots - 1;
  }

  /** The id of a key, or -1. */
  get(key1: number, key2: number): number {
    let slot = slotOf(key1, key2) & this.mask;
    for (;;) {
      const id = this.ids[slot];
      if (id < 0) return -1;
      if (this.keys1[slot] === key1 && this.keys2[slot] === key2) return id;
      slot = (slot + 1) & this.mask;
    }
  }

  /** The id of a key, adding it with the next id when new. */
  add(key1: number, key2: number): number {
    if ((this.size + 1) * 2 > this.ids.length) this.rehash(this.ids.length * 2);
    let slot = slotOf(key1, key2) & this.mask;
    for (;;) {
      const id = this.ids[slot];
      if (id < 0) {
        this.keys1[slot] = key1;
        this.keys2[slot] = key2;
        this.ids[slot] = this.size;
        return this.size++;
      }
      if (this.keys1[slot] === key1 && this.keys2[slot] === key2) return id;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Keys in id order: [key1, key2] pairs flattened (for fingerprints). */
  keysInIdOrder(): Int32Array {
    const keys = new Int32Array(this.size * 2);
    for (let slot = 0; slot < this.ids.length; slot++) {
      const id = this.ids[slot];
      if (id < 0) continue;
      keys[2 * id] = this.keys1[slot];
      keys[2 * id + 1] = this.keys2[slot];
    }
    return keys;
  }

  private rehash(slots: number): void {
    const { keys1, keys2, ids } = this;
    this.keys1 = new Int32Array(slots);
    this.keys2 = new Int32Array(slots);
    this.ids = new Int32Array(slots).fill(-1);
    this.mask = slots - 1;
    for (let slot = 0; slot < ids.length; slot++) {
      if (ids[slot] < 0) continue;
      let target = slotOf(keys1[slot], keys2[slot]) & this.mask;
      while (this.ids[target] >= 0) target = (target + 1) & this.mask;
      this.keys1[target] = keys1[slot];
      this.keys2[target] = keys2[slot];
      this.ids[target] = ids[slot];
    }
  }
}

function slotOf(key1: number, key2: number): number {
  const mixed = Math.imul(key1 ^ Math.imul(key2, 0x27d4eb2f), 0x9e3779b1);
  return mixed ^ (mixed >>> 16);
}
