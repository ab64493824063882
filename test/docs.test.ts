import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

t.test('the README is a quick start and an index: under 200 lines, linking every page in docs/', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.ok(readme.split('\n').length < 200, `${readme.split('\n').length} lines`);
  for (const page of pages.filter((page) => page !== 'README.md')) t.ok(readme.includes(`](${page})`), `links ${page}`);
});

t.test('every relative link in the documentation leads to a file of the repository', async (t) => {
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      t.ok(existsSync(join(ROOT, dirname(page), target)), `${page}: ${target} exists`);
    }
  }
});
