import t from 'tap';
import { readFileSync } from 'node:fs';
import { openApiDocument } from './helpers/openapi.js';

t.test('checked-in openapi/openapi.json matches the route schemas', async (t) => {
  const checkedIn = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  t.same(checkedIn, await openApiDocument(), 'stale: run `npm run openapi` and commit openapi/openapi.json');
});

t.test('the live /openapi.json is the checked-in document whatever the configuration (admin API off included)', async (t) => {
  const { startGateway } = await import('./helpers/gateway.js');
  const checkedIn = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  const gw = await startGateway();
  t.teardown(() => gw.close());
  t.equal(gw.gateway.config.adminApiKey, undefined, 'admin API off');
  t.same((await gw.app.inject({ url: '/openapi.json' })).json(), checkedIn);
});
