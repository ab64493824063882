import { demoRegistry } from './demo.js';
import { RegistryFile } from './registry-file.js';
import type { TaskRegistry } from './types.js';

/** Loads a task file by its extension (.jsonl examples, .yaml/.yml/.json registry); the demo registry without one. */
export function loadRegistry(file: string | undefined): TaskRegistry {
  return file ? new RegistryFile(file).read() : demoRegistry();
}
