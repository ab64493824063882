import hnswlib from 'hnswlib-node';
import type { ScoredTask } from './math.js';
import { vectorNorm } from './math.js';

const { HierarchicalNSW } = hnswlib;

export interface TaskIndexOptions {
  m?: number;
  efConstruction?: number;
  efSearch?: number;
}

/** HNSW cosine index over task embeddings; labels are positions in `taskIds`. */
export class TaskIndex {
  private readonly index: InstanceType<typeof HierarchicalNSW>;
  private readonly efSearch: number;

  constructor(
    readonly taskIds: readonly string[],
    embeddings: readonly Float32Array[],
    options: TaskIndexOptions = {},
  ) {
    if (taskIds.length === 0) throw new Error('cannot index zero tasks');
    const dimensions = embeddings[0].length;
    this.index = new HierarchicalNSW('cosine', dimensions);
    this.index.initIndex({ maxElements: taskIds.length, m: options.m ?? 16, efConstruction: options.efConstruction ?? 200, randomSeed: 100 });
    embeddings.forEach((embedding, label) => this.index.addPoint(Array.from(embedding), label));
    this.efSearch = options.efSearch ?? 64;
  }

  get size(): number {
    return this.taskIds.length;
  }

  /** The k nearest tasks by cosine similarity, highest first. */
  search(query: Float32Array, k: number): ScoredTask[] {
    const count = Math.min(k, this.taskIds.length);
    if (count <= 0) return [];
    if (vectorNorm(query) === 0) {
      // No known feature in the query: every task is equally (dis)similar.
      return this.taskIds.slice(0, count).map((id) => ({ id, similarity: 0 }));
    }
    this.index.setEf(Math.max(this.efSearch, count));
    const { neighbors, distances } = this.index.searchKnn(Array.from(query), count);
    return neighbors.map((label, i) => ({ id: this.taskIds[label], similarity: 1 - distances[i] }));
  }
}
