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

const BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export function parseSafetensors(buffer: Uint8Array): SafetensorsFile {
  if (buffer.byteLength < 8) throw new SafetensorsError('file too short for a safetensors header');
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > buffer.byteLength - 8) throw new SafetensorsError('header length exceeds file size');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(buffer.subarray(8, 8 + headerLength)));
  } catch {
    throw new SafetensorsError('header is not valid JSON');
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, Dtype>();
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
    if (end - begin !== count * BYTES[dtype as Dtype] || dataStart + end > buffer.byteLength || begin < 0) {
      throw new SafetensorsError(`tensor ${name}: data offsets do not match its shape and dtype`);
    }
    tensors.set(name, { shape: [...shape], data: decode(buffer.subarray(dataStart + begin, dataStart + end), dtype as Dtype, count) });
    dtypes.set(name, dtype as Dtype);
  }
  return { tensors, dtypes, metadata };
}

export function serializeSafetensors(tensors: Map<string, Tensor>, options: { dtype?: Dtype; metadata?: Record<string, string> } = {}): Buffer {
  const dtype = options.dtype ?? 'F32';
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const tensor = tensors.get(name)!;
    const bytes = tensor.data.length * BYTES[dtype];
    header[name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.byteLength + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.byteLength), 0);
  headerBytes.copy(out, 8);
  let position = 8 + headerBytes.byteLength;
  for (const name of names) position += encode(tensors.get(name)!.data, dtype, out, position);
  return out;
}

function decode(bytes: Uint8Array, dtype: Dtype, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F32') for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  else if (dtype === 'F16') for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  else {
    const word = new Uint32Array(1);
    const asFloat = new Float32Array(word.buffer);
    for (let i = 0; i < count; i++) {
      word[0] = view.getUint16(i * 2, true) << 16;
      out[i] = asFloat[0];
    }
  }
  return out;
}

function encode(data: Float32Array, dtype: Dtype, out: Buffer, position: number): number {
  if (dtype === 'F32') {
    for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i], position + i * 4);
    return data.length * 4;
  }
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(dtype === 'F16' ? floatToHalf(data[i]) : floatToBfloat16(data[i]), position + i * 2);
  return data.length * 2;
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
  const x = scratch.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
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
  const x = scratch.getUint32(0);
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}
