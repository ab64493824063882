import t from 'tap';
import { OpenAIStreamRelay } from '../src/upstreams/sse.js';
import { withModelField } from '../src/upstreams/model-field.js';

/** The text the relay passes on for these chunks, and whether it saw [DONE]. */
function relay(chunks: (string | Uint8Array)[]): { text: string; done: boolean } {
  const streamRelay = new OpenAIStreamRelay((payload) => withModelField(payload, 'lorauter'));
  let text = '';
  for (const chunk of chunks) text += streamRelay.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return { text, done: streamRelay.done };
}

t.test('an OpenAI stream passes whole lines on, each data payload renamed, framing kept, up to [DONE]', async (t) => {
  const stream = ': keep-alive\n\ndata: {"id":"1","model":"sst2","choices":[{"delta":{"content":"a \\"model\\""}}]}\n\nevent: message\ndata:{"model":"sst2"}\r\n\r\ndata: [DONE]\n\n';
  const expected = stream.replace('"model":"sst2","choices"', '"model":"lorauter","choices"').replace('data:{"model":"sst2"}', 'data: {"model":"lorauter"}');
  t.same(relay([stream]), { text: expected, done: true }, 'in one chunk');
  // Cut at every place, even inside a line or a multi-byte character: the same text comes out.
  const bytes = Buffer.from(stream.replace('a \\"model\\"', 'ünï'));
  const whole = relay([bytes]).text;
  for (let cut = 1; cut < bytes.length; cut++) t.same(relay([bytes.subarray(0, cut), bytes.subarray(cut)]), { text: whole, done: true }, `cut at byte ${cut}`);
  t.same(relay([...bytes].map((byte) => Uint8Array.of(byte))), { text: whole, done: true }, 'a byte at a time');
  t.same(relay(['data: {"model":"x"}\n\ndata: [DONE]\n\n', 'data: {"late":1}\n\n']), { text: 'data: {"model":"lorauter"}\n\ndata: [DONE]\n\n', done: true }, 'nothing after [DONE]');
  t.same(relay(['data: {"model":"x"}\r\n\r\ndata: [DONE]\r\n']), { text: 'data: {"model":"lorauter"}\r\n\r\ndata: [DONE]\r\n\r\n', done: true }, '[DONE] ends the stream with its blank line, in the stream’s line endings');
  t.same(relay(['data: {"model":"x"}\n\n', 'data: [DO']), { text: 'data: {"model":"lorauter"}\n\n', done: false }, 'a stream that ends before [DONE] is not done');
  t.same(relay(['data:\n\n', 'data: [DONE]\n\n']), { text: 'data: \n\ndata: [DONE]\n\n', done: true }, 'an empty payload');
});

