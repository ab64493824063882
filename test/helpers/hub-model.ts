import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// The ONNX fixture (scripts/build-onnx-fixture.py) served as a hub repository would hold it.
export const ONNX_FIXTURE = new URL('../fixtures/onnx/', import.meta.url).pathname;
export const MODEL_DIR = join(ONNX_FIXTURE, 'model');
export const EXPORT_FILES = ['onnx/model.onnx', 'config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', '1_Pooling/config.json', 'sentence_bert_config.json'];

/** The fixture's export, with files a whole-repository download would fetch and the encoder never reads. */
export const exportRepo = (extra: Record<string, Buffer> = {}): Record<string, Buffer> => ({
  ...Object.fromEntries([...EXPORT_FILES, 'vocab.txt'].map((path) => [path, readFileSync(join(MODEL_DIR, path))])),
  'README.md': Buffer.from('# tiny MiniLM-shaped encoder\n'),
  'pytorch_model.bin': Buffer.alloc(300_000, 7),
  'onnx/model_quantized.onnx': readFileSync(join(ONNX_FIXTURE, 'no-token-types.onnx')),
  ...extra,
});
