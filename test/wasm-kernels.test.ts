import t from 'tap';
import { readFileSync } from 'node:fs';
import { compileWat, generatedPath, generatedSource, KERNELS } from '../scripts/build-wasm.js';

t.test('every shipped SIMD kernel is its .wat compiled (npm run build:wasm)', async (t) => {
  t.equal(KERNELS.length, 2);
  for (const { wat, constant } of KERNELS) {
    t.equal(readFileSync(generatedPath(wat), 'utf8'), generatedSource(wat, constant, await compileWat(wat)), wat.pathname);
  }
});
