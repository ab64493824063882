/**
 * The composition planner: pure decisions over plain data, called by the merge library (which does
 * the reading, merging, writing and loading) and by tests with hand-made cases.
 *
 * - What a request is served, from what the upstream holds now (chooseServed).
 * - What to build next and what to evict for it (planBuild): the expected benefit of a mixture is
 *   the demand for it and for mixtures close to it, times the fidelity it adds over what is live.
 */
import { fidelity, type Mixture } from './mixture.js';

/** A merged adapter the upstream holds (or will once its build ends). */
export interface LiveMerge {
  key: string;
  mixture: Mixture;
  weights: ReadonlyMap<string, number>;
  bytes: number;
  /** Never evicted (SGLang's pinned prototypes). */
  pinned?: boolean;
}

export interface ServeChoice {
  /** The weights actually applied. */
  served: Mixture;
  fidelity: number;
  /** The live merge that serves them; undefined for the top adapter alone. */
  merge?: string;
}

/**
 * The best composition available now: the exact merge when live, else the live merge or the single
 * adapter with the highest fidelity to the requested weights (a tie goes to the single adapter,
 * which keeps the server's batch to fewer adapters).
 */
export function chooseServed(requested: Mixture, exactKey: string, live: ReadonlyMap<string, LiveMerge>): ServeChoice {
  const exact = live.get(exactKey);
  if (exact) return { served: exact.mixture, fidelity: fidelity(requested, exact.weights), merge: exact.key };
  let best: ServeChoice = { served: [{ id: requested[0].id, weight: 1 }], fidelity: requested[0].weight };
  for (const merge of live.values()) {
    const score = fidelity(requested, merge.weights);
    if (score > best.fidelity + 1e-9) best = { served: merge.mixture, fidelity: score, merge: merge.key };
  }
  return best;
}

/** A mixture asked for, with its demand: requests, decayed with age. */
export interface Demand {
  key: string;
  mixture: Mixture;
  weights: ReadonlyMap<string, number>;
  weight: number;
}

export interface BuildBudgets {
  /** Merges live and building at most. */
  maxLive: number;
  /** Bytes of live and building merges at most. */
  maxBytes: number;
  /** Expected benefit (in requests served at full fidelity) below which nothing is built. */
  minGain: number;
  /**
   * The same, for a build that fits without evicting (room to spare costs a build, nothing served):
   * lower, so that the warm start and early traffic fill the budgets. minGain when absent.
   */
  minGainInRoom?: number;
  /** A build that evicts must keep at least this share of its gain after what the evictions lose (no churn of near-equals). */
  hysteresis: number;
}

export interface PlanInput {
  demand: readonly Demand[];
  live: readonly LiveMerge[];
  building: readonly LiveMerge[];
  budgets: BuildBudgets;
  bytesOf(mixture: Mixture): number;
  /** Mixtures considered for the build: the first this many of `demand` (the most asked for first); all when absent. */
  candidates?: number;
}

export interface BuildPlan {
  build: Demand;
  gain: number;
  evict: string[];
  /** Benefit lost by the evictions. */
  loss: number;
}

/**
 * The demand by adapter. A mixture adds fidelity only to demand that shares an adapter with it, so
 * each visit scores only those entries: a plan over a thousand mixtures and a hundred merges takes
 * milliseconds, not the tens a full scan would hold the event loop for.
 */
class SharingIndex {
  private readonly byAdapter = new Map<string, number[]>();
  private readonly visited: Int32Array;
  private round = 0;

  constructor(private readonly demand: readonly Demand[]) {
    this.visited = new Int32Array(demand.length);
    demand.forEach((entry, i) => entry.mixture.forEach(({ id }) => (this.byAdapter.get(id) ?? this.byAdapter.set(id, []).get(id)!).push(i)));
  }

  /** Calls `visit` once for each demand entry sharing an adapter with `weights`, with the fidelity they give it. */
  visit(weights: ReadonlyMap<string, number>, visit: (i: number, value: number) => void): void {
    const round = ++this.round;
    for (const id of weights.keys()) {
      for (const i of this.byAdapter.get(id) ?? []) {
        if (this.visited[i] === round) continue;
        this.visited[i] = round;
        visit(i, fidelity(this.demand[i].mixture, weights));
      }
    }
  }

  /** Per demand: the best fidelity it gets from the top adapter and the merges given. */
  coverage(merges: readonly LiveMerge[]): Float64Array {
    const best = Float64Array.from(this.demand, (entry) => entry.mixture[0].weight);
    for (const merge of merges) this.visit(merge.weights, (i, value) => (best[i] = Math.max(best[i], value)));
    return best;
  }

  benefit(covered: Float64Array): number {
    let total = 0;
    this.demand.forEach((entry, i) => (total += entry.weight * covered[i]));
    return total;
  }

  /** The evictable merge whose loss is least: the demand it alone serves best, times what the runner-up gives less. */
  cheapestEviction(kept: readonly LiveMerge[], building: readonly LiveMerge[]): LiveMerge | undefined {
    const best = Float64Array.from(this.demand, (entry) => entry.mixture[0].weight);
    const second = Float64Array.from(best);
    const owner = new Int32Array(this.demand.length).fill(-1);
    [...kept, ...building].forEach((merge, m) =>
      this.visit(merge.weights, (i, value) => {
        if (value > best[i]) {
          second[i] = best[i];
          best[i] = value;
          owner[i] = m;
        } else if (value > second[i]) second[i] = value;
      }),
    );
    const loss = new Float64Array(kept.length + building.length);
    this.demand.forEach((entry, i) => {
      if (owner[i] >= 0) loss[owner[i]] += entry.weight * (best[i] - second[i]);
    });
    let cheapest: LiveMerge | undefined;
    let least = Infinity;
    kept.forEach((merge, m) => {
      if (!merge.pinned && loss[m] < least) {
        least = loss[m];
        cheapest = merge;
      }
    });
    return cheapest;
  }
}

/**
 * The next merge to build, with the evictions that make room for it, or undefined when no build is
 * worth it within the budgets. Greedy: the demanded mixture that adds the most expected fidelity
 * over the live and building merges (at least minGainInRoom when it fits, minGain when it does not);
 * room is made by evicting the live merges that lose least, and only when what the build adds, net
 * of what the evictions lose, is worth it.
 */
export function planBuild(input: PlanInput): BuildPlan | undefined {
  const { demand, live, building, budgets } = input;
  const held = [...live, ...building];
  const heldKeys = new Set(held.map((merge) => merge.key));
  const index = new SharingIndex(demand);
  const covered = index.coverage(held);
  let best: { entry: Demand; gain: number } | undefined;
  for (const entry of demand.slice(0, input.candidates ?? demand.length)) {
    if (heldKeys.has(entry.key) || entry.mixture.length < 2) continue;
    let gain = 0;
    index.visit(entry.weights, (i, value) => {
      if (value > covered[i]) gain += demand[i].weight * (value - covered[i]);
    });
    if (gain > (best?.gain ?? Math.min(budgets.minGain, budgets.minGainInRoom ?? budgets.minGain))) best = { entry, gain };
  }
  if (!best) return undefined;
  const bytes = input.bytesOf(best.entry.mixture);
  if (bytes > budgets.maxBytes || building.length + 1 > budgets.maxLive) return undefined;

  const evict: string[] = [];
  let kept = [...live];
  const fits = () => kept.length + building.length + 1 <= budgets.maxLive && sum(kept) + sum(building) + bytes <= budgets.maxBytes;
  while (!fits()) {
    const victim = index.cheapestEviction(kept, building);
    if (!victim) return undefined;
    evict.push(victim.key);
    kept = kept.filter((merge) => merge !== victim);
  }
  if (evict.length === 0) return { build: best.entry, gain: best.gain, evict, loss: 0 };
  const baseline = index.benefit(covered);
  const withoutEvicted = index.coverage([...kept, ...building]);
  const withBuild = Float64Array.from(withoutEvicted);
  index.visit(best.entry.weights, (i, value) => (withBuild[i] = Math.max(withBuild[i], value)));
  const net = index.benefit(withBuild) - baseline;
  if (net <= budgets.minGain || net < budgets.hysteresis * best.gain) return undefined;
  return { build: best.entry, gain: best.gain, evict, loss: baseline - index.benefit(withoutEvicted) };
}

function sum(merges: readonly LiveMerge[]): number {
  return merges.reduce((total, merge) => total + merge.bytes, 0);
}
