// Child process for `npm run bench`: the least a Node proxy can do (node:http in, undici out, no
// routing, no validation), measured beside the gateway to show what any Node hop costs on this machine.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const pool = new Pool(process.env.BENCH_UPSTREAM_URL!, { connections: 128 });
const server = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const upstream = await pool.request({ method: 'POST', path: req.url!, headers: { 'content-type': 'application/json', accept: String(req.headers.accept ?? '*/*') }, body: Buffer.concat(chunks) });
  res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') });
  for await (const chunk of upstream.body) res.write(chunk);
  res.end();
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port, buildMs: 0, rssMb: process.memoryUsage().rss / 2 ** 20 })));
// A clean exit on SIGTERM lets BENCH_NODE_FLAGS=--cpu-prof write its profile.
process.on('SIGTERM', () => process.exit(0));
