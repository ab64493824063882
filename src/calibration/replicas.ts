type Ask = (adapter: string, prompt: string) => Promise<string>;

/**
 * Calls spread over several replicas of the same server: each call goes to the replica with the fewest calls in
 * flight; one that fails there (a timeout, 429, 5xx, a dropped connection) is tried on each other replica before
 * the failure counts. A refusal (`retriable: false`: an unknown adapter, a bad request) is the same everywhere and
 * is not tried again.
 */
export class ReplicaPool {
  private readonly inFlight: number[];
  private next = 0;
  /** Calls answered by each replica. */
  readonly answered: number[];

  constructor(private readonly replicas: readonly Ask[]) {
    if (replicas.length === 0) throw new Error('no replicas');
    this.inFlight = replicas.map(() => 0);
    this.answered = replicas.map(() => 0);
  }

  readonly ask: Ask = async (adapter, prompt) => {
    const order = this.order();
    let failure: unknown;
    for (const replica of order) {
      this.inFlight[replica]++;
      try {
        const answer = await this.replicas[replica](adapter, prompt);
        this.answered[replica]++;
        return answer;
      } catch (error) {
        failure = error;
        if ((error as { retriable?: boolean }).retriable === false) break;
      } finally {
        this.inFlight[replica]--;
      }
    }
    throw failure;
  };

  /** The replicas by calls in flight, fewest first (ties in turn). */
  private order(): number[] {
    const start = this.next++ % this.replicas.length;
    const indices = this.replicas.map((_, i) => (start + i) % this.replicas.length);
    return indices.sort((a, b) => this.inFlight[a] - this.inFlight[b]);
  }
}
