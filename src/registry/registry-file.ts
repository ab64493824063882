import { createHash } from 'node:crypto';
import { readFileSync, renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { serializeRegistryDocument } from './document.js';
import { serializeTaskExamplesJsonl } from './jsonl.js';
import { parseRegistry } from './parse.js';
import { RegistryError, type TaskRegistry } from './types.js';

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The registry file: read and validated, written back atomically (temp file + rename), and watched.
 * The hash of the last content read or written tells a real change from the gateway's own write.
 */
export class RegistryFile {
  private knownHash: string | undefined;

  constructor(readonly path: string) {}

  /** SHA-256 of the content last read or written. */
  get contentHash(): string | undefined {
    return this.knownHash;
  }

  /** The file's registry; throws RegistryError when it cannot be read or is invalid. */
  read(): TaskRegistry {
    const { registry, hash } = this.readWithHash();
    this.knownHash = hash;
    return registry!;
  }

  /** The file's registry when its content changed since it was last read or written; undefined otherwise. */
  readIfChanged(): TaskRegistry | undefined {
    const { registry, hash } = this.readWithHash((hash) => hash === this.knownHash);
    if (!registry) return undefined;
    this.knownHash = hash;
    return registry;
  }

  /** Writes the registry in the file's own format; throws RegistryError when that format cannot hold it. */
  write(registry: TaskRegistry): void {
    const extension = extname(this.path).toLowerCase();
    const text =
      extension === '.jsonl' || extension === '.ndjson'
        ? serializeTaskExamplesJsonl(registry)
        : serializeRegistryDocument({ ...registry, source: this.path }, extension === '.json' ? 'json' : 'yaml');
    if (text === undefined) throw new RegistryError(this.path, undefined, 'a .jsonl task file cannot hold adapter scores, adapter details, descriptions or metrics: use a .yaml registry');
    const temporary = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
    writeFileSync(temporary, text);
    renameSync(temporary, this.path);
    this.knownHash = hashOf(text);
  }

  /**
   * Calls `onChange` when the file may have changed: on a change in its folder (a Kubernetes
   * ConfigMap swaps a symbolic link there) and every `intervalMs` (watching misses some changes).
   */
  watch(onChange: () => void, intervalMs: number): () => void {
    let watcher: FSWatcher | undefined;
    let debounce: NodeJS.Timeout | undefined;
    const changed = () => {
      clearTimeout(debounce);
      debounce = setTimeout(onChange, 100);
    };
    try {
      watcher = watch(dirname(this.path), changed);
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined;
    }
    const poller = intervalMs > 0 ? setInterval(onChange, intervalMs) : undefined;
    poller?.unref();
    return () => {
      watcher?.close();
      clearInterval(poller);
      clearTimeout(debounce);
    };
  }

  private readWithHash(skip?: (hash: string) => boolean): { registry?: TaskRegistry; hash: string } {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      throw new RegistryError(this.path, undefined, `cannot read task file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    const hash = hashOf(text);
    if (skip?.(hash)) return { hash };
    return { registry: parseRegistry(text, this.path), hash };
  }
}
