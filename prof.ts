import pino from 'pino';
import { loadConfig } from './src/config/load.ts';
import { createGateway } from './src/gateway.ts';
import { loadRegistry } from './src/registry/load.ts';
const flan = loadRegistry('/work/shared/data/flan-tasks.jsonl');
const registry = { ...flan, tasks: flan.tasks.slice(0, 48).map((t) => ({ ...t, examples: t.examples.slice(0, 16) })) };
const gw = await createGateway(loadConfig({ env: {}, overrides: { logLevel: 'silent' } }), pino({ level: 'silent' }), { registry });
const held = flan.tasks.flatMap((t) => t.examples.slice(16));
let i = 0;
for (let r = 0; r < 4; r++) {
  let s = performance.now(); for (let k = 0; k < 2000; k++) gw.router.encoder.inner.encode([`${held[k % held.length]} (${i++})`]); const enc = (performance.now() - s) / 2;
  s = performance.now(); for (let k = 0; k < 2000; k++) await gw.router.encoder.embed([`${held[k % held.length]} (${i++})`]); const emb = (performance.now() - s) / 2;
  s = performance.now(); for (let k = 0; k < 2000; k++) await gw.router.route(`${held[k % held.length]} (${i++})`); const route = (performance.now() - s) / 2;
  console.log({ enc, emb, route });
}
await gw.close();
const router: any = gw.router;
const vecs = await Promise.all(held.slice(0, 200).map(async (p) => (await gw.router.encoder.inner.encode([p]))[0]));
for (let r = 0; r < 3; r++) {
  let s = performance.now(); for (let k = 0; k < 2000; k++) router.index.search(vecs[k % 200], 3); const search = (performance.now() - s) / 2;
  const { createHash } = await import('node:crypto');
  s = performance.now(); for (let k = 0; k < 2000; k++) createHash('sha256').update('x').update(held[k % 200]).digest('base64'); const sha = (performance.now() - s) / 2;
  console.log({ search, sha });
}
