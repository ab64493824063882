import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EncoderSetupError } from '../errors.js';
import type { Pooling } from '../pooling.js';

import { EXPORT_HINT, graphCandidates } from './export-files.js';

/** Where a model read from the hub came from: the repository, the revision asked for, the commit it named. */
export interface ModelSource {
  repo: string;
  revision?: string;
  commit: string;
}

/** A sentence-transformers model folder exported to ONNX, read and checked. */
export interface ModelFolder {
  dir: string;
  modelPath: string;
  tokenizerJson: object;
  tokenizerConfig: Record<string, unknown>;
  /** Tokens fed to the model at most, special tokens included. */
  maxLength: number;
  /** From 1_Pooling/config.json, when the folder has one. */
  pooling?: Pooling;
  /** SHA-256 of the graph and the tokenizer files: what the embeddings depend on. */
  contentHash: string;
  source?: ModelSource;
}

/** Reads a model folder (or a .onnx file inside one); a missing or unusable file is an EncoderSetupError that says what to do. */
export async function readModelFolder(path: string, options: { quantized?: boolean; source?: ModelSource } = {}): Promise<ModelFolder> {
  if (!existsSync(path)) throw new EncoderSetupError(`LORAUTER_ENCODER_MODEL: ${path} does not exist. ${EXPORT_HINT}`);
  let dir = path;
  let modelPath: string | undefined;
  if (statSync(path).isFile()) {
    modelPath = path;
    dir = dirname(path);
    if (basename(dir) === 'onnx') dir = dirname(dir);
  } else {
    const candidates = graphCandidates(options.quantized ?? false);
    modelPath = candidates.map((file) => join(dir, file)).find((file) => existsSync(file));
    if (!modelPath) throw new EncoderSetupError(`${dir}: no ONNX graph found (looked for ${candidates.join(', ')}). ${EXPORT_HINT}`);
  }
  const tokenizerJson = readJson(dir, 'tokenizer.json', 'the fast tokenizer; save it with tokenizer.save_pretrained(DIR)');
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json', 'save it with tokenizer.save_pretrained(DIR)');
  const config = readJson(dir, 'config.json', "the model's config.json, written by the export");
  const poolingPath = join(dir, '1_Pooling', 'config.json');
  const pooling = existsSync(poolingPath) ? poolingFrom(readJson(dir, '1_Pooling/config.json', ''), poolingPath) : undefined;
  const sentenceConfigPath = join(dir, 'sentence_bert_config.json');
  const sentenceConfig = existsSync(sentenceConfigPath) ? readJson(dir, 'sentence_bert_config.json', '') : {};

  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(modelPath).on('data', (chunk) => hash.update(chunk)).on('end', resolve).on('error', reject);
  });
  hash.update(readFileSync(join(dir, 'tokenizer.json'))).update(readFileSync(join(dir, 'tokenizer_config.json')));
  return {
    dir,
    modelPath,
    tokenizerJson,
    tokenizerConfig,
    maxLength: maxLengthOf(config, tokenizerConfig, sentenceConfig),
    pooling,
    contentHash: hash.digest('hex'),
    source: options.source,
  };
}

function readJson(dir: string, file: string, hint: string): Record<string, any> {
  const path = join(dir, file);
  if (!existsSync(path)) throw new EncoderSetupError(`${dir}: ${file} is missing${hint ? ` (${hint})` : ''}. ${EXPORT_HINT}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new EncoderSetupError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

function poolingFrom(settings: Record<string, unknown>, path: string): Pooling {
  if (settings.pooling_mode_mean_tokens) return 'mean';
  if (settings.pooling_mode_cls_token) return 'cls';
  if (settings.pooling_mode_lasttoken) return 'last_token';
  const modes = Object.keys(settings).filter((key) => key.startsWith('pooling_mode_') && settings[key]);
  throw new EncoderSetupError(`${path}: pooling ${modes.join(', ') || '(none)'} is not supported; set LORAUTER_ENCODER_POOLING to mean, cls or last_token`);
}

// RoBERTa-family models number positions from padding_idx + 1, so two positions are unusable.
const POSITION_OFFSET: Record<string, number> = { roberta: 2, 'xlm-roberta': 2, camembert: 2, mpnet: 2 };

function maxLengthOf(config: Record<string, any>, tokenizerConfig: Record<string, any>, sentenceConfig: Record<string, any>): number {
  const limits: number[] = [];
  if (Number.isInteger(sentenceConfig.max_seq_length)) limits.push(sentenceConfig.max_seq_length);
  else if (Number.isInteger(tokenizerConfig.model_max_length) && tokenizerConfig.model_max_length < 1_000_000) limits.push(tokenizerConfig.model_max_length);
  if (Number.isInteger(config.max_position_embeddings)) limits.push(config.max_position_embeddings - (POSITION_OFFSET[config.model_type] ?? 0));
  return limits.length > 0 ? Math.min(...limits) : 512;
}
