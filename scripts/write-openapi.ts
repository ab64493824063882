// Regenerates openapi/openapi.json from the route schemas (a test fails when it is stale).
import { writeFileSync } from 'node:fs';
import { openApiDocument } from '../test/helpers/openapi.js';

writeFileSync(new URL('../openapi/openapi.json', import.meta.url), `${JSON.stringify(await openApiDocument(), null, 2)}\n`);
console.log('wrote openapi/openapi.json');
