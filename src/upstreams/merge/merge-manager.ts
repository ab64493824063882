import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { WeightedAdapter } from '../../router/math.js';
import type { AdapterDefinition } from '../../registry/types.js';
import { inSpan } from '../../observability/tracing.js';
import type { UpstreamClient } from '../client.js';
import { readPeftAdapter, writePeftAdapter, type LoraAdapter } from '../../lora/adapter.js';
import { mergeLoraAdapters, MergeRefusedError } from '../../lora/merge.js';

/** How one server kind loads and unloads adapters at run time (vLLM, SGLang). */
export interface AdapterLoadingApi {
  /** Label in logs and metrics. */
  kind: string;
  loadPath: string;
  unloadPath: string;
  /** Whether an answer to a load request means the adapter is loaded (already-loaded counts). */
  loaded(status: number, text: string): boolean;
  unloaded(status: number, text: string): boolean;
  /** Throws a MergeRefusedError for an adapter the server could not load once merged. */
  assertLoadable(id: string, adapter: LoraAdapter): void;
}

export interface MergeManagerOptions {
  mergeDir: string;
  maxRank: number;
  maxLoaded: number;
  /** New merges built in any 60 s at most (clients that pick their own temperature can otherwise churn vLLM). */
  maxNewPerMinute: number;
  unloadOnClose: boolean;
}

/** Adapters lighter than `minWeight` leave the mixture (the heaviest always stays); the rest are renormalised. */
export function dropLightAdapters(adapters: readonly WeightedAdapter[], minWeight: number): { kept: WeightedAdapter[]; dropped: string[] } {
  const kept = adapters.filter((adapter, i) => i === 0 || adapter.weight >= minWeight);
  const total = kept.reduce((sum, adapter) => sum + adapter.weight, 0);
  return {
    kept: kept.map((adapter) => ({ id: adapter.id, weight: adapter.weight / total })),
    dropped: adapters.filter((adapter) => !kept.includes(adapter)).map((adapter) => adapter.id),
  };
}

/** Weights rounded to `step` and renormalised; adapters that round to 0 drop out. */
export function roundWeights(adapters: readonly WeightedAdapter[], step: number): WeightedAdapter[] {
  const rounded = adapters.map((adapter) => ({ id: adapter.id, weight: Math.round(adapter.weight / step) * step })).filter((a) => a.weight > 0);
  if (rounded.length === 0) return [{ id: adapters[0].id, weight: 1 }];
  const total = rounded.reduce((sum, adapter) => sum + adapter.weight, 0);
  return rounded.map((adapter) => ({ id: adapter.id, weight: Number((adapter.weight / total).toFixed(6)) }));
}

export function mergedAdapterName(parts: readonly WeightedAdapter[]): string {
  const key = [...parts].sort((a, b) => (a.id < b.id ? -1 : 1)).map((p) => `${p.id}=${p.weight}`).join(',');
  return `lorauter-merge-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/**
 * Builds merged PEFT adapters for servers that take one adapter a request (vLLM, SGLang), loads
 * them through the server's runtime loading API, keeps an LRU of loaded merges and unloads the
 * evicted ones. Concurrent requests for the same new merge share one build and one load.
 */
export class MergeManager {
  private readonly loaded: LRUCache<string, string>;
  private readonly building = new Map<string, Promise<string>>();
  private readonly sources = new LRUCache<string, LoraAdapter>({ max: 64 });
  private recentBuilds: number[] = [];
  private readonly unloading = new Map<string, Promise<void>>();

  constructor(
    private readonly client: UpstreamClient,
    private readonly api: AdapterLoadingApi,
    private readonly adapters: Map<string, AdapterDefinition>,
    private readonly options: MergeManagerOptions,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.loaded = new LRUCache({
      max: options.maxLoaded,
      dispose: (directory, name, reason) => {
        if (reason === 'evict' || reason === 'delete') {
          this.unloading.set(name, this.unload(name, directory).finally(() => this.unloading.delete(name)));
        }
      },
    });
  }

  /** The vLLM model name of the merged adapter for these weights, building and loading it if needed. */
  async ensure(parts: readonly WeightedAdapter[]): Promise<string> {
    const name = mergedAdapterName(parts);
    if (this.loaded.get(name)) return name;
    let pending = this.building.get(name);
    if (!pending) {
      const now = Date.now();
      this.recentBuilds = this.recentBuilds.filter((at) => now - at < 60_000);
      if (this.recentBuilds.length >= this.options.maxNewPerMinute) {
        throw new MergeRefusedError('merge_rate_limited', `${this.recentBuilds.length} new merges in the last minute (LORAUTER_MAX_NEW_MERGES_PER_MINUTE)`);
      }
      this.recentBuilds.push(now);
      pending = inSpan('lorauter.merge', { 'lorauter.merge.name': name, 'lorauter.adapters': parts.map((part) => `${part.id}=${part.weight.toFixed(4)}`) }, () => this.build(name, parts)).finally(() =>
        this.building.delete(name),
      );
      this.building.set(name, pending);
    }
    return pending;
  }

  /** The upstream no longer has this merge (it was restarted): build and load it again next time. */
  forget(name: string): void {
    this.loaded.delete(name);
  }

  get loadedNames(): string[] {
    return [...this.loaded.keys()];
  }

  private async build(name: string, parts: readonly WeightedAdapter[]): Promise<string> {
    const inputs = await Promise.all(
      parts.map(async (part) => {
        const adapter = await this.source(part.id);
        this.api.assertLoadable(part.id, adapter);
        return { adapter, weight: part.weight };
      }),
    );
    const merged = mergeLoraAdapters(inputs, { maxRank: this.options.maxRank });
    const directory = resolve(join(this.options.mergeDir, name));
    await mkdir(this.options.mergeDir, { recursive: true });
    await writePeftAdapter(directory, merged);
    const { status, text } = await this.client.json('POST', this.api.loadPath, { lora_name: name, lora_path: directory });
    if (!this.api.loaded(status, text)) {
      this.metrics.mergedAdapters.inc({ outcome: 'load_failed' });
      await rm(directory, { recursive: true, force: true });
      throw new Error(`${this.api.kind} refused to load merged adapter ${name} (${status}: ${text.slice(0, 200)})`);
    }
    this.metrics.mergedAdapters.inc({ outcome: 'loaded' });
    this.logger.info({ name, adapters: parts, rank: merged.config.r }, `merged LoRA adapter loaded into ${this.api.kind}`);
    this.loaded.set(name, directory);
    return name;
  }

  private async source(id: string): Promise<LoraAdapter> {
    const path = this.adapters.get(id)?.path;
    if (!path) throw new MergeRefusedError('adapter_unavailable', `adapter ${id} has no path to read it from`);
    let adapter = this.sources.get(path);
    if (!adapter) {
      adapter = await readPeftAdapter(path);
      this.sources.set(path, adapter);
    }
    return adapter;
  }

  private async unload(name: string, directory: string): Promise<void> {
    try {
      const { status, text } = await this.client.json('POST', this.api.unloadPath, { lora_name: name });
      if (!this.api.unloaded(status, text)) this.logger.warn({ name, status, text: text.slice(0, 200) }, `${this.api.kind} did not unload merged adapter`);
      else this.metrics.mergedAdapters.inc({ outcome: 'unloaded' });
    } catch (error) {
      this.logger.warn({ name, err: (error as Error).message }, 'unloading merged adapter failed');
    }
    await rm(directory, { recursive: true, force: true }).catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.building.values());
    if (!this.options.unloadOnClose) return;
    // clear() disposes every entry with reason 'delete', which unloads it; wait for those calls.
    this.loaded.clear();
    await Promise.allSettled(this.unloading.values());
  }
}
