/**
 * The files of a sentence-transformers model exported to ONNX, as optimum and transformers.js lay
 * them out: what a folder or a hub repository must hold, and what is read when it is there.
 */

const FULL_GRAPHS = ['onnx/model.onnx', 'model.onnx'];
const QUANTIZED_GRAPHS = ['onnx/model_quantized.onnx', 'model_quantized.onnx'];

/** The graphs of the precision asked for, in order. */
export function askedGraphs(quantized: boolean): string[] {
  return quantized ? QUANTIZED_GRAPHS : FULL_GRAPHS;
}

/** The graphs tried, in order: the quantized export only when asked for; the full one falls back on it. */
export function graphCandidates(quantized: boolean): string[] {
  return quantized ? QUANTIZED_GRAPHS : [...FULL_GRAPHS, ...QUANTIZED_GRAPHS];
}

/** Without these the encoder cannot start. */
export const REQUIRED_FILES = ['tokenizer.json', 'tokenizer_config.json', 'config.json'];
/** Read when present: pooling, maximum length, special tokens. */
export const OPTIONAL_FILES = ['1_Pooling/config.json', 'sentence_bert_config.json', 'special_tokens_map.json'];

/** A graph over 2 GB keeps its weights beside it (`model.onnx_data`, or `model.onnx.data` from older exporters). */
export const externalDataFiles = (graph: string) => [`${graph}_data`, `${graph}.data`];

export const EXPORT_HINT =
  'Export a sentence-transformers model with `optimum-cli export onnx --model sentence-transformers/all-MiniLM-L6-v2 --task feature-extraction DIR` and set LORAUTER_ENCODER_MODEL=DIR, or name a hub repository that has an ONNX export (an onnx/ folder, as the Xenova/* ones have); see docs/encoders.md.';

export interface ExportSelection {
  graph: string;
  /** The graph, its external data, the required and the present optional files. */
  files: string[];
}

export class ExportFilesError extends Error {
  override name = 'ExportFilesError';
}

/** Picks from a repository's (or folder's) file list the files the ONNX encoder reads; an ExportFilesError says what is missing. */
export function selectExportFiles(available: readonly string[], quantized: boolean, where: string): ExportSelection {
  const present = new Set(available);
  const graph = graphCandidates(quantized).find((file) => present.has(file));
  if (!graph) {
    const graphs = available.filter((file) => file.endsWith('.onnx'));
    const listed = available.length > 20 ? `${available.slice(0, 20).join(', ')} and ${available.length - 20} more` : available.join(', ');
    throw new ExportFilesError(
      graphs.length > 0 && quantized
        ? `${where} has no quantized ONNX export (looked for ${QUANTIZED_GRAPHS.join(', ')}; it has ${graphs.join(', ')}): unset LORAUTER_ENCODER_QUANTIZED or name another repository.`
        : `${where} has no ONNX export (looked for ${graphCandidates(quantized).join(', ')}); its files: ${listed || '(none)'}. ${EXPORT_HINT}`,
    );
  }
  const missing = REQUIRED_FILES.filter((file) => !present.has(file));
  if (missing.length > 0) throw new ExportFilesError(`${where} has an ONNX graph (${graph}) but not ${missing.join(', ')}, which the encoder needs. ${EXPORT_HINT}`);
  const companions = [...externalDataFiles(graph), ...OPTIONAL_FILES].filter((file) => present.has(file));
  return { graph, files: [graph, ...REQUIRED_FILES, ...companions] };
}
