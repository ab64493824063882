import t from 'tap';
import { readFileSync } from 'node:fs';
import { openApiDocument } from './helpers/openapi.js';

t.test('checked-in openapi/openapi.json matches the route schemas', async (t) => {
  const checkedIn = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
  t.same(checkedIn, await openApiDocument(), 'stale: run `npm run openapi` and commit openapi/openapi.json');
});
