import t, { type Test as Tap } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import type { HubSettings } from '../src/config/schema.js';
import { EncoderSetupError } from '../src/encoders/errors.js';
import { hubCacheDir, storedTokenPath } from '../src/encoders/hub/hub-cache.js';
import { hubModelId } from '../src/encoders/hub/model-id.js';
import { resolveHubModel, type HubEvents } from '../src/encoders/hub/resolve-model.js';
import { prepareEncoder } from '../src/encoders/kinds.js';
import { selectExportFiles } from '../src/encoders/onnx/export-files.js';
import { startStandInHub, type StandInHub } from './fakes/hub.js';
import { FLAN_TASKS, startGateway } from './helpers/gateway.js';
import { EXPORT_FILES, exportRepo, MODEL_DIR, ONNX_FIXTURE } from './helpers/hub-model.js';

const read = (path: string) => readFileSync(join(MODEL_DIR, path));
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const gitOid = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

function hubSettings(hub: StandInHub, cacheDir: string, overrides: Partial<HubSettings> = {}): HubSettings {
  return { endpoint: hub.url, cacheDir, home: join(cacheDir, '..', 'home'), offline: false, timeoutMs: 2000, retries: 3, lockWaitMs: 60_000, ...overrides };
}

async function setup(t: Tap) {
  const hub = await startStandInHub();
  t.teardown(() => hub.stop());
  const root = mkdtempSync(join(tmpdir(), 'lorauter-hub-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return { hub, cacheDir: join(root, 'hub') };
}

/** What the encoder would have read had it started: every event, by kind. */
function recorder() {
  const seen: Record<string, unknown[][]> = {};
  const events = new Proxy({} as HubEvents, { get: (_target, name: string) => (...args: unknown[]) => void (seen[name] ??= []).push(args) });
  return { events, seen };
}

const setupFailure = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof EncoderSetupError) return error.message;
    throw error;
  }
  throw new Error('expected an EncoderSetupError');
};

t.test('LORAUTER_ENCODER_MODEL: a path that exists is a folder; owner/name[@revision] otherwise is a hub id', async (t) => {
  t.same(hubModelId('BAAI/bge-small-en-v1.5'), { repo: 'BAAI/bge-small-en-v1.5', revision: undefined });
  t.same(hubModelId('Xenova/all-MiniLM-L6-v2@0123456789abcdef0123456789abcdef01234567'), { repo: 'Xenova/all-MiniLM-L6-v2', revision: '0123456789abcdef0123456789abcdef01234567' });
  t.same(hubModelId('owner/name@refs/pr/1'), { repo: 'owner/name', revision: 'refs/pr/1' });
  t.equal(hubModelId(MODEL_DIR), undefined, 'an absolute folder');
  t.equal(hubModelId('test/fixtures'), undefined, 'a relative folder that exists');
  t.equal(hubModelId('./owner/name'), undefined, 'an explicit relative path');
  t.equal(hubModelId('docker/models/all-MiniLM-L6-v2'), undefined, 'two slashes: a path');
  t.equal(hubModelId('bert-base-uncased'), undefined, 'no owner');
  t.equal(hubModelId('owner/name@../../etc'), undefined, 'a revision that climbs out of refs/');
  t.equal(hubModelId('owner/..'), undefined);
});

t.test('a hub id: only the export is downloaded, verified, into the Hugging Face cache layout', async (t) => {
  const { hub, cacheDir } = await setup(t);
  const commit = hub.push('lorauter-test/minilm-tiny', exportRepo());
  const { events, seen } = recorder();
  const resolved = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir), quantized: false, events });
  const repoDir = join(cacheDir, 'models--lorauter-test--minilm-tiny');
  t.equal(resolved.dir, join(repoDir, 'snapshots', commit));
  t.equal(resolved.graph, join(repoDir, 'snapshots', commit, 'onnx/model.onnx'));
  t.same(resolved.source, { repo: 'lorauter-test/minilm-tiny', revision: undefined, commit });
  t.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), commit, 'refs/main names the commit');
  for (const file of EXPORT_FILES) {
    const pointer = join(resolved.dir, file);
    t.ok(lstatSync(pointer).isSymbolicLink(), `${file} is a link`);
    t.notOk(readlinkSync(pointer).startsWith('/'), `${file}: relative, as huggingface_hub links`);
    const bytes = read(file);
    t.same(readFileSync(pointer), bytes, `${file}: the bytes`);
    const etag = file.endsWith('.onnx') ? sha256(bytes) : gitOid(bytes);
    t.ok(existsSync(join(repoDir, 'blobs', etag)), `${file}: blob named by its ${file.endsWith('.onnx') ? 'SHA-256 (LFS)' : 'git oid'}`);
    t.equal(hub.downloadsOf(file).length, 1, `${file} downloaded once`);
  }
  for (const file of ['pytorch_model.bin', 'README.md', 'vocab.txt', 'onnx/model_quantized.onnx']) t.equal(hub.downloadsOf(file).length, 0, `${file} not downloaded`);
  t.same(readdirSync(join(repoDir, 'blobs')).filter((name) => name.includes('.')), [], 'no .incomplete left');
  t.equal(resolved.downloaded.files, EXPORT_FILES.length);
  t.equal(resolved.downloaded.bytes, EXPORT_FILES.reduce((sum, file) => sum + read(file).length, 0));
  t.ok(hub.requests.some((r) => r.path.includes('/tree/') && r.path.endsWith(commit)), 'files listed at the resolved commit');
  t.ok(hub.requests.filter((r) => r.path.includes('/tree/')).length > 1, 'the listing was paged (Link: rel="next")');
  t.ok(hub.requests.some((r) => r.server === 'cdn' && r.served === 'onnx/model.onnx'), 'the LFS graph came through the redirect to the CDN');
  t.equal((seen.downloading ?? []).length, EXPORT_FILES.length, 'a start event a file');
  t.ok((seen.progress ?? []).length >= EXPORT_FILES.length, 'progress reported');

  t.test('a second resolution downloads nothing', async (t) => {
    const before = hub.requests.length;
    const again = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir), quantized: false });
    t.equal(again.graph, resolved.graph);
    t.same(again.downloaded, { files: 0, bytes: 0 });
    const made = hub.requests.slice(before);
    t.same(made.filter((r) => r.path.includes('/resolve/') || r.server === 'cdn'), [], 'no file requested');
    t.ok(made.every((r) => r.path.startsWith('/api/models/')), 'only the revision and the listing');
  });

  t.test('pinned to a cached commit: no request at all', async (t) => {
    const before = hub.requests.length;
    const pinned = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny', revision: commit }, { hub: hubSettings(hub, cacheDir), quantized: false });
    t.equal(pinned.graph, resolved.graph);
    t.ok(pinned.fromCache);
    t.equal(hub.requests.length, before);
  });

  t.test('HF_HUB_OFFLINE: from the cache, without a request, even with the hub gone', async (t) => {
    const before = hub.requests.length;
    const offline = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir, { offline: true, endpoint: 'http://127.0.0.1:1' }), quantized: false });
    t.equal(offline.graph, resolved.graph);
    t.equal(hub.requests.length, before);
    const missing = await setupFailure(resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir, { offline: true }), quantized: true }));
    t.match(missing, /HF_HUB_OFFLINE=1/);
    t.match(missing, /lorauter models pull lorauter-test\/minilm-tiny --quantized/, 'says how to fill the cache');
    const other = await setupFailure(resolveHubModel({ repo: 'lorauter-test/other' }, { hub: hubSettings(hub, cacheDir, { offline: true }), quantized: false }));
    t.match(other, /has no ref "main" of lorauter-test\/other/);
    t.equal(hub.requests.length, before, 'offline never asked the hub');
  });

  t.test('LORAUTER_ENCODER_QUANTIZED: the quantized graph instead', async (t) => {
    const quantized = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir), quantized: true });
    t.equal(quantized.graph, join(resolved.dir, 'onnx/model_quantized.onnx'));
    t.equal(hub.downloadsOf('onnx/model_quantized.onnx').length, 1);
    t.equal(hub.downloadsOf('onnx/model.onnx').length, 1, 'the full graph not fetched again');
    const quantizedOnly = join(cacheDir, '..', 'quantized-only');
    await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, quantizedOnly), quantized: true });
    const full = await setupFailure(resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, quantizedOnly, { offline: true }), quantized: false }));
    t.match(full, /lacks the full-precision graph/, 'offline, a cached quantized graph does not stand in for the full one');
  });
});

t.test('the ONNX encoder from a hub id routes exactly as from the local folder', async (t) => {
  const { hub, cacheDir } = await setup(t);
  const commit = hub.push('lorauter-test/minilm-tiny', exportRepo());
  const common = { tasks: FLAN_TASKS, encoder: { kind: 'onnx', queryPrefix: 'query: ', examplePrefix: 'passage: ' } };
  const local = await startGateway({ ...common, encoder: { ...common.encoder, model: MODEL_DIR } });
  t.teardown(() => local.close());
  const fromHub = await startGateway({ ...common, encoder: { ...common.encoder, model: 'lorauter-test/minilm-tiny', hub: hubSettings(hub, cacheDir) } });
  t.teardown(() => fromHub.close());
  const prompts = ['Translate to German: the weather is nice today.', 'Is this review positive? The film was dull.', 'Summarize: the council met on Tuesday to discuss the budget.', 'What is 12 plus 30?'];
  for (const prompt of prompts) {
    const [a, b] = await Promise.all([local, fromHub].map(async ({ app }) => (await app.inject({ method: 'POST', url: '/v1/route', payload: { input: prompt } })).json()));
    t.equal(a.tasks.length, 3);
    t.same(b.tasks, a.tasks, `same tasks and similarities: ${prompt}`);
    t.same(b.adapters, a.adapters, 'same adapters and weights');
    t.same([b.confidence, b.abstained], [a.confidence, a.abstained]);
  }
  const ready = (await fromHub.app.inject({ url: '/readyz' })).json();
  t.same(ready.encoder.model, { path: join(cacheDir, 'models--lorauter-test--minilm-tiny', 'snapshots', commit, 'onnx/model.onnx'), repo: 'lorauter-test/minilm-tiny', commit }, '/readyz: the repository and the commit');
  t.notOk((await local.app.inject({ url: '/readyz' })).json().encoder.model.commit, 'a folder has no commit');
  const resolvedLog = fromHub.logs.find((line) => line.msg === 'encoder model resolved');
  t.match(resolvedLog, { model: 'lorauter-test/minilm-tiny', revision: 'main', commit, downloaded_files: EXPORT_FILES.length }, 'the resolved commit is logged');
  t.ok(fromHub.logs.some((line) => line.msg === 'downloading model file' && line.file === 'onnx/model.onnx'), 'downloads are logged');
  t.not(fromHub.gateway.encoder.fingerprint, local.gateway.encoder.fingerprint, 'the commit is part of the fingerprint');

  t.test('a new upload upstream: a new commit, a new fingerprint; the pinned commit keeps the old', async (t) => {
    const graph = readFileSync(join(ONNX_FIXTURE, 'no-token-types.onnx'));
    const next = hub.push('lorauter-test/minilm-tiny', exportRepo({ 'onnx/model.onnx': graph }));
    const moved = await prepareEncoder({ ...loadConfig({ env: {} }).encoder, queryPrefix: "query: ", examplePrefix: "passage: ", kind: 'onnx', model: 'lorauter-test/minilm-tiny', hub: hubSettings(hub, cacheDir) });
    const pinned = await prepareEncoder({ ...loadConfig({ env: {} }).encoder, queryPrefix: "query: ", examplePrefix: "passage: ", kind: 'onnx', model: `lorauter-test/minilm-tiny@${commit}`, hub: hubSettings(hub, cacheDir) });
    t.teardown(async () => {
      await moved.close();
      await pinned.close();
    });
    const [movedEncoder, pinnedEncoder] = [moved.forTasks([]), pinned.forTasks([])];
    t.equal(movedEncoder.model?.commit, next);
    t.equal(pinnedEncoder.model?.commit, commit);
    t.not(movedEncoder.fingerprint, pinnedEncoder.fingerprint);
    t.equal(pinnedEncoder.fingerprint, fromHub.gateway.encoder.fingerprint, 'pinned: the fingerprint of that commit');
    t.equal(readFileSync(join(cacheDir, 'models--lorauter-test--minilm-tiny', 'refs', 'main'), 'utf8'), next, 'refs/main moved');
  });
});

t.test('refusals and missing exports say what to do', async (t) => {
  const { hub, cacheDir } = await setup(t);
  hub.push('lorauter-test/gated-minilm', exportRepo(), { gatedFor: ['hf_granted'] });
  hub.push('lorauter-test/pytorch-only', { 'config.json': read('config.json'), 'pytorch_model.bin': Buffer.alloc(1000, 1), 'tokenizer.json': read('tokenizer.json'), 'README.md': Buffer.from('hi') });
  hub.push('lorauter-test/graph-only', { 'onnx/model.onnx': read('onnx/model.onnx'), 'config.json': read('config.json') });
  const resolve = (repo: string, overrides: Partial<HubSettings> = {}, revision?: string) => resolveHubModel({ repo, revision }, { hub: hubSettings(hub, cacheDir, overrides), quantized: false });

  const noToken = await setupFailure(resolve('lorauter-test/gated-minilm'));
  t.match(noToken, /401, GatedRepo/);
  t.match(noToken, /Set HF_TOKEN/);
  t.match(noToken, new RegExp(`accepted at ${hub.url}/lorauter-test/gated-minilm`));
  const notGranted = await setupFailure(resolve('lorauter-test/gated-minilm', { token: 'hf_other' }));
  t.match(notGranted, /no access \(403, GatedRepo/);
  t.match(notGranted, /Request access at/);
  const granted = await resolve('lorauter-test/gated-minilm', { token: 'hf_granted' });
  t.ok(existsSync(granted.graph), 'with a granted token it downloads');
  t.ok(hub.requests.filter((r) => r.path.includes('/resolve/') && r.path.includes('gated')).every((r) => r.authorization === undefined || r.authorization === 'Bearer hf_granted' || r.authorization === 'Bearer hf_other'));
  t.notOk(hub.requests.some((r) => r.server === 'cdn' && r.authorization), 'the token never went to the CDN');

  t.test('the token huggingface-cli login stored', async (t) => {
    const home = join(cacheDir, '..', 'login-home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'token'), 'hf_granted\n');
    const viaLogin = await resolveHubModel({ repo: 'lorauter-test/gated-minilm' }, { hub: hubSettings(hub, join(cacheDir, '..', 'other-cache'), { home }), quantized: false });
    t.ok(existsSync(viaLogin.graph));
  });

  const pytorch = await setupFailure(resolve('lorauter-test/pytorch-only'));
  t.match(pytorch, /has no ONNX export \(looked for onnx\/model\.onnx, model\.onnx/);
  for (const file of ['README.md', 'config.json', 'pytorch_model.bin', 'tokenizer.json']) t.match(pytorch, new RegExp(`its files: .*${file.replace('.', '\\.')}`), `names ${file}, which it has`);
  t.match(pytorch, /optimum-cli export onnx/, 'and how to export one');
  const graphOnly = await setupFailure(resolve('lorauter-test/graph-only'));
  t.match(graphOnly, /has an ONNX graph \(onnx\/model\.onnx\) but not tokenizer\.json, tokenizer_config\.json/);
  t.equal(hub.downloadsOf('pytorch_model.bin').length + hub.downloadsOf('onnx/model.onnx').filter((r) => r.path.includes('graph-only')).length, 0, 'nothing downloaded before the check');
  t.match(await setupFailure(resolve('lorauter-test/nothing-here')), /no such model at .* and no such local folder/);
  t.match(await setupFailure(resolve('lorauter-test/gated-minilm', { token: 'hf_granted' }, 'v9')), /has no revision "v9"/);
});

t.test('downloads: cut half way, taken up where they stopped; a range ignored; bytes that do not verify', async (t) => {
  const { hub, cacheDir } = await setup(t);
  const graph = read('onnx/model.onnx');
  hub.push('lorauter-test/minilm-tiny', exportRepo());
  const blob = join(cacheDir, 'models--lorauter-test--minilm-tiny', 'blobs', sha256(graph));
  const resolve = (overrides: Partial<HubSettings> = {}, events?: HubEvents) => resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir, overrides), quantized: false, events });

  hub.faults.set('onnx/model.onnx', ['cut']);
  const cut = await setupFailure(resolve({ retries: 0 }));
  t.match(cut, /could not be reached or did not finish/);
  t.notOk(existsSync(blob), 'no blob from a cut download');
  const kept = statSync(`${blob}.incomplete`).size;
  t.ok(kept > 0 && kept <= graph.length / 2, `what arrived before the cut is kept aside (${kept} bytes)`);
  t.notOk(existsSync(join(cacheDir, 'models--lorauter-test--minilm-tiny', 'snapshots')) && readdirSync(join(cacheDir, 'models--lorauter-test--minilm-tiny', 'snapshots')).some((c) => existsSync(join(cacheDir, 'models--lorauter-test--minilm-tiny', 'snapshots', c, 'onnx/model.onnx'))), 'nothing links to it');

  const { events, seen } = recorder();
  const resumed = await resolve({}, events);
  const ranges = hub.downloadsOf('onnx/model.onnx').map((r) => r.range);
  t.equal(ranges.at(-1), `bytes=${kept}-${graph.length - 1}`, 'the next start asked for the rest only');
  t.same(readFileSync(resumed.graph), graph, 'and the file is whole');
  t.same(seen.downloading?.find(([file]) => (file as { path: string }).path === 'onnx/model.onnx')?.[1], kept, 'reported as resumed');

  t.test('cut twice in one start: retried from where it stopped each time', async (t) => {
    const fresh = join(cacheDir, '..', 'cache-2');
    hub.faults.set('onnx/model.onnx', ['cut', 'cut']);
    const { events, seen } = recorder();
    const before = hub.downloadsOf('onnx/model.onnx').length;
    const done = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, fresh), quantized: false, events });
    t.same(readFileSync(done.graph), graph);
    const starts = hub.downloadsOf('onnx/model.onnx').slice(before).map((r) => Number(/bytes=(\d+)/.exec(r.range ?? '')?.[1] ?? 0));
    t.equal(starts.length, 3);
    t.ok(starts[0] === 0 && starts[1] > 0 && starts[2] > starts[1], `from 0, then from where each cut left it (${starts.join(', ')})`);
    t.equal(seen.retry?.length, 2);
  });

  t.test('a server that ignores the range: the partial bytes are dropped and the file taken whole', async (t) => {
    const fresh = join(cacheDir, '..', 'cache-3');
    hub.faults.set('onnx/model.onnx', ['cut', 'ignore-range']);
    const { events, seen } = recorder();
    const done = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, fresh), quantized: false, events });
    t.same(readFileSync(done.graph), graph, 'not the half and then the whole');
    t.match((seen.retry?.[1]?.[1] as Error).message, /asked for bytes from \d+, got 200/, 'the whole answer is refused at its headers, not found out by the hash');
  });

  t.test('bytes that do not hash to the hub\'s SHA-256 are never kept', async (t) => {
    const fresh = join(cacheDir, '..', 'cache-4');
    hub.faults.set('onnx/model.onnx', ['corrupt', 'corrupt']);
    const failed = await setupFailure(resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, fresh, { retries: 1 }), quantized: false }));
    t.match(failed, /do not hash to/);
    const blobs = join(fresh, 'models--lorauter-test--minilm-tiny', 'blobs');
    t.same(readdirSync(blobs).filter((name) => name.startsWith(sha256(graph))), [], 'neither the blob nor its .incomplete');
    hub.faults.set('onnx/model.onnx', ['corrupt']);
    const healed = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, fresh, { retries: 1 }), quantized: false });
    t.same(readFileSync(healed.graph), graph, 'one bad copy, then a good one');
  });

  t.test('another process holding the file\'s lock longer than LORAUTER_HUB_LOCK_WAIT_MS: a clear failure, nothing written', async (t) => {
    const fresh = join(cacheDir, '..', 'cache-6');
    mkdirSync(join(fresh, '.locks', 'models--lorauter-test--minilm-tiny', `${sha256(graph)}.lorauter-lock`), { recursive: true });
    const failed = await setupFailure(resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, fresh, { lockWaitMs: 1000 }), quantized: false }));
    t.match(failed, /another process kept downloading the same file for too long/);
    t.notOk(existsSync(join(fresh, 'models--lorauter-test--minilm-tiny', 'blobs', sha256(graph))));
  });

  t.test('two starts at once on one cache: each file downloaded once', async (t) => {
    const fresh = join(cacheDir, '..', 'cache-5');
    const before = hub.downloadsOf('onnx/model.onnx').length;
    const [a, b] = await Promise.all([0, 1].map(() => resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, fresh), quantized: false })));
    t.equal(a.graph, b.graph);
    t.same(readFileSync(a.graph), graph);
    t.equal(hub.downloadsOf('onnx/model.onnx').length - before, 1);
  });
});

t.test('a silent hub: bounded by LORAUTER_HUB_TIMEOUT_MS; a cached model is used instead', async (t) => {
  const { hub, cacheDir } = await setup(t);
  const commit = hub.push('lorauter-test/minilm-tiny', exportRepo());
  await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir), quantized: false });
  hub.silent = true;
  const { events, seen } = recorder();
  const started = performance.now();
  const cached = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, cacheDir, { timeoutMs: 300 }), quantized: false, events });
  t.ok(performance.now() - started >= 300, 'waited for the hub as long as allowed');
  t.equal(cached.source.commit, commit);
  t.ok(cached.fromCache);
  t.match(seen.fellBack?.[0], [/did not answer .* within 300 ms/, commit], 'said so');
  const uncached = await setupFailure(resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, join(cacheDir, '..', 'empty'), { timeoutMs: 300 }), quantized: false }));
  t.match(uncached, /could not be reached .*`lorauter models pull lorauter-test\/minilm-tiny`.* HF_HUB_OFFLINE=1/);

  t.test('a download gone silent half way', async (t) => {
    hub.silent = false;
    hub.faults.set('onnx/model.onnx', ['stall']);
    const fresh = join(cacheDir, '..', 'stall');
    const done = await resolveHubModel({ repo: 'lorauter-test/minilm-tiny' }, { hub: hubSettings(hub, fresh, { timeoutMs: 300 }), quantized: false });
    t.same(readFileSync(done.graph), read('onnx/model.onnx'), 'taken up after the silence');
    t.match(hub.downloadsOf('onnx/model.onnx').at(-1)?.range, /^bytes=[1-9]/);
  });
});

t.test('which files an export needs: the graph asked for, its external weights, the tokenizer and config, pooling when there', async (t) => {
  const files = ['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_quantized.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json', '1_Pooling/config.json', 'vocab.txt', 'model.safetensors'];
  t.same(selectExportFiles(files, false, 'r'), { graph: 'onnx/model.onnx', files: ['onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json', 'onnx/model.onnx_data', '1_Pooling/config.json'] });
  t.same(selectExportFiles(files, true, 'r').graph, 'onnx/model_quantized.onnx');
  t.notOk(selectExportFiles(files, true, 'r').files.includes('onnx/model.onnx_data'), "the full graph's weights are not the quantized one's");
  t.same(selectExportFiles(['model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json'], false, 'r').graph, 'model.onnx', 'a graph at the top level');
  t.same(selectExportFiles(['model_quantized.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json'], false, 'r').graph, 'model_quantized.onnx', 'only a quantized one: it is used, as from a folder');
  t.throws(() => selectExportFiles(['onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'config.json'], true, 'owner/name'), /owner\/name has no quantized ONNX export .* it has onnx\/model\.onnx\): unset LORAUTER_ENCODER_QUANTIZED/);
});

t.test('where the cache and the login token are, as huggingface_hub finds them', async (t) => {
  t.equal(hubCacheDir({ cacheDir: '/c' }, {}), '/c', 'HF_HUB_CACHE');
  t.equal(hubCacheDir({ home: '/h' }, {}), '/h/hub', 'HF_HOME/hub');
  t.equal(hubCacheDir({}, { XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub', '$XDG_CACHE_HOME/huggingface/hub');
  t.equal(hubCacheDir({}, {}), join(homedir(), '.cache', 'huggingface', 'hub'), '~/.cache/huggingface/hub');
  t.equal(storedTokenPath({ home: '/h' }, {}), '/h/token');
  t.equal(storedTokenPath({ tokenPath: '/t' }, {}), '/t', 'HF_TOKEN_PATH');
});
