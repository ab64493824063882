import type { RegistryChange } from '../changes.js';
import type { TaskRegistry } from '../types.js';

/** A registry and the version it has in its store; versions only grow. */
export interface RegistrySnapshot {
  registry: TaskRegistry;
  version: number;
}

/** Where the running registry lives: this process (memory) or Redis (shared by every replica). */
export interface RegistryStore {
  readonly kind: 'memory' | 'redis';
  /** The stored registry; `initial` (read from the file with hash `fileHash`) is stored first when the store holds none yet. */
  open(initial: TaskRegistry, fileHash?: string): Promise<RegistrySnapshot>;
  /** Makes one change; throws RegistryChangeError when it cannot be made. */
  apply(change: RegistryChange): Promise<RegistrySnapshot>;
  /** Replaces the whole registry (a reloaded file; a shared store skips a file content it already holds). */
  replace(registry: TaskRegistry, fileHash?: string): Promise<RegistrySnapshot>;
  /** Called with each newer snapshot, whoever made the change. */
  onChange(listener: (snapshot: RegistrySnapshot) => void): void;
  close(): Promise<void>;
}

/** Thrown when the store cannot be reached; the admin API answers 503. */
export class RegistryUnavailableError extends Error {
  override name = 'RegistryUnavailableError';
}
