import hnswlib from 'hnswlib-node';
import type { ScoredTask } from './math.js';
import { vectorNorm } from './math.js';

const { HierarchicalNSW } = hnswlib;

export interface TaskIndexOptions {
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  /** Scan exactly up to this many numbers (tasks × dimensions); HNSW beyond. */
  exactScanMaxNumbers?: number;
}

// Below this many numbers (tasks × dimensions) an exact scan in JS beats a call into HNSW
// (about 3 µs against 12 µs at 48 tasks) and is exact; above it HNSW's sublinear search wins.
const EXACT_SCAN_MAX_NUMBERS = 1 << 18;

/**
 * Cosine index over task embeddings; labels are positions in `taskIds`. HNSW (hnswlib) for large
 * registries; small ones are scanned exactly, which is both faster and free of approximation.
 */
export class TaskIndex {
  private readonly index: InstanceType<typeof HierarchicalNSW> | undefined;
  /** Unit task vectors, row-major, when scanned exactly. */
  private readonly matrix: Float32Array | undefined;
  private readonly dimensions: number;
  private readonly efSearch: number;

  constructor(
    readonly taskIds: readonly string[],
    embeddings: readonly Float32Array[],
    options: TaskIndexOptions = {},
  ) {
    if (taskIds.length === 0) throw new Error('cannot index zero tasks');
    const dimensions = embeddings[0].length;
    this.dimensions = dimensions;
    this.efSearch = options.efSearch ?? 64;
    if (taskIds.length * dimensions <= (options.exactScanMaxNumbers ?? EXACT_SCAN_MAX_NUMBERS)) {
      this.matrix = new Float32Array(taskIds.length * dimensions);
      embeddings.forEach((embedding, row) => {
        const norm = vectorNorm(embedding);
        for (let d = 0; d < dimensions; d++) this.matrix![row * dimensions + d] = norm > 0 ? embedding[d] / norm : 0;
      });
      return;
    }
    this.index = new HierarchicalNSW('cosine', dimensions);
    this.index.initIndex({ maxElements: taskIds.length, m: options.m ?? 16, efConstruction: options.efConstruction ?? 200, randomSeed: 100 });
    embeddings.forEach((embedding, label) => this.index!.addPoint(Array.from(embedding), label));
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
    if (this.matrix) return this.scan(query, count);
    this.index!.setEf(Math.max(this.efSearch, count));
    const { neighbors, distances } = this.index!.searchKnn(Array.from(query), count);
    return neighbors.map((label, i) => ({ id: this.taskIds[label], similarity: 1 - distances[i] }));
  }

  private scan(query: Float32Array, count: number): ScoredTask[] {
    const { matrix, dimensions } = this;
    const scale = 1 / vectorNorm(query);
    const best: ScoredTask[] = [];
    for (let row = 0; row < this.taskIds.length; row++) {
      let dot = 0;
      for (let d = 0, at = row * dimensions; d < dimensions; d++, at++) dot += query[d] * matrix![at];
      const similarity = dot * scale;
      if (best.length === count && similarity <= best[count - 1].similarity) continue;
      // Insertion into the short sorted list of the best so far; ties keep the lower label first.
      let at = Math.min(best.length, count - 1);
      best[at] = { id: this.taskIds[row], similarity };
      while (at > 0 && best[at - 1].similarity < similarity) {
        [best[at - 1], best[at]] = [best[at], best[at - 1]];
        at--;
      }
    }
    return best;
  }
}
