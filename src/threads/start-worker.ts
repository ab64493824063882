import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The thread script beside `moduleUrl`, in the form the gateway runs from (TypeScript sources or the build). */
export function threadScript(name: string, moduleUrl: string): URL {
  const fromSource = extname(fileURLToPath(moduleUrl)) === '.ts';
  return new URL(`./${name}${fromSource ? '.ts' : '.js'}`, moduleUrl);
}

/**
 * A worker for the script. Run from TypeScript sources (tests, `npm run dev`), the thread loads it
 * through tsx, which Node 20 does not pass on to workers.
 */
export function startWorker(script: URL, workerData: unknown): Worker {
  if (!script.pathname.endsWith('.ts')) return new Worker(script, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then(({ tsImport }) => tsImport(${JSON.stringify(script.href)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(code, { eval: true, workerData });
}
