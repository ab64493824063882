import { applyChange, type RegistryChange } from '../changes.js';
import type { TaskRegistry } from '../types.js';
import type { RegistrySnapshot, RegistryStore } from './store.js';

/** The registry in this process only (no Redis). */
export class MemoryRegistryStore implements RegistryStore {
  readonly kind = 'memory';
  private snapshot: RegistrySnapshot | undefined;
  private readonly listeners: ((snapshot: RegistrySnapshot) => void)[] = [];

  async open(initial: TaskRegistry): Promise<RegistrySnapshot> {
    return (this.snapshot ??= { registry: initial, version: 1 });
  }

  async apply(change: RegistryChange): Promise<RegistrySnapshot> {
    return this.publish(applyChange(this.current.registry, change));
  }

  async replace(registry: TaskRegistry): Promise<RegistrySnapshot> {
    return this.publish(registry);
  }

  onChange(listener: (snapshot: RegistrySnapshot) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {}

  private get current(): RegistrySnapshot {
    if (!this.snapshot) throw new Error('registry store used before open()');
    return this.snapshot;
  }

  private publish(registry: TaskRegistry): RegistrySnapshot {
    this.snapshot = { registry, version: this.current.version + 1 };
    for (const listener of this.listeners) listener(this.snapshot);
    return this.snapshot;
  }
}
