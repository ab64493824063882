import { extname } from 'node:path';
import { parseRegistryDocument } from './document.js';
import { parseTaskExamplesJsonl } from './jsonl.js';
import { RegistryError, type TaskRegistry } from './types.js';

/** A task file's text parsed by the file's extension (.jsonl examples, .yaml/.yml/.json registry). */
export function parseRegistry(text: string, file: string): TaskRegistry {
  const extension = extname(file).toLowerCase();
  if (extension === '.jsonl' || extension === '.ndjson') return parseTaskExamplesJsonl(text, file);
  if (extension === '.yaml' || extension === '.yml' || extension === '.json') return parseRegistryDocument(text, file);
  throw new RegistryError(file, undefined, `unknown task file type "${extension}" (use .jsonl, .yaml, .yml or .json)`);
}
