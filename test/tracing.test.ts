import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { startTracing, tracingRequested } from '../src/observability/tracing.js';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';
import { freePort } from './helpers/redis.js';

const mixedPrompt = 'Translate to English and say whether it is positive: Das Restaurant The Eagle ist ein schönes Café.';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

t.test('tracing is off unless the standard OTEL_* variables ask for it', async (t) => {
  t.notOk(tracingRequested({}));
  t.ok(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }));
  t.ok(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }));
  t.ok(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' }));
  t.notOk(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }));
  t.notOk(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }));
});

t.test('a routed, merged request: server span continuing the caller\'s trace, route, merge and upstream spans, traceparent upstream', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing(new SimpleSpanProcessor({ exporter }));
  t.teardown(() => tracing.shutdown());
  const registry = await tinyLlamaRegistry();
  const vllm = await startFakeVllm({ baseModel: 'tiny-llama', staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 });
  t.teardown(() => vllm.stop());
  const gw = await listenGateway(
    {
      upstream: { url: vllm.url, kind: 'vllm', baseModel: 'tiny-llama', vllmMode: 'merge', mergeDir: t.testdir({}), maxLoraRank: 64, mergeMinWeight: 0, mergeWaitMs: 30_000, mergeWarmStart: false },
      temperature: 1,
      minConfidence: 0,
      defaultBaseExamples: false,
    },
    { registry },
  );
  t.teardown(gw.close);
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
    body: JSON.stringify({ model: 'lorauter', stream: true, messages: [{ role: 'user', content: mixedPrompt }] }),
  });
  t.equal(response.status, 200);
  t.match(await response.text(), /\[DONE\]/);
  await gw.app.inject({ url: '/healthz' });
  // The server span ends once the response is flushed: wait for it (bounded), however busy the machine.
  for (const deadline = Date.now() + 5000; !exporter.getFinishedSpans().some((span) => span.name === 'POST /v1/chat/completions') && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const spans = exporter.getFinishedSpans();
  const named = (name: string) => spans.filter((span) => span.name === name);
  const server = named('POST /v1/chat/completions')[0];
  t.ok(server, 'a server span named by the route pattern');
  t.equal(server.spanContext().traceId, TRACE_ID, 'continues the caller\'s trace');
  t.equal(server.parentSpanContext?.spanId, CALLER_SPAN);
  t.equal(server.attributes['http.response.status_code'], 200);
  const route = named('lorauter.route')[0];
  t.equal(route.parentSpanContext?.spanId, server.spanContext().spanId, 'route decision under the request');
  t.same([...(route.attributes['lorauter.tasks'] as string[])].sort(), ['e2e_nlg', 'sst2', 'wmt16_translate_deen'], 'the decision\'s tasks');
  t.equal(typeof route.attributes['lorauter.confidence'], 'number');
  const merge = named('lorauter.merge')[0];
  t.equal(merge.parentSpanContext?.spanId, server.spanContext().spanId, 'merge under the request');
  const upstream = spans.filter((span) => span.name === 'lorauter.upstream');
  const load = upstream.find((span) => span.attributes['url.path'] === '/v1/load_lora_adapter')!;
  t.equal(load.parentSpanContext?.spanId, merge.spanContext().spanId, 'loading the merge is part of the merge');
  const chat = upstream.find((span) => span.attributes['url.path'] === '/v1/chat/completions')!;
  t.equal(chat.parentSpanContext?.spanId, server.spanContext().spanId);
  t.equal(chat.attributes['http.response.status_code'], 200);
  t.ok(chat.endTime[0] * 1e9 + chat.endTime[1] >= chat.startTime[0] * 1e9 + chat.startTime[1], 'ends when the stream ends');
  t.equal(vllm.last('/v1/chat/completions').headers.traceparent, `00-${TRACE_ID}-${chat.spanContext().spanId}-01`, 'W3C traceparent sent upstream, naming the upstream span');
  t.equal(vllm.last('/v1/load_lora_adapter').headers.traceparent, `00-${TRACE_ID}-${load.spanContext().spanId}-01`);
  t.notOk(spans.some((span) => span.name.includes('/healthz')), 'probes are not traced');
  t.ok(spans.every((span) => span.spanContext().traceId === TRACE_ID), 'one trace');
});

t.test('serve exports spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set', async (t) => {
  const received: { path: string; body: string }[] = [];
  const collector = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', body });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  t.teardown(() => collector.close());
  const { port: collectorPort } = collector.address() as { port: number };
  const port = await freePort();
  const entry = new URL('../src/cli/entry.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', '--port', String(port), '--host', '127.0.0.1'], {
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      LORAUTER_SHUTDOWN_DRAIN_SECONDS: '0',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'gateway-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let ready = false;
  for (let i = 0; i < 200 && !ready; i++) {
    ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (!ready) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.ok(ready);
  const routed = await fetch(`http://127.0.0.1:${port}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'Translate to English: Guten Morgen' }) });
  t.equal(routed.status, 200);
  for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(received[0]?.path, '/v1/traces');
  const exported = JSON.parse(received[0].body);
  const resource = exported.resourceSpans[0].resource.attributes;
  t.same(resource.find((attribute: { key: string }) => attribute.key === 'service.name').value, { stringValue: 'gateway-under-test' });
  const names = exported.resourceSpans.flatMap((rs: { scopeSpans: { spans: { name: string }[] }[] }) => rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => span.name)));
  t.ok(names.includes('POST /v1/route') && names.includes('lorauter.route'), `exported ${names.join(', ')}`);
});
