import { meanOf, rank, type HalvingResult, type Tally } from './halving.js';

export interface BoundsOptions {
  /** The most upstream calls the task may take (never exceeded). */
  budget: number;
  /** Examples the task has; a candidate is scored on them in order, one more at a time. */
  examples: number;
  /**
   * Candidates scored together in a round: the leader and the strongest challengers. Fixed rather than the
   * concurrency, so that a rerun takes the same path and reuses every saved answer.
   */
  batch?: number;
  /** Width of the confidence bounds (standard normal quantile). */
  z?: number;
}

export const DEFAULT_BOUNDS_Z = 1.96;
export const DEFAULT_BOUNDS_BATCH = 8;

/** Wilson score bounds of a mean over `count` scores in [0, 1]. */
export function wilsonBounds(tally: Tally, z: number): { lower: number; upper: number } {
  if (tally.count === 0) return { lower: 0, upper: 1 };
  const n = tally.count;
  const mean = meanOf(tally);
  const centre = (mean + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z * Math.sqrt((mean * (1 - mean)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/**
 * Best-arm identification within a fixed budget of calls, by confidence bounds (LUCB): every candidate is scored on
 * one example; then, round after round, the candidate with the best lower bound (the leader) and those whose upper
 * bounds come closest to overtaking it (the challengers) are each scored on their next example, until the leader's
 * lower bound clears every challenger's upper bound, or the budget or the examples run out. A 0.9 adapter among 0.1
 * ones stands out after a few examples wherever its first answer fell; a weak one that started lucky is scored
 * until its bound comes down, not kept or dropped by a coin toss. The pick is the best lower bound; leaders still
 * tied get further examples while the budget allows, then the task's own adapter, then the smaller id.
 */
export async function bestByBounds(
  adapters: readonly string[],
  options: BoundsOptions,
  ownAdapter: string,
  score: (adapter: string, example: number) => Promise<number>,
): Promise<HalvingResult> {
  const z = options.z ?? DEFAULT_BOUNDS_Z;
  const batch = Math.max(2, options.batch ?? DEFAULT_BOUNDS_BATCH);
  const tallies = new Map(adapters.map((adapter) => [adapter, { adapter, sum: 0, count: 0 }]));
  let budget = Math.floor(options.budget);
  const byPreference = (a: Tally, b: Tally) => Number(b.adapter === ownAdapter) - Number(a.adapter === ownAdapter) || (a.adapter < b.adapter ? -1 : 1);
  const all = [...tallies.values()].sort(byPreference);
  const lower = (tally: Tally) => wilsonBounds(tally, z).lower;
  const upper = (tally: Tally) => wilsonBounds(tally, z).upper;
  const open = (tally: Tally) => tally.count < options.examples;
  // Best first: the lower bound, then the mean, then the own adapter and the smaller id.
  const byLowerBound = (a: Tally, b: Tally) => lower(b) - lower(a) || meanOf(b) - meanOf(a) || byPreference(a, b);

  const play = async (players: Tally[]) => {
    budget -= players.length;
    await Promise.all(
      players.map(async (tally) => {
        // Awaited first: `sum += await …` would read the sum before the wait and lose concurrent updates.
        const value = await score(tally.adapter, tally.count);
        tally.sum += value;
        tally.count++;
      }),
    );
  };

  const choosing = all.length > 1 && options.examples > 0;
  // One example each (the own adapter first when the budget does not reach them all).
  for (let at = 0; choosing && at < all.length && budget > 0; at += batch) await play(all.slice(at, Math.min(at + batch, at + budget, all.length)));
  // Only candidates scored once are played again: this set is fixed from here.
  const scored = all.filter((tally) => tally.count > 0);
  while (choosing && budget > 0) {
    const [leader] = [...scored].sort(byLowerBound);
    const challengers = scored.filter((tally) => tally !== leader).sort((a, b) => upper(b) - upper(a) || byPreference(a, b));
    if (challengers.length === 0 || lower(leader) > upper(challengers[0])) break;
    const players = [leader, ...challengers.filter((tally) => upper(tally) >= lower(leader))].filter(open).slice(0, Math.min(batch, budget));
    if (players.length === 0) break;
    await play(players);
  }
  const ranking = () => [...scored].sort(byLowerBound);
  // Leaders with the same bound and mean: a further example each while the budget and examples last.
  const tiedAtTop = (ranked: Tally[]) => ranked.filter((tally) => lower(tally) === lower(ranked[0]) && meanOf(tally) === meanOf(ranked[0]));
  for (let top = tiedAtTop(ranking()); top.length > 1 && budget >= top.length && top.every(open); top = tiedAtTop(ranking()).filter((tally) => top.includes(tally))) {
    await play(top);
  }
  const finalists = scored.length > 0 ? ranking() : rank(all, ownAdapter);
  return { tallies: [...tallies.values()], finalists, best: finalists[0].adapter };
}
