// Regenerates docs/configuration.md from the configuration schema (a test fails when it is stale).
import { writeFileSync } from 'node:fs';
import { configurationReference } from '../src/config/reference.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), configurationReference());
console.log('wrote docs/configuration.md');
