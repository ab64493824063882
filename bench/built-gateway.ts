// The gateway as users run it (`npm start`, the image): the JavaScript `npm run build` compiles into dist/, not the
// TypeScript sources through tsx, whose transform (esbuild's keepNames) wraps every named function it makes — per
// request, each closure the request path makes — in a call the built code does not have. `npm run bench` builds first.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/src/', import.meta.url);

export async function builtGateway() {
  if (!existsSync(new URL('gateway.js', dist))) throw new Error('dist/ is missing: run `npm run build` (npm run bench does it first).');
  const [config, gateway, app, registry] = await Promise.all([
    import(new URL('config/load.js', dist).href) as Promise<typeof import('../src/config/load.js')>,
    import(new URL('gateway.js', dist).href) as Promise<typeof import('../src/gateway.js')>,
    import(new URL('http/app.js', dist).href) as Promise<typeof import('../src/http/app.js')>,
    import(new URL('registry/load.js', dist).href) as Promise<typeof import('../src/registry/load.js')>,
  ]);
  return { loadConfig: config.loadConfig, createGateway: gateway.createGateway, buildApp: app.buildApp, loadRegistry: registry.loadRegistry };
}
