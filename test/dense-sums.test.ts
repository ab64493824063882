import t from 'tap';
import { DenseRowSums } from '../src/encoders/builtin/simd/dense-sums.js';

// Deterministic pseudo-random numbers (a 32-bit LCG), so that a failure reproduces.
function numbers(count: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/** The sums as a plain double-precision loop over the selected rows, in selection order. */
function reference(rows: Float32Array, width: number, selection: [number, number][]): Float64Array {
  const out = new Float64Array(width);
  for (let t = 0; t < width; t++) {
    let sum = 0;
    for (const [row, value] of selection) sum += value * rows[row * width + t];
    out[t] = sum;
  }
  return out;
}

t.test('weighted sums of selected rows equal a double-precision loop bit for bit, at every width', async (t) => {
  for (const width of [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 48, 49, 66, 255]) {
    const rowCount = 40;
    const rows = Float32Array.from(numbers(rowCount * width, width));
    const sums = new DenseRowSums(rows, rowCount, width);
    for (const [round, size] of [[0, 0], [1, 1], [2, 13], [3, 40]] as const) {
      const picks = numbers(size, 1000 * width + round);
      const chosen = [...new Set(picks.map((x) => Math.floor(((x + 1) / 2) * rowCount)))];
      const selection = chosen.map((row, i) => [row, picks[i] * 3] as [number, number]);
      sums.clear();
      for (const [row, value] of selection) sums.add(row, value);
      const got = sums.sum().slice(0, width);
      t.same([...got], [...reference(rows, width, selection)], `width ${width}, ${selection.length} rows`);
    }
  }
});

t.test('a selection starts afresh after clear', async (t) => {
  const rows = Float32Array.of(1, 2, 3, 10, 20, 30);
  const sums = new DenseRowSums(rows, 2, 3);
  sums.add(0, 2);
  sums.add(1, 1);
  t.same([...sums.sum().slice(0, 3)], [12, 24, 36]);
  sums.clear();
  sums.add(1, -1);
  t.same([...sums.sum().slice(0, 3)], [-10, -20, -30]);
});
