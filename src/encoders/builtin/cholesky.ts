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
export function forwardSubstitute(lower: Float64Array, n: number, b: Float64Array, out: Float32Array, y: Float64Array = new Float64Array(n)): Float32Array {
  for (let i = 0; i < n; i++) {
    const row = i * n;
    // Four partial sums, so that the subtractions do not wait on each other.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let k = 0;
    for (; k + 3 < i; k += 4) {
      s0 += lower[row + k] * y[k];
      s1 += lower[row + k + 1] * y[k + 1];
      s2 += lower[row + k + 2] * y[k + 2];
      s3 += lower[row + k + 3] * y[k + 3];
    }
    for (; k < i; k++) s0 += lower[row + k] * y[k];
    y[i] = (b[i] - (s0 + s1 + (s2 + s3))) / lower[row + i];
    out[i] = y[i];
  }
  return out;
}
