const PAGE_BYTES = 65536;

/** Floats per row once padded with zeros to a multiple of 4, so that a kernel reads whole f32x4 lanes. */
export function paddedStride(width: number): number {
  return Math.ceil(width / 4) * 4;
}

/**
 * An instance of a SIMD kernel whose memory holds `rows` (`count` rows of `width` floats,
 * row-major) from byte 0, each padded with zeros to paddedStride(width) floats, and at least
 * `bytes` bytes in all (the kernel's other arrays come after the rows).
 */
export function kernelWithRows(module: WebAssembly.Module, rows: Float32Array, count: number, width: number, bytes: number): WebAssembly.Exports {
  const instance = new WebAssembly.Instance(module);
  const memory = instance.exports.memory as WebAssembly.Memory;
  const pages = Math.ceil(bytes / PAGE_BYTES);
  if (pages > memory.buffer.byteLength / PAGE_BYTES) memory.grow(pages - memory.buffer.byteLength / PAGE_BYTES);
  const stride = paddedStride(width);
  const padded = new Float32Array(memory.buffer, 0, count * stride);
  for (let row = 0; row < count; row++) padded.set(rows.subarray(row * width, (row + 1) * width), row * stride);
  return instance.exports;
}
