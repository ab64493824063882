// The Grafana dashboard against a real Prometheus (Debian's prometheus) scraping a real gateway that served a small
// mixed load: every panel's query must parse and return data, so that a renamed metric fails here instead of
// leaving a panel blank in production.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { GatewayMetrics } from '../src/observability/metrics.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';
import { DASHBOARD_FILE, dashboardJson } from './helpers/monitoring.js';
import { freePort, RedisServer } from './helpers/redis.js';
import { until } from './helpers/wait.js';

const ADMIN = 'dashboard-admin-key';
// Prometheus scrapes every second: a few scrapes, however busy the machine.
const DASHBOARD_WAIT = { limitMs: 30_000, everyMs: 100 };

t.test('the dashboard file is generated from its panels (npm run monitoring)', async (t) => {
  t.equal(readFileSync(DASHBOARD_FILE, 'utf8'), dashboardJson(), 'not stale');
});

t.test("every panel's query parses and returns data from a real Prometheus scraping a gateway under a small mixed load", async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  // The server takes merges up to rank 24: of the two mixtures the chats below ask for, one loads (rank 24), the
  // other is refused (rank 32): a failed build and a fallback.
  const fake = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 24 });
  t.teardown(() => fake.stop());
  const dir = t.testdir({ merges: {}, prometheus: {} });
  const mergeDir = join(dir, 'merges');
  const gw = await listenGateway(
    {
      adminApiKey: ADMIN,
      cache: { redisUrl: redis.url, redisTimeoutMs: 100 },
      upstream: { url: fake.url, kind: 'vllm', vllmMode: 'merge', mergeDir, baseModel: 'tiny-llama', maxLoraRank: 64, mergeMinWeight: 0, mergeWarmStart: false },
      temperature: 1,
    },
    { registry: await tinyLlamaRegistry(), metrics: new GatewayMetrics({ defaultMetrics: true }) },
  );
  t.teardown(() => gw.close());

  const port = await freePort();
  const prometheusUrl = `http://127.0.0.1:${port}`;
  const config = { global: { scrape_interval: '1s', evaluation_interval: '1s' }, scrape_configs: [{ job_name: 'lorauter', static_configs: [{ targets: [new URL(gw.url).host] }] }] };
  writeFileSync(join(dir, 'prometheus', 'prometheus.yml'), YAML.stringify(config));
  let prometheusOutput = '';
  const prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus', 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'prometheus', 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  prometheus.stdout.on('data', (chunk) => (prometheusOutput += chunk));
  prometheus.stderr.on('data', (chunk) => (prometheusOutput += chunk));
  t.teardown(() => void prometheus.kill('SIGKILL'));
  const query = async (expr: string) => {
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await response.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  };
  const scraped = async () => (await query('up{job="lorauter"} == 1').catch(() => undefined))?.data?.result.length === 1;
  await until(scraped, `Prometheus scraping the gateway:\n${prometheusOutput.slice(-2000)}`, DASHBOARD_WAIT);

  // The load: new prompts, one that belongs to the base model, a bad request, chats whose merges load and chats
  // whose merges the server refuses, streams, a registry change, a moment without Redis.
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}${path}`, { method: path.startsWith('/v1/tasks') ? 'PUT' : 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  for (let i = 0; i < 20; i++) t.equal((await post('/v1/route', { input: `Is review ${i} positive or negative? a fine film` })).status, 200);
  t.equal((await post('/v1/route', { input: 'hi, how are you?' })).status, 200);
  t.equal((await post('/v1/route', { input: 5 })).status, 400);
  const chat = (content: string, extra: Record<string, unknown> = {}) => post('/v1/chat/completions', { model: 'lorauter', messages: [{ role: 'user', content }], ...extra });
  const mixed = 'Translate to English and say whether it is positive: Das Restaurant The Eagle ist ein schönes Café.';
  for (let i = 0; i < 5; i++) {
    t.equal((await chat(mixed)).status, 200);
    t.equal((await chat(mixed, { lorauter: { top_k: 2 } })).status, 200);
    t.equal((await chat(mixed, { stream: true })).status, 200);
  }
  const metricsText = async () => (await fetch(`${gw.url}/metrics`)).text();
  await until(async () => /lorauter_merge_builds_total\{outcome="done"\}/.test(await metricsText()) && /lorauter_merge_builds_total\{outcome="failed"\}/.test(await metricsText()), 'a merge build that loads and one that the server refuses', DASHBOARD_WAIT);
  for (let i = 0; i < 3; i++) t.equal((await chat(mixed, { lorauter: { top_k: 2 } })).status, 200);
  t.equal((await post('/v1/tasks/dashboard-task', { examples: ['an example prompt about dashboards'] }, { authorization: `Bearer ${ADMIN}` })).status, 201);
  await gw.gateway.liveRouter.settled();
  redis.pause();
  t.equal((await post('/v1/route', { input: 'a prompt while Redis is stuck' })).status, 200);
  redis.resume();

  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
  const targets = (dashboard.panels as { type: string; title: string; targets?: { expr: string }[] }[])
    .filter((panel) => panel.type !== 'row')
    .flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));
  t.ok(targets.length >= 25, `${targets.length} queries`);
  const asGrafanaSends = (expr: string) => expr.replaceAll('$job', 'lorauter').replaceAll('$instance', '.*').replaceAll('$__rate_interval', '1m');
  const missing = async () => {
    const empty: string[] = [];
    for (const target of targets) {
      const answer = await query(asGrafanaSends(target.expr));
      if (answer.status !== 'success') empty.push(`${target.panel}: ${answer.error}`);
      else if ((answer.data?.result.length ?? 0) === 0) empty.push(`${target.panel}: no data for ${target.expr}`);
    }
    return empty;
  };
  // Scrapes come every second: wait until the last of the load is in.
  let empty: string[] = [];
  await until(async () => (empty = await missing()).length === 0, 'every panel to have data', DASHBOARD_WAIT).catch(() => {});
  t.same(empty, [], 'every query parses and returns data');
  for (const variable of ['job', 'instance']) {
    const values = (await (await fetch(`${prometheusUrl}/api/v1/label/${variable}/values?match[]=lorauter_ready`)).json()) as { data: string[] };
    t.ok(values.data.length > 0, `the $${variable} variable has values (${values.data.join(', ')})`);
  }
});
