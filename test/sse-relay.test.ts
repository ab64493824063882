import t from 'tap';
import { IncompleteStreamError, openAIStreamText } from '../src/upstreams/sse.js';
import { withModelField } from '../src/upstreams/model-field.js';

async function relay(chunks: string[]): Promise<string> {
  let out = '';
  for await (const text of openAIStreamText((async function* () { for (const chunk of chunks) yield Buffer.from(chunk); })(), (payload) => withModelField(payload, 'lorauter'))) out += text;
  return out;
}

t.test('an OpenAI stream passes whole lines on, each data payload renamed, framing kept, up to [DONE]', async (t) => {
  const stream = ': keep-alive\n\ndata: {"id":"1","model":"sst2","choices":[{"delta":{"content":"a \\"model\\""}}]}\n\nevent: message\ndata:{"model":"sst2"}\r\n\r\ndata: [DONE]\n\n';
  const expected = stream.replace('"model":"sst2","choices"', '"model":"lorauter","choices"').replace('data:{"model":"sst2"}', 'data: {"model":"lorauter"}');
  t.equal(await relay([stream]), expected, 'in one chunk');
  // Cut at every place, even inside a line or a multi-byte character: the same text comes out.
  const bytes = Buffer.from(stream.replace('a \\"model\\"', 'ünï'));
  const whole = await relay([bytes.toString()]);
  for (let cut = 1; cut < bytes.length; cut += 7) {
    let out = '';
    for await (const text of openAIStreamText((async function* () { yield bytes.subarray(0, cut); yield bytes.subarray(cut); })(), (payload) => withModelField(payload, 'lorauter'))) out += text;
    t.equal(out, whole, `cut at byte ${cut}`);
  }
  t.equal(await relay(['data: {"model":"x"}\n\ndata: [DONE]\n\ndata: {"late":1}\n\n']), 'data: {"model":"lorauter"}\n\ndata: [DONE]\n\n', 'nothing after [DONE]');
  await t.rejects(relay(['data: {"model":"x"}\n\n']), IncompleteStreamError, 'a stream that ends before [DONE] was cut short');
});
