import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { demoRegistry } from './demo.js';
import { parseRegistryDocument } from './document.js';
import { parseTaskExamplesJsonl } from './jsonl.js';
import { RegistryError, type TaskRegistry } from './types.js';

/** Loads a task file by its extension (.jsonl examples, .yaml/.yml/.json registry); the demo registry without one. */
export function loadRegistry(file: string | undefined): TaskRegistry {
  if (!file) return demoRegistry();
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RegistryError(file, undefined, `cannot read task file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const extension = extname(file).toLowerCase();
  if (extension === '.jsonl' || extension === '.ndjson') return parseTaskExamplesJsonl(source, file);
  if (extension === '.yaml' || extension === '.yml' || extension === '.json') return parseRegistryDocument(source, file);
  throw new RegistryError(file, undefined, `unknown task file type "${extension}" (use .jsonl, .yaml, .yml or .json)`);
}
