import type { Demand } from './planner.js';
import { weightsOf, type Mixture } from './mixture.js';

interface Entry {
  key: string;
  mixture: Mixture;
  weights: ReadonlyMap<string, number>;
  weight: number;
  at: number;
}

/**
 * How often each mixture was asked for lately: a count that halves every `halfLifeMs`, for at most
 * `capacity` mixtures (the least asked for leave first). The clock is the caller's.
 */
export class DemandTracker {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: { capacity: number; halfLifeMs: number }) {}

  add(key: string, mixture: Mixture, now: number, count = 1): void {
    const entry = this.entries.get(key);
    if (entry) {
      entry.weight = this.decayed(entry, now) + count;
      entry.at = now;
      return;
    }
    this.entries.set(key, { key, mixture, weights: weightsOf(mixture), weight: count, at: now });
    if (this.entries.size > this.options.capacity * 2) this.prune(now);
  }

  /** Every tracked mixture with its demand now, the most asked for first, at most `capacity`. */
  snapshot(now: number): Demand[] {
    const list = [...this.entries.values()].map((entry) => ({ key: entry.key, mixture: entry.mixture, weights: entry.weights, weight: this.decayed(entry, now) }));
    list.sort((a, b) => b.weight - a.weight || (a.key < b.key ? -1 : 1));
    return list.slice(0, this.options.capacity);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private decayed(entry: Entry, now: number): number {
    return entry.weight * 2 ** (-(now - entry.at) / this.options.halfLifeMs);
  }

  private prune(now: number): void {
    const keep = new Set(this.snapshot(now).map((entry) => entry.key));
    for (const key of this.entries.keys()) if (!keep.has(key)) this.entries.delete(key);
  }
}
