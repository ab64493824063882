/**
 * In-place Cholesky factorisation of a symmetric positive semi-definite matrix (row-major n×n,
 * lower triangle used). Adds `jitter` to the diagonal, doubling it until the factorisation
 * succeeds, so that duplicate rows (identical task centroids) do not break it.
 */
export function choleskyLower(gram: Float64Array, n: number, jitter = 1e-8): Float64Array {
  for (let attempt = 0; attempt < 40; attempt++, jitter *= 4) {
    const lower = new Float64Array(n * n);
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const rowI = i * n;
      for (let j = 0; j <= i; j++) {
        const rowJ = j * n;
        let sum = gram[rowI + j];
        for (let k = 0; k < j; k++) sum -= lower[rowI + k] * lower[rowJ + k];
        if (i === j) {
          sum += jitter;
          if (!(sum > 0)) {
            ok = false;
            break;
          }
          lower[rowI + i] = Math.sqrt(sum);
        } else {
          lower[rowI + j] = sum / lower[rowJ + j];
        }
      }
    }
    if (ok) return lower;
  }
  throw new Error('Cholesky factorisation failed: matrix is not positive semi-definite');
}

/** Solves L·y = b for y (L lower-triangular, row-major n×n). */
export function forwardSubstitute(lower: Float64Array, n: number, b: Float64Array, out: Float32Array, y = new Float64Array(n)): Float32Array {
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let sum = b[i];
    for (let k = 0; k < i; k++) sum -= lower[row + k] * y[k];
    y[i] = sum / lower[row + i];
    out[i] = y[i];
  }
  return out;
}
