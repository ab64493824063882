/**
 * safetensors: 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}},
 * then the raw little-endian tensor bytes. Tensors are read into Float32Array (F32, F16, BF16).
 */

export type Dtype = 'F32' | 'F16' | 'BF16';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  dtypes: Map<string, Dtype>;
  metadata: Record<string, string>;
}

export const BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** A tensor's place in a safetensors file: `begin` and `end` are byte positions in the whole file. */
export interface TensorEntry {
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Bytes of the length prefix and the JSON header, from the file's first 8 bytes. */
export function headerLengthOf(prefix: Uint8Array, fileBytes: number): number {
  if (prefix.byteLength < 8 || fileBytes < 8) throw new SafetensorsError('file too short for a safetensors header');
  const headerLength = Number(new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > fileBytes - 8) throw new SafetensorsError('header length exceeds file size');
  return headerLength;
}

/** The JSON header (without its length prefix) of a file of `fileBytes`, checked against the file. */
export function parseSafetensorsHeader(json: Uint8Array, fileBytes: number): { entries: Map<string, TensorEntry>; metadata: Record<string, string> } {
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(json));
  } catch {
    throw new SafetensorsError('header is not valid JSON');
  }
  const dataStart = 8 + json.byteLength;
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) throw new SafetensorsError(`tensor ${name}: unsupported dtype ${dtype}`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (end - begin !== count * BYTES[dtype as Dtype] || dataStart + end > fileBytes || begin < 0) {
      throw new SafetensorsError(`tensor ${name}: data offsets do not match its shape and dtype`);
    }
    entries.set(name, { dtype: dtype as Dtype, shape: [...shape], begin: dataStart + begin, end: dataStart + end });
  }
  return { entries, metadata };
}

export function parseSafetensors(buffer: Uint8Array): SafetensorsFile {
  const headerLength = headerLengthOf(buffer, buffer.byteLength);
  const { entries, metadata } = parseSafetensorsHeader(buffer.subarray(8, 8 + headerLength), buffer.byteLength);
  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, Dtype>();
  for (const [name, entry] of entries) {
    const count = entry.shape.reduce((a, b) => a * b, 1);
    tensors.set(name, { shape: entry.shape, data: decodeValues(buffer.subarray(entry.begin, entry.end), entry.dtype, new Float32Array(count)) });
    dtypes.set(name, entry.dtype);
  }
  return { tensors, dtypes, metadata };
}

export interface TensorLayout {
  name: string;
  dtype: Dtype;
  shape: number[];
}

/**
 * The header bytes (length prefix included) for tensors written in the order given, and where each
 * tensor's data begins relative to the end of the header. Padded so that the data starts 8-aligned.
 */
export function safetensorsHeader(layout: readonly TensorLayout[], metadata?: Record<string, string>): { header: Buffer; offsets: number[]; dataBytes: number } {
  const json: Record<string, unknown> = {};
  if (metadata) json.__metadata__ = metadata;
  const offsets: number[] = [];
  let offset = 0;
  for (const tensor of layout) {
    const bytes = tensor.shape.reduce((a, b) => a * b, 1) * BYTES[tensor.dtype];
    json[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes] };
    offsets.push(offset);
    offset += bytes;
  }
  let text = JSON.stringify(json);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const body = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(8 + body.byteLength);
  header.writeBigUInt64LE(BigInt(body.byteLength), 0);
  body.copy(header, 8);
  return { header, offsets, dataBytes: offset };
}

export function serializeSafetensors(tensors: Map<string, Tensor>, options: { dtype?: Dtype; metadata?: Record<string, string> } = {}): Buffer {
  const dtype = options.dtype ?? 'F32';
  const names = [...tensors.keys()].sort();
  const { header, dataBytes } = safetensorsHeader(
    names.map((name) => ({ name, dtype, shape: tensors.get(name)!.shape })),
    options.metadata,
  );
  const out = Buffer.alloc(header.byteLength + dataBytes);
  header.copy(out, 0);
  let position = header.byteLength;
  for (const name of names) position += encodeValues(tensors.get(name)!.data, dtype, out.subarray(position)).byteLength;
  return out;
}

let halfTable: Float32Array | undefined;

/**
 * Little-endian tensor bytes of `dtype` as binary32 values, into `into` (its length is the count).
 * Typed arrays are little-endian on every platform Node runs on; bytes at an odd offset are copied first.
 */
export function decodeValues(bytes: Uint8Array, dtype: Dtype, into: Float32Array): Float32Array {
  const count = into.length;
  if (dtype === 'F32') {
    new Uint8Array(into.buffer, into.byteOffset, count * 4).set(bytes.subarray(0, count * 4));
    return into;
  }
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice(0, count * 2);
  const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, count);
  if (dtype === 'F16') {
    halfTable ??= Float32Array.from({ length: 65536 }, (_, bits) => halfToFloat(bits));
    for (let i = 0; i < count; i++) into[i] = halfTable[halves[i]];
  } else {
    const bits = new Uint32Array(into.buffer, into.byteOffset, count);
    for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
  }
  return into;
}

/** binary32 values as little-endian tensor bytes of `dtype`, written at the start of `output`: the bytes written. */
export function encodeValues(values: Float32Array, dtype: Dtype, output: Uint8Array): Uint8Array {
  const bytes = values.length * BYTES[dtype];
  if (dtype === 'F32') {
    output.set(new Uint8Array(values.buffer, values.byteOffset, bytes));
    return output.subarray(0, bytes);
  }
  const target = output.byteOffset % 2 === 0 ? output : new Uint8Array(bytes);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const halves = new Uint16Array(target.buffer, target.byteOffset, values.length);
  const convert = dtype === 'F16' ? halfFromFloatBits : bfloat16FromFloatBits;
  for (let i = 0; i < values.length; i++) halves[i] = convert(bits[i]);
  if (target !== output) output.set(target);
  return output.subarray(0, bytes);
}

export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

const scratch = new DataView(new ArrayBuffer(4));

/** IEEE 754 binary16, round to nearest even. */
export function floatToHalf(value: number): number {
  scratch.setFloat32(0, value);
  return halfFromFloatBits(scratch.getUint32(0));
}

/** binary16 bits for the binary32 bits `x`, round to nearest even. */
export function halfFromFloatBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (remainder > midpoint || (remainder === midpoint && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** bfloat16: the top half of a float32, round to nearest even. */
export function floatToBfloat16(value: number): number {
  scratch.setFloat32(0, value);
  return bfloat16FromFloatBits(scratch.getUint32(0));
}

/** bfloat16 bits for the binary32 bits `x`, round to nearest even. */
export function bfloat16FromFloatBits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}
