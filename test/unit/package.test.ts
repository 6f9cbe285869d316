import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The packages that the declarations reachable from `entry` (a .d.ts of dist/) import: what a
 * TypeScript user of that entry point must have installed for its types to resolve.
 */
function declarationImports(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const pending = [resolve(root, entry)];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, specifier = ''] of text.matchAll(/(?:from|import\()\s*'([^']+)'/gu)) {
      if (specifier.startsWith('.')) {
        pending.push(resolve(dirname(file), specifier.replace(/\.js$/u, '.d.ts')));
      } else if (!specifier.startsWith('node:')) {
        packages.add(
          specifier.startsWith('@')
            ? specifier.split('/').slice(0, 2).join('/')
            : (specifier.split('/')[0] ?? ''),
        );
      }
    }
  }
  return packages;
}

describe('the built package', () => {
  it('exists (npm test builds it first; alone, run `npm run build`)', () => {
    expect(existsSync(`${root}dist/index.js`)).toBe(true);
    expect(existsSync(`${root}dist/lua/publish.lua`)).toBe(true);
  });

  it('can be required from CommonJS (Node 20.19+ require(esm))', async () => {
    const script = `
      const sluice = require('sluice');
      const ok = typeof sluice.Sluice.connect === 'function' && sluice.matchTopic('a.#', 'a.b.c');
      process.stdout.write(ok ? 'ok' : 'missing exports');
    `;
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: root });
    expect(stdout).toBe('ok');
  });

  it('can be imported from ESM with its named exports', async () => {
    const script = `
      import { Sluice, SluiceError, matchHeaders } from 'sluice';
      const ok = typeof Sluice.connect === 'function' && typeof SluiceError === 'function'
        && matchHeaders({ 'x-match': 'all', a: 1 }, { a: 1 });
      process.stdout.write(ok ? 'ok' : 'missing exports');
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
    });
    expect(stdout).toBe('ok');
  });

  it.each([
    ['sluice/postgres', ['PostgresInbox', 'migrate', 'migrationSql', 'purgeExpired']],
    ['sluice/prometheus', ['prometheusMetrics']],
  ])('exports %s to ESM and CommonJS', async (subpath, names) => {
    const list = names.join(', ');
    const check = names.map((name) => `typeof ${name} === 'function'`).join(' && ');
    const esm = `
      import { ${list} } from '${subpath}';
      process.stdout.write(${check} ? 'ok' : 'missing exports');
    `;
    const cjs = `
      const { ${list} } = require('${subpath}');
      process.stdout.write(${check} ? 'ok' : 'missing exports');
    `;
    for (const args of [
      ['--input-type=module', '-e', esm],
      ['-e', cjs],
    ]) {
      const { stdout } = await run(process.execPath, args, { cwd: root });
      expect(stdout).toBe('ok');
    }
  });

  it.each([
    ['dist/index.d.ts', ['ioredis']],
    ['dist/postgres/index.d.ts', ['ioredis', 'pg']],
    ['dist/prometheus/index.d.ts', ['ioredis', 'prom-client']],
  ])(
    'has declarations (%s) that need no optional peer dependency but their own',
    (entry, expected) => {
      // A user without @opentelemetry/api (optional) must be able to type-check against sluice.
      expect([...declarationImports(entry)].sort()).toEqual(expected);
    },
  );

  it('ships source maps that need no file outside the package (sources inlined)', () => {
    const maps = readdirSync(`${root}dist`, { recursive: true, encoding: 'utf8' }).filter((file) =>
      file.endsWith('.js.map'),
    );
    expect(maps.length).toBeGreaterThan(10);
    for (const file of maps) {
      const map = JSON.parse(readFileSync(`${root}dist/${file}`, 'utf8')) as {
        sources: string[];
        sourcesContent?: (string | null)[];
      };
      expect(map.sourcesContent?.length, file).toBe(map.sources.length);
      expect(
        map.sourcesContent?.every((content) => typeof content === 'string'),
        file,
      ).toBe(true);
    }
  });

  it('carries its license and says what it is', () => {
    const manifest = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
      license: string;
      files: string[];
      keywords: string[];
    };
    expect(manifest.license).toBe('MIT');
    expect(readFileSync(`${root}LICENSE`, 'utf8')).toContain('MIT License');
    expect(manifest.files).toContain('LICENSE');
    expect(manifest.keywords).toContain('rabbitmq');
  });

  it('ships the dashboard: its server and its built front end, inside dist/', () => {
    const manifest = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { files: string[] };
    expect(manifest.files).toContain('dist');
    expect(existsSync(`${root}dist/dashboard/server.js`)).toBe(true);
    const index = readFileSync(`${root}dist/dashboard/app/index.html`, 'utf8');
    // Built by Vite: the module script is a hashed asset, addressed relative to the page.
    const script = /<script type="module" crossorigin src="\.\/(assets\/[^"]+\.js)">/u.exec(
      index,
    )?.[1];
    expect(script).toBeDefined();
    expect(existsSync(`${root}dist/dashboard/app/${script}`)).toBe(true);
  });
});
