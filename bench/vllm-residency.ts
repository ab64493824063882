// A vLLM stand-in that models adapter residency, for the composition bench: at most `maxLoras`
// distinct adapters among running requests (a request for another waits), an adapter not in the
// GPU cache (LRU of maxLoras) is loaded from disk at `msPerMb`, and each request takes `serviceMs`.
// Runtime loading (/v1/load_lora_adapter) registers a PEFT folder as vLLM does. Every answer
// carries x-bench-upstream-ms: the time the request spent here, for the gateway-added latency.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { statSync } from 'node:fs';
import { join } from 'node:path';

export interface ResidencyOptions {
  baseModel: string;
  /** Adapter name → PEFT folder, served from the start (--lora-modules). */
  staticAdapters: Map<string, string>;
  maxLoras: number;
  msPerMb: number;
  serviceMs: number;
}

export async function startResidencyVllm(options: ResidencyOptions) {
  const registered = new Map<string, number>(); // name → adapter MB
  for (const [name, path] of options.staticAdapters) registered.set(name, statSync(join(path, 'adapter_model.safetensors')).size / 2 ** 20);
  const gpu: string[] = []; // LRU, most recent last
  const running = new Map<string, number>(); // adapter → running requests
  const waiting: (() => void)[] = [];
  const stats = { requests: 0, loads: 0, loadMs: 0, waits: 0, registered: 0 };

  const admit = async (adapter: string) => {
    while (!running.has(adapter) && running.size >= options.maxLoras) {
      stats.waits++;
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    running.set(adapter, (running.get(adapter) ?? 0) + 1);
  };
  const release = (adapter: string) => {
    const left = running.get(adapter)! - 1;
    if (left === 0) running.delete(adapter);
    else running.set(adapter, left);
    waiting.splice(0).forEach((wake) => wake());
  };

  const body = async (request: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString() || '{}');
  };
  const send = (res: ServerResponse, status: number, payload: unknown, started: number, text = false) => {
    res.writeHead(status, { 'content-type': text ? 'text/plain' : 'application/json', 'x-bench-upstream-ms': (performance.now() - started).toFixed(2) });
    res.end(text ? String(payload) : JSON.stringify(payload));
  };

  const server = createServer(async (request, res) => {
    const started = performance.now();
    try {
      if (request.method === 'GET' && request.url === '/health') return send(res, 200, {}, started);
      const payload = await body(request);
      if (request.url === '/v1/load_lora_adapter') {
        if (registered.has(payload.lora_name)) return send(res, 400, `The lora adapter '${payload.lora_name}' has already been loaded.`, started, true);
        registered.set(payload.lora_name, statSync(join(payload.lora_path, 'adapter_model.safetensors')).size / 2 ** 20);
        stats.registered++;
        return send(res, 200, `Success: LoRA adapter '${payload.lora_name}' added successfully.`, started, true);
      }
      if (request.url === '/v1/unload_lora_adapter') {
        if (!registered.delete(payload.lora_name)) return send(res, 404, { error: { message: 'not found' } }, started);
        const at = gpu.indexOf(payload.lora_name);
        if (at >= 0) gpu.splice(at, 1);
        return send(res, 200, 'Success', started, true);
      }
      if (request.url === '/v1/chat/completions' || request.url === '/v1/completions') {
        const model = payload.model ?? options.baseModel;
        if (model !== options.baseModel && !registered.has(model)) return send(res, 404, { error: { message: `The model \`${model}\` does not exist.`, type: 'NotFoundError', code: 404 } }, started);
        stats.requests++;
        const adapter = model === options.baseModel ? '' : model;
        await admit(adapter);
        try {
          if (adapter && !gpu.includes(adapter)) {
            const ms = registered.get(adapter)! * options.msPerMb;
            stats.loads++;
            stats.loadMs += ms;
            await new Promise((resolve) => setTimeout(resolve, ms));
            gpu.push(adapter);
            if (gpu.length > options.maxLoras) gpu.splice(gpu.findIndex((name) => !running.has(name)), 1);
          } else if (adapter) gpu.push(...gpu.splice(gpu.indexOf(adapter), 1));
          await new Promise((resolve) => setTimeout(resolve, options.serviceMs));
        } finally {
          release(adapter);
        }
        return send(res, 200, { id: 'cmpl-bench', object: 'chat.completion', model, choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }, started);
      }
      send(res, 404, { error: { message: 'not found' } }, started);
    } catch (error) {
      send(res, 500, { error: { message: (error as Error).message } }, started);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stats,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
