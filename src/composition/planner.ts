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

/** Per demand: the best fidelity it gets from the top adapter and the merges given. */
function coverage(demand: readonly Demand[], merges: readonly LiveMerge[]): Float64Array {
  const best = new Float64Array(demand.length);
  demand.forEach((entry, i) => {
    let value = entry.mixture[0].weight;
    for (const merge of merges) value = Math.max(value, fidelity(entry.mixture, merge.weights));
    best[i] = value;
  });
  return best;
}

function benefit(demand: readonly Demand[], covered: Float64Array): number {
  let total = 0;
  demand.forEach((entry, i) => (total += entry.weight * covered[i]));
  return total;
}

/** The evictable merge whose loss is least: the demand it alone serves best, times what the runner-up gives less. */
function cheapestEviction(demand: readonly Demand[], kept: readonly LiveMerge[], building: readonly LiveMerge[]): LiveMerge | undefined {
  const held = [...kept, ...building];
  const loss = new Float64Array(held.length);
  demand.forEach((entry, i) => {
    let best = entry.mixture[0].weight;
    let second = best;
    let owner = -1;
    held.forEach((merge, m) => {
      const value = fidelity(entry.mixture, merge.weights);
      if (value > best) {
        second = best;
        best = value;
        owner = m;
      } else if (value > second) second = value;
    });
    if (owner >= 0) loss[owner] += entry.weight * (best - second);
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
  const covered = coverage(demand, held);
  // A mixture adds fidelity only to demand that shares an adapter with it: each candidate visits those alone.
  const sharing = new Map<string, number[]>();
  demand.forEach((entry, i) => entry.mixture.forEach(({ id }) => (sharing.get(id) ?? sharing.set(id, []).get(id)!).push(i)));
  const visitedBy = new Int32Array(demand.length).fill(-1);
  let best: { entry: Demand; gain: number } | undefined;
  demand.slice(0, input.candidates ?? demand.length).forEach((entry, candidate) => {
    if (heldKeys.has(entry.key) || entry.mixture.length < 2) return;
    let gain = 0;
    for (const { id } of entry.mixture) {
      for (const i of sharing.get(id) ?? []) {
        if (visitedBy[i] === candidate) continue;
        visitedBy[i] = candidate;
        const added = fidelity(demand[i].mixture, entry.weights) - covered[i];
        if (added > 0) gain += demand[i].weight * added;
      }
    }
    if (gain > (best?.gain ?? Math.min(budgets.minGain, budgets.minGainInRoom ?? budgets.minGain))) best = { entry, gain };
  });
  if (!best) return undefined;
  const bytes = input.bytesOf(best.entry.mixture);
  if (bytes > budgets.maxBytes || building.length + 1 > budgets.maxLive) return undefined;

  const evict: string[] = [];
  let kept = [...live];
  const fits = () => kept.length + building.length + 1 <= budgets.maxLive && sum(kept) + sum(building) + bytes <= budgets.maxBytes;
  while (!fits()) {
    const victim = cheapestEviction(demand, kept, building);
    if (!victim) return undefined;
    evict.push(victim.key);
    kept = kept.filter((merge) => merge !== victim);
  }
  if (evict.length === 0) return { build: best.entry, gain: best.gain, evict, loss: 0 };
  const baseline = benefit(demand, covered);
  const withoutEvicted = benefit(demand, coverage(demand, [...kept, ...building]));
  const net = benefit(demand, coverage(demand, [...kept, ...building, { ...best.entry, bytes, weights: best.entry.weights }])) - baseline;
  if (net <= budgets.minGain || net < budgets.hysteresis * best.gain) return undefined;
  return { build: best.entry, gain: best.gain, evict, loss: baseline - withoutEvicted };
}

function sum(merges: readonly LiveMerge[]): number {
  return merges.reduce((total, merge) => total + merge.bytes, 0);
}
