import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStandInHub } from './fakes/hub.js';
import { cli } from './helpers/cli.js';
import { FLAN_TASKS } from './helpers/gateway.js';
import { startGatewayProcess } from './helpers/gateway-process.js';
import { exportRepo, MODEL_DIR } from './helpers/hub-model.js';

// The commands as a user runs them: `lorauter models pull` (a Docker build, an init container), then
// `lorauter serve` with the id, offline, from that cache.
t.test('models pull, models list, then serve from the cache offline: routes as the local folder does', async (t) => {
  const hub = await startStandInHub();
  t.teardown(() => hub.stop());
  const commit = hub.push('lorauter-test/minilm-tiny', exportRepo());
  const root = mkdtempSync(join(tmpdir(), 'lorauter-pull-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cacheDir = join(root, 'hub');
  const hubEnv = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, HF_HOME: join(cacheDir, '..', 'home') };

  const pulled = await cli(hubEnv, 'models', 'pull', 'lorauter-test/minilm-tiny');
  t.match(pulled.stdout, new RegExp(`lorauter-test/minilm-tiny: commit ${commit}, 7 files downloaded .*loads: 16 dimensions`));
  t.match(pulled.stdout, join(cacheDir, 'models--lorauter-test--minilm-tiny', 'snapshots', commit, 'onnx', 'model.onnx'));
  t.match(pulled.stderr, /downloading onnx\/model\.onnx \(2\.0 MB\)\n(.*\n)*  onnx\/model\.onnx: 100%/, 'progress lines where stderr is not a terminal');
  const again = JSON.parse((await cli({ ...hubEnv, LORAUTER_ENCODER_MODEL: 'lorauter-test/minilm-tiny' }, 'models', 'pull', '--json')).stdout);
  t.match(again, { model: 'lorauter-test/minilm-tiny', commit, downloaded_files: 0, downloaded_bytes: 0 }, 'a second pull (of LORAUTER_ENCODER_MODEL) downloads nothing');

  const listed = JSON.parse((await cli(hubEnv, 'models', 'list', '--json')).stdout);
  t.equal(listed.cache, cacheDir);
  t.match(listed.models, [{ repo: 'lorauter-test/minilm-tiny', commit, refs: ['main'], onnx: ['onnx/model.onnx'] }]);
  t.equal(listed.models[0].files.length, 7);
  t.match((await cli(hubEnv, 'models', 'list')).stdout, /lorauter-test\/minilm-tiny.*main.*onnx\/model\.onnx/);

  const failed = await cli(hubEnv, 'models', 'pull', 'lorauter-test/missing').then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  t.equal(failed?.code, 1);
  t.match(failed?.stderr, /no such model at/);

  // Another command that loads the encoder downloads what it lacks the same way, its progress on stderr.
  const subset = join(root, 'subset.jsonl');
  writeFileSync(subset, readFileSync(FLAN_TASKS, 'utf8').split('\n').filter(Boolean).slice(0, 4).join('\n'));
  const evaluated = await cli({ HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(root, 'eval-cache'), LORAUTER_ENCODER_MODEL: 'lorauter-test/minilm-tiny' }, 'eval', '--tasks', subset, '--encoders', 'onnx', '--folds', '2', '--json');
  t.match(evaluated.stderr, /downloading onnx\/model\.onnx \(2\.0 MB\)/, 'eval: the download shows');
  t.match(JSON.parse(evaluated.stdout)[0], { encoder: /onnx/ }, 'and evaluates with it');

  const serve = { LOG_LEVEL: 'info', LORAUTER_TASKS: FLAN_TASKS, LORAUTER_ENCODER: 'onnx', LORAUTER_ENCODER_WORKERS: '0' };
  await hub.stop();
  const fromCache = await startGatewayProcess({ ...serve, ...hubEnv, HF_HUB_OFFLINE: '1', LORAUTER_ENCODER_MODEL: 'lorauter-test/minilm-tiny' });
  t.teardown(() => fromCache.stop());
  const fromFolder = await startGatewayProcess({ ...serve, LORAUTER_ENCODER_MODEL: MODEL_DIR });
  t.teardown(() => fromFolder.stop());
  const ready = await (await fetch(`${fromCache.url}/readyz`)).json();
  t.match(ready.encoder.model, { repo: 'lorauter-test/minilm-tiny', commit }, '/readyz names the commit');
  t.match(fromCache.output(), new RegExp(`"commit":"${commit}".*"from_cache":true,"msg":"encoder model resolved"`), 'the commit is logged');
  for (const input of ['Translate to German: where is the station?', 'Was the movie any good? I loved it.']) {
    const [a, b] = await Promise.all(
      [fromFolder, fromCache].map(async (gateway) => (await fetch(`${gateway.url}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) })).json()),
    );
    t.same(b.tasks, a.tasks, `same decision: ${input}`);
    t.same(b.adapters, a.adapters);
  }

  const offlineMissing = await cli({ ...hubEnv, ...serve, HF_HUB_OFFLINE: '1', LORAUTER_ENCODER_MODEL: 'lorauter-test/other' }, 'serve', '--port', '0').then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  t.equal(offlineMissing?.code, 1, 'serve exits');
  t.match(offlineMissing?.stderr, /HF_HUB_OFFLINE=1: the cache .* has no ref "main" of lorauter-test\/other\. Run `lorauter models pull lorauter-test\/other`/);
});
