import t from 'tap';
import { RowDots } from '../src/router/simd/row-dots.js';

/** Deterministic pseudo-random numbers in [-1, 1). */
function numbers(count: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

const exact = (rows: Float32Array, row: number, query: Float32Array) => query.reduce((sum, value, d) => sum + rows[row * query.length + d] * value, 0);

t.test('every row · query, for dimensions that are and are not multiples of four', async (t) => {
  for (const [count, dimensions] of [
    [1, 1],
    [3, 3],
    [48, 49],
    [7, 4],
    [5, 6],
    [200, 256],
  ]) {
    const rows = numbers(count * dimensions, count + dimensions);
    const dots = new RowDots(rows, count, dimensions);
    let worst = 0;
    for (let q = 0; q < 4; q++) {
      const query = numbers(dimensions, 100 + q);
      const got = dots.with(query);
      t.equal(got.length, count);
      for (let row = 0; row < count; row++) worst = Math.max(worst, Math.abs(got[row] - exact(rows, row, query)) / Math.max(1, Math.sqrt(dimensions)));
    }
    t.ok(worst < 1e-5, `${count} rows of ${dimensions}: worst error ${worst.toExponential(2)}`);
  }
});

t.test('no rows: nothing to compare', async (t) => {
  t.equal(new RowDots(new Float32Array(0), 0, 49).with(numbers(49, 1)).length, 0);
});

