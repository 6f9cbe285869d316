import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

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
});
