import type { Logger } from 'pino';
import type { RegistryChange } from './changes.js';
import { RegistryFile } from './registry-file.js';
import { RegistryUnavailableError, type RegistrySnapshot, type RegistryStore } from './stores/store.js';
import type { AdapterDefinition, TaskRegistry } from './types.js';

export type ReloadResult = 'applied' | 'unchanged' | 'rejected' | 'no_file';

export interface LiveRegistryOptions {
  store: RegistryStore;
  /** The registry to start from: the task file's, or the demo registry. */
  initial: TaskRegistry;
  /** The task file it came from, reloaded when it changes. */
  file?: RegistryFile;
  /** How often the file is checked besides watching its folder (0: only watching). */
  fileCheckMs: number;
  logger: Logger;
  /** Told the result of each reload that found a changed or invalid file (metrics). */
  onReload?: (result: ReloadResult) => void;
}

/**
 * The registry as it changes at run time: admin changes, file reloads, and (with Redis) other
 * replicas' changes all arrive as snapshots from the store. Listeners are told of each newer one.
 * `adapters` is one Map kept up to date in place, so that upstream drivers holding it see changes.
 */
export class LiveRegistry {
  readonly adapters = new Map<string, AdapterDefinition>();
  private snapshot: RegistrySnapshot;
  private readonly listeners: ((snapshot: RegistrySnapshot) => void)[] = [];
  private stopWatching: (() => void) | undefined;
  /** Checks of the task file finished (a change it found is stored by then). */
  fileChecks = 0;

  private constructor(private readonly options: LiveRegistryOptions) {
    this.snapshot = { registry: options.initial, version: 0 };
    this.syncAdapters(options.initial);
  }

  static async open(options: LiveRegistryOptions): Promise<LiveRegistry> {
    const live = new LiveRegistry(options);
    options.store.onChange((snapshot) => live.accept(snapshot));
    try {
      live.accept(await options.store.open(options.initial, options.file?.contentHash));
    } catch (error) {
      if (!(error instanceof RegistryUnavailableError)) throw error;
      // The store catches up by itself when it comes back; until then, route on the file's registry.
      options.logger.warn({ err: error.message }, 'registry store unavailable at start-up: routing on the local registry until it is back');
    }
    if (options.file) live.stopWatching = options.file.watch(() => void live.reload('file change').finally(() => live.fileChecks++), options.fileCheckMs);
    return live;
  }

  get registry(): TaskRegistry {
    return this.snapshot.registry;
  }

  get version(): number {
    return this.snapshot.version;
  }

  get storeKind(): RegistryStore['kind'] {
    return this.options.store.kind;
  }

  onChange(listener: (snapshot: RegistrySnapshot) => void): void {
    this.listeners.push(listener);
  }

  /** Makes a change in the store (every replica gets it) and, without Redis, writes the task file back. */
  async apply(change: RegistryChange): Promise<RegistrySnapshot> {
    const snapshot = await this.options.store.apply(change);
    this.accept(snapshot);
    this.writeBack(snapshot.registry);
    return snapshot;
  }

  /** Reads the task file again; a valid, changed file replaces the registry, an invalid one is rejected with a log line. */
  async reload(reason: string, force = false): Promise<ReloadResult> {
    const result = await this.reloadFile(reason, force);
    if (result !== 'unchanged' && result !== 'no_file') this.options.onReload?.(result);
    return result;
  }

  private async reloadFile(reason: string, force: boolean): Promise<ReloadResult> {
    const { file, logger, store } = this.options;
    if (!file) return 'no_file';
    let registry: TaskRegistry | undefined;
    try {
      registry = force ? file.read() : file.readIfChanged();
    } catch (error) {
      logger.error({ reason, err: (error as Error).message }, 'task file rejected: the running registry stays');
      return 'rejected';
    }
    if (!registry) return 'unchanged';
    try {
      const snapshot = await store.replace(registry, file.contentHash);
      this.accept(snapshot);
      logger.info({ reason, tasks: registry.tasks.length, version: snapshot.version }, 'task file reloaded');
      return 'applied';
    } catch (error) {
      logger.error({ reason, err: (error as Error).message }, 'task file reload failed: the running registry stays');
      return 'rejected';
    }
  }

  async close(): Promise<void> {
    this.stopWatching?.();
    await this.options.store.close();
  }

  private accept(snapshot: RegistrySnapshot): void {
    if (snapshot.version <= this.snapshot.version) return;
    this.snapshot = snapshot;
    this.syncAdapters(snapshot.registry);
    for (const listener of this.listeners) listener(snapshot);
  }

  private syncAdapters(registry: TaskRegistry): void {
    for (const id of this.adapters.keys()) if (!registry.adapters.has(id)) this.adapters.delete(id);
    for (const [id, adapter] of registry.adapters) this.adapters.set(id, adapter);
  }

  /** Without Redis the task file is the registry's only durable home; with Redis, Redis is. */
  private writeBack(registry: TaskRegistry): void {
    const { file, store, logger } = this.options;
    if (!file || store.kind !== 'memory') return;
    try {
      file.write(registry);
    } catch (error) {
      logger.warn({ file: file.path, err: (error as Error).message }, 'registry change applied but not written back to the task file');
    }
  }
}
