/**
 * Instrumentation events of a client: what a publish, a lost reply and an outage look like to
 * a listener (DESIGN.md section 9), on a real server and a real TCP proxy.
 */
import { describe, expect, it } from 'vitest';
import {
  Sluice,
  UnroutableError,
  type ConnectionEvent,
  type PublishConfirmedEvent,
  type PublishFailedEvent,
  type PublishRetriedEvent,
} from '../../src/index.js';
import { connectRedis, startExtraRedis, testNamespace, waitFor } from '../support/index.js';
import { startProxy } from '../support/proxy.js';
import { useSluice } from '../support/sluice.js';

describe('client events', () => {
  it('report confirmed and failed publishes with what they were', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    const confirmed: PublishConfirmedEvent[] = [];
    const failed: PublishFailedEvent[] = [];
    sluice.on('publish.confirmed', (event) => confirmed.push(event));
    sluice.on('publish.failed', (event) => failed.push(event));
    const confirm = await sluice.publish('', 'jobs', { n: 1 }, { messageId: 'm1' });
    await expect(sluice.publish('', 'nowhere', 1, { mandatory: true })).rejects.toBeInstanceOf(
      UnroutableError,
    );
    expect(confirmed).toEqual([
      {
        messageId: 'm1',
        exchange: '',
        routingKey: 'jobs',
        targets: confirm.targets,
        duplicate: false,
        durationMs: expect.any(Number) as number,
      },
    ]);
    expect(confirmed[0]?.durationMs).toBeGreaterThan(0);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ exchange: '', routingKey: 'nowhere' });
    expect(failed[0]?.error).toBeInstanceOf(UnroutableError);
  });

  it('keep publishing when a listener throws, and stop after off', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    let calls = 0;
    const throwing = (): void => {
      calls++;
      throw new Error('listener bug');
    };
    const seen: string[] = [];
    sluice.on('publish.confirmed', throwing);
    sluice.on('publish.confirmed', (event) => seen.push(event.messageId));
    await sluice.publish('', 'jobs', 1, { messageId: 'a' });
    sluice.off('publish.confirmed', throwing);
    await sluice.publish('', 'jobs', 2, { messageId: 'b' });
    expect(calls).toBe(1);
    expect(seen).toEqual(['a', 'b']);
  });

  it('report a publish call retried after a transient refusal (BUSY)', async () => {
    const server = await startExtraRedis(['--busy-reply-threshold', '20']);
    const sluice = await Sluice.connect({ url: server.url, namespace: testNamespace() });
    const blocker = connectRedis({}, server.url);
    const probe = connectRedis({ maxRetriesPerRequest: 0 }, server.url);
    try {
      await sluice.declareQueue('jobs');
      const retried: PublishRetriedEvent[] = [];
      sluice.on('publish.retried', (event) => retried.push(event));
      // A script that keeps the server busy for 700 ms: other clients get -BUSY meanwhile.
      const busy = blocker.eval(BUSY_LOOP, 0, 700_000).then(
        () => 'done',
        (error: unknown) => error,
      );
      await waitFor(
        async () => (await probe.ping().catch((error: Error) => error.message)).startsWith('BUSY'),
        { description: 'the server answering BUSY' },
      );
      const confirm = await sluice.publish('', 'jobs', 1, { messageId: 'r1' });
      expect(await busy).toBe('done');
      expect(confirm.targets).toHaveLength(1);
      expect(retried.length).toBeGreaterThan(0);
      expect(retried[0]).toMatchObject({ messageIds: ['r1'], attempt: 1 });
      expect(String(retried[0]?.error)).toContain('BUSY');
    } finally {
      await sluice.close();
    }
  });

  it('report the loss of the connection and its return, once each', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const sluice = await Sluice.connect({ url: proxy.url, namespace: testNamespace() });
    try {
      const lost: ConnectionEvent[] = [];
      const restored: ConnectionEvent[] = [];
      sluice.on('connection.lost', (event) => lost.push(event));
      sluice.on('connection.restored', (event) => restored.push(event));
      proxy.resetAll();
      await waitFor(() => restored.length === 1, { description: 'connection.restored' });
      await sluice.declareQueue('after');
      expect(lost).toHaveLength(1);
      expect((restored[0] as ConnectionEvent).time).toBeGreaterThanOrEqual(
        (lost[0] as ConnectionEvent).time,
      );
    } finally {
      await sluice.close();
      await proxy.close();
    }
  });
});

/** Keeps the server in a script for ARGV[1] microseconds. */
const BUSY_LOOP = `
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) >= tonumber(ARGV[1])
return 1`;
