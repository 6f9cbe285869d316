/**
 * An application without `@opentelemetry/api` (an optional peer dependency; this repository
 * has it installed): the built package in a child process whose module resolution refuses the
 * package, as a missing one is refused. sluice must publish and consume as ever, make no trace
 * context of its own, and carry one the application gives.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { redisUrl } from '../support/index.js';
import { useSluice } from '../support/sluice.js';

const execute = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const REFUSED = 'refused @opentelemetry/api';

/** Resolution hooks that make `@opentelemetry/api` missing, and say so once per attempt. */
const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier === '@opentelemetry/api' || specifier.startsWith('@opentelemetry/api/')) {
    console.error('${REFUSED}');
    const error = new Error("Cannot find package '" + specifier + "'");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`;
const register = `import { register } from 'node:module';
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;

/** Publishes one message without and one with a trace context, consumes both, prints them. */
const application = `
import { Sluice } from 'sluice';
const sluice = await Sluice.connect({ url: process.env.URL, namespace: process.env.NAMESPACE });
await sluice.declareQueue('jobs');
await sluice.publish('', 'jobs', { n: 1 });
await sluice.publish('', 'jobs', { n: 2 }, {
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'vendor=value',
});
const seen = [];
const consumer = await sluice.consume('jobs', (msg) => {
  seen.push({ body: msg.body, traceparent: msg.traceparent ?? null, tracestate: msg.tracestate ?? null });
});
const deadline = Date.now() + 10_000;
while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
await consumer.close();
await sluice.close();
console.log(JSON.stringify(seen));
`;

describe('without @opentelemetry/api', () => {
  it('publishes and consumes with no trace context of its own, and carries a given one', async () => {
    const { namespace } = await useSluice();
    const { stdout, stderr } = await execute(
      process.execPath,
      [
        '--import',
        `data:text/javascript,${encodeURIComponent(register)}`,
        '--input-type=module',
        '-e',
        application,
      ],
      {
        cwd: root,
        env: { ...process.env, URL: redisUrl(), NAMESPACE: namespace },
        timeout: 30_000,
      },
    );
    // sluice did try to load it (once, at its first connect) and went on without it.
    expect(stderr.split('\n').filter((line) => line === REFUSED)).toHaveLength(1);
    expect(JSON.parse(stdout)).toEqual([
      { body: { n: 1 }, traceparent: null, tracestate: null },
      {
        body: { n: 2 },
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'vendor=value',
      },
    ]);
  });
});
