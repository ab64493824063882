/** One round: these many candidates are each scored on examples [from, to). */
export interface Round {
  candidates: number;
  from: number;
  to: number;
}

/** Upstream calls a schedule makes. */
export const scheduleCost = (rounds: readonly Round[]) => rounds.reduce((sum, round) => sum + round.candidates * (round.to - round.from), 0);

/**
 * Successive halving's rounds for `candidates` adapters and `examples` examples: every candidate on
 * a few examples, the better half on twice as many (their earlier scores kept), … until one remains.
 * The first round gets the most examples that keep the whole schedule within `budget` calls (at
 * least one); a budget too small for even that stops the rounds where it runs out.
 */
export function halvingSchedule(candidates: number, examples: number, budget: number): Round[] {
  if (candidates <= 1 || examples === 0) return [];
  const roundsFor = (first: number): Round[] => {
    const rounds: Round[] = [];
    let alive = candidates;
    let seen = 0;
    for (let k = 0; alive > 1; k++) {
      const to = Math.min(examples, first * 2 ** k);
      rounds.push({ candidates: alive, from: seen, to });
      seen = to;
      alive = Math.ceil(alive / 2);
    }
    return rounds;
  };
  let best = roundsFor(1);
  for (let first = 2; first <= examples; first++) {
    const rounds = roundsFor(first);
    if (scheduleCost(rounds) > budget) break;
    best = rounds;
  }
  // Even one example a round is over budget: keep the rounds that fit.
  const kept: Round[] = [];
  let spent = 0;
  for (const round of best) {
    const cost = round.candidates * (round.to - round.from);
    if (spent + cost > budget && kept.length > 0) break;
    kept.push(round);
    spent += cost;
  }
  return kept;
}

/** A candidate's running score: the mean over the examples it was scored on. */
export interface Tally {
  adapter: string;
  sum: number;
  count: number;
}

export const meanOf = (tally: Tally) => (tally.count === 0 ? 0 : tally.sum / tally.count);

/**
 * Best first: higher mean; on ties the task's own adapter, then the smaller id (the order
 * `bestAdapterOf` uses when it reads the scores back).
 */
export function rank(tallies: readonly Tally[], ownAdapter: string): Tally[] {
  return [...tallies].sort((a, b) => meanOf(b) - meanOf(a) || Number(b.adapter === ownAdapter) - Number(a.adapter === ownAdapter) || (a.adapter < b.adapter ? -1 : a.adapter > b.adapter ? 1 : 0));
}

export interface HalvingResult {
  /** Every candidate's tally, as far as it got. */
  tallies: Tally[];
  /** The candidates of the last round played, ranked: their scores are on the same examples. */
  finalists: Tally[];
  best: string;
}

/**
 * Runs the rounds: `score(adapter, example)` scores one adapter on one example (an upstream call).
 * After each round the better half (rounded up) goes on.
 */
export async function successiveHalving(
  adapters: readonly string[],
  rounds: readonly Round[],
  ownAdapter: string,
  score: (adapter: string, example: number) => Promise<number>,
): Promise<HalvingResult> {
  const tallies = new Map(adapters.map((adapter) => [adapter, { adapter, sum: 0, count: 0 }]));
  let alive = [...tallies.values()];
  let finalists = alive;
  for (const round of rounds) {
    finalists = alive;
    await Promise.all(
      alive.flatMap((tally) =>
        Array.from({ length: round.to - round.from }, async (_, i) => {
          // Awaited first: `sum += await …` would read the sum before the wait and lose concurrent updates.
          const value = await score(tally.adapter, round.from + i);
          tally.sum += value;
          tally.count++;
        }),
      ),
    );
    alive = rank(alive, ownAdapter).slice(0, Math.ceil(alive.length / 2));
  }
  const ranked = rank(finalists, ownAdapter);
  return { tallies: [...tallies.values()], finalists: ranked, best: ranked[0]?.adapter ?? adapters[0] };
}
