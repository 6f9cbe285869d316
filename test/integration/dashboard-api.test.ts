/**
 * The dashboard's HTTP API as `sluice dashboard` serves it (the built command in a child
 * process), on every server kind of the integration projects: what it answers, and what it
 * refuses with which status. The browser test drives the pages on top of it.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startDashboardProcess } from '../support/cli.js';
import { waitFor } from '../support/index.js';
import { declareWorkWithDeadLetters, useSluice } from '../support/sluice.js';

const TOKEN = 'dashboard-api-test-token';

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * One request with Node's own client, which sends whatever `Host` header it is given (fetch
 * does not let a caller choose it).
 */
function send(
  url: URL,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, timeout: 10_000 },
      (incoming) => {
        let text = '';
        incoming.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        incoming.on('end', () => {
          const json = (incoming.headers['content-type'] ?? '').startsWith('application/json');
          resolve({ status: incoming.statusCode ?? 0, body: json ? JSON.parse(text) : text });
        });
      },
    );
    outgoing.once('error', reject);
    outgoing.once('timeout', () => outgoing.destroy(new Error('no answer within 10 s')));
    outgoing.end(options.body);
  });
}

describe('the dashboard API', () => {
  it('answers reads, and refuses what it must with the status that says why', async () => {
    const { sluice, namespace } = await useSluice();
    await declareWorkWithDeadLetters(sluice);
    // One dead letter in work.dlq (rejected in work), one ready message in work.
    await sluice.publish('orders', 'order.created', { n: 0 });
    for await (const msg of sluice.messages('work', { prefetch: 1 })) {
      await msg.reject();
      break;
    }
    await waitFor(async () => (await sluice.inspectQueue('work.dlq')).messages === 1);
    await sluice.publish('orders', 'order.created', { n: 1 });
    const { url } = await startDashboardProcess(namespace, ['--token', TOKEN]);
    const base = new URL(url);
    const at = (path: string): URL => new URL(path, base);

    const overview = await send(at('/api/overview'));
    expect(overview.status).toBe(200);
    expect(JSON.stringify(overview.body)).toContain('"work"');
    const work = await send(at('/api/queues/work'));
    expect(work.status).toBe(200);
    expect(work.body).toMatchObject({ info: { name: 'work', messages: 1 } });
    expect((await send(at('/'))).status).toBe(200);

    // DNS rebinding: a page of another site that resolves its own name to 127.0.0.1.
    const rebound = await send(at('/api/overview'), {
      headers: { host: `evil.example:${base.port}` },
    });
    expect(rebound.status).toBe(403);
    expect((await send(at('/'), { headers: { host: 'evil.example' } })).status).toBe(403);
    expect(
      (await send(at('/api/overview'), { headers: { host: `localhost:${base.port}` } })).status,
    ).toBe(200);

    expect((await send(at('/api/queues/%E0%A4%A'))).status).toBe(400);
    expect((await send(at('/api/queues/ghost'))).status).toBe(404);
    expect((await send(at('/api/nothing'))).status).toBe(404);
    expect((await send(at('/api/overview'), { method: 'DELETE' })).status).toBe(405);
    expect((await send(at('/'), { method: 'POST' })).status).toBe(405);

    const purge = at('/api/queues/work/purge');
    expect((await send(purge, { method: 'POST' })).status).toBe(401);
    expect(
      (
        await send(purge, {
          method: 'POST',
          headers: { 'x-sluice-token': 'wrong-token-of-length' },
        })
      ).status,
    ).toBe(401);
    // The replay's options come in its body: too large or not JSON, nothing is done.
    const replay = at('/api/queues/work.dlq/replay');
    const tooLarge = await send(replay, {
      method: 'POST',
      headers: { 'x-sluice-token': TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ padding: 'x'.repeat(70 * 1024) }),
    });
    expect(tooLarge.status).toBe(413);
    expect((await sluice.inspectQueue('work.dlq')).messages).toBe(1);
    const notJson = await send(replay, {
      method: 'POST',
      headers: { 'x-sluice-token': TOKEN },
      body: '{',
    });
    expect(notJson.status).toBe(400);
    expect((await sluice.inspectQueue('work.dlq')).messages).toBe(1);
    expect((await sluice.inspectQueue('work')).messages).toBe(1);

    // The same replay with a good body goes ahead: the refusals above were the bodies'.
    const replayed = await send(replay, { method: 'POST', headers: { 'x-sluice-token': TOKEN } });
    expect(replayed).toMatchObject({ status: 200, body: { replayed: 1 } });
    expect((await sluice.inspectQueue('work.dlq')).messages).toBe(0);
    expect((await sluice.inspectQueue('work')).messages).toBe(2);

    const purged = await send(purge, { method: 'POST', headers: { 'x-sluice-token': TOKEN } });
    expect(purged).toMatchObject({ status: 200, body: { purged: 2 } });
    expect((await sluice.inspectQueue('work')).messages).toBe(0);
  });

  it('answers for a host name the operator allowed with --allow-host', async () => {
    const { namespace } = await useSluice();
    const { url } = await startDashboardProcess(namespace, [
      '--read-only',
      '--allow-host',
      'Sluice.Internal',
    ]);
    const overview = new URL('/api/overview', url);
    expect((await send(overview, { headers: { host: 'sluice.internal' } })).status).toBe(200);
    expect((await send(overview, { headers: { host: 'other.internal' } })).status).toBe(403);
  });
});
