import type { Redis } from 'ioredis';
import { AnswerTable, keyOf, type ScoredCall } from './results-file.js';

/**
 * Scored answers in a Redis hash that every shard of one calibration shares (REDIS_URL): read whole at the start, each
 * new answer written as it arrives; `flush` waits for the writes. The merge reads the same hash.
 */
export class RedisAnswers extends AnswerTable {
  private readonly writes = new Set<Promise<unknown>>();
  private failure: Error | undefined;

  private constructor(
    private readonly redis: Redis,
    readonly key: string,
  ) {
    super();
  }

  static async open(redis: Redis, key: string): Promise<RedisAnswers> {
    const answers = new RedisAnswers(redis, key);
    for (const [field, score] of Object.entries(await redis.hgetall(key))) answers.done.set(field, Number(score));
    return answers;
  }

  override add(call: ScoredCall): void {
    super.add(call);
    const write = this.redis.hset(this.key, keyOf(call), String(call.score)).catch((error: Error) => void (this.failure ??= error));
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }

  async flush(): Promise<void> {
    await Promise.all(this.writes);
    if (this.failure) throw new Error(`storing answers in Redis (${this.key}) failed: ${this.failure.message}; rerun to resume`);
  }
}
