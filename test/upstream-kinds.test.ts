import t from 'tap';
import OpenAI from 'openai';
import { UPSTREAM_KINDS } from '../src/upstreams/index.js';
import { OPENAI_PATHS, type PreparedRequest, type RoutedCall, type UpstreamDriver } from '../src/upstreams/types.js';
import { completion, FakeServer, json } from './fakes/server.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';

/** A made-up server kind that takes the mixture as `adapters: {id: weight}`: a driver is all it needs. */
class WeightsInBodyDriver implements UpstreamDriver {
  readonly kind = 'weights-in-body';
  async prepareRouted(call: RoutedCall): Promise<PreparedRequest> {
    const adapters = Object.fromEntries(call.decision.adapters.map((adapter) => [adapter.id, adapter.weight]));
    return { path: OPENAI_PATHS[call.endpoint], body: { ...call.body, model: 'base', adapters }, composition: 'weights-in-body' };
  }
}

t.test('a new upstream kind is its driver and one line of the table', async (t) => {
  UPSTREAM_KINDS['weights-in-body'] = () => new WeightsInBodyDriver();
  t.teardown(() => void delete UPSTREAM_KINDS['weights-in-body']);
  const fake = new FakeServer().route('POST', '/v1/chat/completions', (request, res) => json(res, 200, completion('chat', request.body.model, `adapters=${Object.keys(request.body.adapters ?? {}).join('+')}`)));
  await fake.start();
  const gw = await listenGateway({ upstream: { url: fake.url, kind: 'weights-in-body' }, minConfidence: 0, defaultBaseExamples: false, temperature: 1 }, { registry: await tinyLlamaRegistry() });
  t.teardown(async () => {
    await gw.close();
    await fake.stop();
  });
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const { data, response } = await client.chat.completions.create({ model: 'lorauter', messages: [{ role: 'user', content: 'Translate to English: Guten Morgen' }] }).withResponse();
  t.equal(response.headers.get('x-lorauter-composition'), 'weights-in-body');
  const sent = fake.last('/v1/chat/completions').body.adapters;
  t.same(Object.keys(sent).sort(), response.headers.get('x-lorauter-adapters')!.split(',').map((pair) => pair.split('=')[0]).sort());
  t.equal(data.model, 'lorauter', 'the answer reports the name the client asked for');
});
