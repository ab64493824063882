import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { hubCacheDir, listCachedModels } from '../encoders/hub/hub-cache.js';
import { describeModelId, hubModelId } from '../encoders/hub/model-id.js';
import { resolveHubModel } from '../encoders/hub/resolve-model.js';
import { hubProgress, mb } from './hub-progress.js';
import { OnnxEncoder } from '../encoders/onnx/onnx-encoder.js';
import { selectExportFiles } from '../encoders/onnx/export-files.js';

/** `lorauter models pull ID[@REV]` fills the cache ahead of time (a Docker build, an init container); `lorauter models list` shows it. */
export function addModelsCommand(program: Command): void {
  const models = program.command('models').description('encoder models from the Hugging Face hub, in its cache (HF_HUB_CACHE)');
  models
    .command('pull')
    .description('download the ONNX export of a hub model into the cache (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE) and check that it loads')
    .argument('[model]', 'owner/name, optionally @revision (a branch, tag or commit); default: LORAUTER_ENCODER_MODEL')
    .option('--quantized', 'the quantized export (model_quantized.onnx); env LORAUTER_ENCODER_QUANTIZED')
    .option('--no-check', 'do not load the model once downloaded')
    .option('--json', 'print what was pulled as JSON')
    .action(async (named: string | undefined, options) => {
      const config = loadConfig({ overrides: { logLevel: 'warn' } });
      const model = named ?? config.encoder.model;
      if (!model) throw new Error('Name the model to pull (owner/name[@revision]) or set LORAUTER_ENCODER_MODEL.');
      const id = hubModelId(model);
      if (!id) throw new Error(`${model}: not a hub model id (owner/name or owner/name@revision), or a local path that exists`);
      const quantized = Boolean(options.quantized) || config.encoder.quantized;
      const progress = hubProgress();
      const resolved = await resolveHubModel(id, { hub: config.encoder.hub, quantized, events: progress }).finally(() => progress.stop());
      let dimensions: number | undefined;
      if (options.check) {
        const encoder = await OnnxEncoder.load({ ...config.encoder, model: resolved.graph, source: resolved.source });
        dimensions = encoder.dimensions;
        await encoder.close();
      }
      const summary = { model: describeModelId(id), commit: resolved.source.commit, graph: resolved.graph, snapshot: resolved.dir, downloaded_files: resolved.downloaded.files, downloaded_bytes: resolved.downloaded.bytes, ...(dimensions ? { dimensions } : {}) };
      if (options.json) return console.log(JSON.stringify(summary, null, 2));
      console.log(`${summary.model}: commit ${summary.commit}, ${resolved.downloaded.files} files downloaded (${mb(resolved.downloaded.bytes)})${dimensions ? `, loads: ${dimensions} dimensions` : ''}`);
      console.log(resolved.graph);
    });
  models
    .command('list')
    .description('models in the hub cache (HF_HUB_CACHE), whether each holds an ONNX export the encoder can load')
    .option('--json', 'print the list as JSON')
    .action((options) => {
      const config = loadConfig({ overrides: { logLevel: 'warn' } });
      const cacheDir = hubCacheDir(config.encoder.hub);
      const revisions = listCachedModels(cacheDir).map((revision) => {
        const graphs = [false, true].flatMap((quantized) => {
          try {
            return [selectExportFiles(revision.files, quantized, revision.repo).graph];
          } catch {
            return [];
          }
        });
        return { ...revision, onnx: [...new Set(graphs)] };
      });
      if (options.json) return console.log(JSON.stringify({ cache: cacheDir, models: revisions }, null, 2));
      if (revisions.length === 0) return console.log(`no models in ${cacheDir}`);
      console.log(cacheDir);
      console.table(revisions.map((r) => ({ model: r.repo, commit: r.commit.slice(0, 12), refs: r.refs.join(', '), files: r.files.length, size: mb(r.bytes), onnx: r.onnx.join(', ') || '(none)' })));
    });
}
