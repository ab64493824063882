import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loraModules, loraScaling, readAdapterConfig, type LoraAdapter } from './adapter.js';
import { assertMergeable, assertModuleShapes, mergedConfig } from './merge.js';
import {
  BYTES,
  decodeValues,
  encodeValues,
  headerLengthOf,
  parseSafetensorsHeader,
  safetensorsHeader,
  SafetensorsError,
  type Dtype,
  type TensorEntry,
  type TensorLayout,
} from './safetensors.js';

export interface MergeSource {
  directory: string;
  weight: number;
}

export interface MergeOutcome {
  rank: number;
  dtype: Dtype;
  modules: number;
  /** Bytes of the merged adapter on disk. */
  bytes: number;
  /** The most memory its buffers held at once: set by the largest module, not by the adapter's size. */
  bufferBytes: number;
}

interface OpenSource {
  config: LoraAdapter['config'];
  fd: number;
  modules: Map<string, { A: TensorEntry; B: TensorEntry }>;
  factor: number;
  /** Input bits → output bits of factor × value, for 16-bit sources written in their own dtype; built on first use. */
  scaledBits?: Uint16Array;
}

// The largest header read: real adapters' headers are tens of KB.
const MAX_HEADER_BYTES = 64 * 2 ** 20;

/**
 * The exact mixture Σ w_i·s_i·B_i·A_i as one PEFT adapter of rank Σ r_i (see mergeLoraAdapters),
 * built tensor by tensor: each source tensor is read at its offset when it is needed and the output
 * is written as it goes, in the sources' dtype (F32 when they differ), into a temporary folder
 * renamed when complete. Memory holds one module's tensors at a time, whatever the adapters' size.
 * Synchronous reads and writes: it runs on a thread of its own (merge-thread.ts) or in tests.
 */
export async function mergePeftAdaptersStreaming(sources: readonly MergeSource[], outDirectory: string, options: { maxRank?: number; temporary?: string; config?: Record<string, unknown> } = {}): Promise<MergeOutcome> {
  const opened: OpenSource[] = [];
  const temporary = options.temporary ?? temporaryFolderFor(outDirectory);
  let out: number | undefined;
  try {
    for (const source of sources) opened.push(await openSource(source));
    const rank = assertMergeable(opened.map((source) => ({ config: source.config, modules: [...source.modules.keys()] })), options.maxRank);
    const dtypes = new Set(opened.flatMap((source) => [...source.modules.values()].flatMap(({ A, B }) => [A.dtype, B.dtype])));
    const dtype: Dtype = dtypes.size === 1 ? [...dtypes][0] : 'F32';
    const modules = [...opened[0].modules.keys()].sort();
    const layout: (TensorLayout & { module: string; part: 'A' | 'B' })[] = [];
    for (const module of modules) {
      const pieces = opened.map((source) => source.modules.get(module)!);
      const { inFeatures, outFeatures } = assertModuleShapes(module, pieces.map((piece, i) => ({ r: opened[i].config.r, A: piece.A.shape, B: piece.B.shape })));
      layout.push({ name: `${module}.lora_A.weight`, dtype, shape: [rank, inFeatures], module, part: 'A' });
      layout.push({ name: `${module}.lora_B.weight`, dtype, shape: [outFeatures, rank], module, part: 'B' });
    }
    layout.sort((a, b) => (a.name < b.name ? -1 : 1));
    const { header, dataBytes } = safetensorsHeader(layout, { format: 'pt' });

    await mkdir(temporary, { recursive: true });
    await writeFile(join(temporary, 'adapter_config.json'), `${JSON.stringify({ ...mergedConfig(opened.map((source) => source.config), rank), ...options.config }, null, 2)}\n`);
    out = openSync(join(temporary, 'adapter_model.safetensors'), 'w');
    writeAll(out, header);
    const scratch = new Scratch();
    for (const tensor of layout) {
      const pieces = opened.map((source) => ({ source, entry: source.modules.get(tensor.module)![tensor.part] }));
      writeAll(out, tensor.part === 'A' ? stackedRows(pieces, dtype, scratch) : scaledColumns(pieces, tensor.shape, rank, dtype, scratch));
    }
    fsyncSync(out);
    closeSync(out);
    out = undefined;
    rmSync(outDirectory, { recursive: true, force: true });
    renameSync(temporary, outDirectory);
    return { rank, dtype, modules: modules.length, bytes: header.byteLength + dataBytes, bufferBytes: scratch.bytes };
  } catch (error) {
    if (out !== undefined) closeSync(out);
    await rm(temporary, { recursive: true, force: true });
    throw error;
  } finally {
    for (const source of opened) closeSync(source.fd);
  }
}

/** Where a merge is written before it is renamed into place: beside it, on the same file system. */
export function temporaryFolderFor(outDirectory: string): string {
  return `${outDirectory}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** An adapter's config and the place of each module's tensors, read from its header (no tensor data). */
export async function readAdapterLayout(directory: string): Promise<Pick<OpenSource, 'config' | 'modules'>> {
  const source = await openSource({ directory, weight: 1 });
  closeSync(source.fd);
  return { config: source.config, modules: source.modules };
}

async function openSource({ directory, weight }: MergeSource): Promise<OpenSource> {
  const config = await readAdapterConfig(directory);
  const fd = openSync(join(directory, 'adapter_model.safetensors'), 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    const prefix = readAt(fd, 0, 8, new Uint8Array(8));
    const headerLength = headerLengthOf(prefix, fileBytes);
    if (headerLength > MAX_HEADER_BYTES) throw new SafetensorsError(`${directory}: header of ${headerLength} bytes is larger than ${MAX_HEADER_BYTES}`);
    const { entries } = parseSafetensorsHeader(readAt(fd, 8, headerLength, new Uint8Array(headerLength)), fileBytes);
    return { config, fd, modules: loraModules(entries, directory), factor: weight * loraScaling(config) };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** A = [A_1; A_2; …]: the sources' rows one after another, as bytes when they are already in the output dtype. */
function stackedRows(pieces: readonly { source: OpenSource; entry: TensorEntry }[], dtype: Dtype, scratch: Scratch): Uint8Array {
  const total = pieces.reduce((sum, { entry }) => sum + (entry.end - entry.begin) / BYTES[entry.dtype], 0);
  const output = scratch.output(total * BYTES[dtype]);
  let position = 0;
  for (const { source, entry } of pieces) {
    const length = entry.end - entry.begin;
    if (entry.dtype === dtype) {
      readAt(source.fd, entry.begin, length, output.subarray(position, position + length));
      position += length;
    } else {
      const values = decode(readAt(source.fd, entry.begin, length, scratch.input(length)), entry.dtype, scratch);
      position += encodeValues(values, dtype, output.subarray(position)).byteLength;
    }
  }
  return output;
}

/** B = [f_1·B_1 | f_2·B_2 | …]: each output row holds every source's row, scaled by its weight × scaling. */
function scaledColumns(pieces: readonly { source: OpenSource; entry: TensorEntry }[], shape: number[], rank: number, dtype: Dtype, scratch: Scratch): Uint8Array {
  const [rows] = shape;
  if (dtype !== 'F32' && pieces.every(({ entry }) => entry.dtype === dtype)) return scaledHalfColumns(pieces, rows, rank, dtype, scratch);
  const merged = scratch.values(rows * rank);
  let offset = 0;
  for (const { source, entry } of pieces) {
    const r = entry.shape[1];
    const length = entry.end - entry.begin;
    const values = decode(readAt(source.fd, entry.begin, length, scratch.input(length)), entry.dtype, scratch);
    const factor = source.factor;
    // factor · value rounded once to binary32, as mergeLoraAdapters stores it.
    for (let row = 0; row < rows; row++) {
      const from = row * r;
      const to = row * rank + offset;
      for (let k = 0; k < r; k++) merged[to + k] = factor * values[from + k];
    }
    offset += r;
  }
  return encodeValues(merged, dtype, scratch.output(rows * rank * BYTES[dtype]));
}

/**
 * scaledColumns for 16-bit sources written in their own dtype: a 16-bit value has 65,536 possible
 * bits, so each source's factor becomes a table from input bits to output bits — the same rounding
 * (binary32 product, then the dtype) without decoding a single tensor.
 */
function scaledHalfColumns(pieces: readonly { source: OpenSource; entry: TensorEntry }[], rows: number, rank: number, dtype: 'F16' | 'BF16', scratch: Scratch): Uint8Array {
  const output = scratch.output(rows * rank * 2);
  const merged = new Uint16Array(output.buffer, output.byteOffset, rows * rank);
  let offset = 0;
  for (const { source, entry } of pieces) {
    const r = entry.shape[1];
    const length = entry.end - entry.begin;
    const bytes = readAt(source.fd, entry.begin, length, scratch.input(length));
    const values = new Uint16Array(bytes.buffer, bytes.byteOffset, length / 2);
    const table = (source.scaledBits ??= scaledBitsTable(source.factor, dtype));
    for (let row = 0; row < rows; row++) {
      const from = row * r;
      const to = row * rank + offset;
      for (let k = 0; k < r; k++) merged[to + k] = table[values[from + k]];
    }
    offset += r;
  }
  return output;
}

function scaledBitsTable(factor: number, dtype: 'F16' | 'BF16'): Uint16Array {
  const all = new Uint16Array(65536);
  for (let bits = 0; bits < 65536; bits++) all[bits] = bits;
  const values = decodeValues(new Uint8Array(all.buffer), dtype, new Float32Array(65536));
  for (let i = 0; i < values.length; i++) values[i] = factor * values[i];
  return new Uint16Array(encodeValues(values, dtype, new Uint8Array(65536 * 2)).buffer);
}

/** Tensor bytes as binary32 values in the scratch buffer. */
function decode(bytes: Uint8Array, dtype: Dtype, scratch: Scratch): Float32Array {
  return decodeValues(bytes, dtype, scratch.decoded(bytes.byteLength / BYTES[dtype]));
}

function readAt(fd: number, position: number, length: number, into: Uint8Array): Uint8Array {
  let done = 0;
  while (done < length) {
    const read = readSync(fd, into, done, length - done, position + done);
    if (read === 0) throw new SafetensorsError(`file ends ${length - done} bytes early`);
    done += read;
  }
  return into.subarray(0, length);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}

/** Buffers reused from tensor to tensor, grown to the largest: memory follows the largest module, not the adapter. */
class Scratch {
  private buffers: Record<'input' | 'output' | 'values' | 'decoded', ArrayBuffer> = {
    input: new ArrayBuffer(0),
    output: new ArrayBuffer(0),
    values: new ArrayBuffer(0),
    decoded: new ArrayBuffer(0),
  };

  input(bytes: number): Uint8Array {
    return new Uint8Array(this.grown('input', bytes), 0, bytes);
  }

  output(bytes: number): Uint8Array {
    return new Uint8Array(this.grown('output', bytes), 0, bytes);
  }

  values(count: number): Float32Array {
    return new Float32Array(this.grown('values', count * 4), 0, count);
  }

  decoded(count: number): Float32Array {
    return new Float32Array(this.grown('decoded', count * 4), 0, count);
  }

  get bytes(): number {
    return Object.values(this.buffers).reduce((sum, buffer) => sum + buffer.byteLength, 0);
  }

  private grown(name: keyof Scratch['buffers'], bytes: number): ArrayBuffer {
    if (this.buffers[name].byteLength < bytes) this.buffers[name] = new ArrayBuffer(Math.max(bytes, this.buffers[name].byteLength * 2));
    return this.buffers[name];
  }
}
