import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { TaskRegistry } from '../registry/types.js';

/** Shard `index` (from 0, as Kubernetes' JOB_COMPLETION_INDEX) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const shard = match ? { index: Number(match[1]), count: Number(match[2]) } : undefined;
  if (!shard || shard.count < 1 || shard.index >= shard.count) throw new Error(`--shard takes i/N with 0 ≤ i < N (as JOB_COMPLETION_INDEX counts), got "${text}"`);
  return shard;
}

/** The tasks of one shard: every count-th task of the registry, from the index-th. */
export function shardOf(registry: TaskRegistry, shard: Shard): TaskRegistry {
  return { ...registry, tasks: registry.tasks.filter((_, position) => position % shard.count === shard.index) };
}

/** Where a shard appends its scored answers, beside the registry the merge writes. */
export const shardResultsPath = (out: string, shard: Shard) => `${out}.shard-${shard.index}-of-${shard.count}.results.jsonl`;

/** Every shard's results file for `out`, whatever the shard count. */
export function shardResultsFiles(out: string): string[] {
  const pattern = new RegExp(`^${basename(out).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.shard-\\d+-of-\\d+\\.results\\.jsonl$`);
  const folder = dirname(out);
  return readdirSync(folder).filter((name) => pattern.test(name)).sort().map((name) => join(folder, name));
}
