import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../scripts/local-redis.js';
import { startSentinelSet, type LocalSentinelSet } from '../support/sentinel.js';

/**
 * Down after 1 s, then a vote among the sentinels and the promotion; a split vote is tried
 * again after twice the failover-timeout (6 s).
 */
const FAILOVER_MS = 30_000;

describe('a local Redis Sentinel set', () => {
  let set: LocalSentinelSet | undefined;
  let client: Redis | undefined;
  let startMs = 0;

  beforeAll(async () => {
    const startedAt = Date.now();
    set = await startSentinelSet({
      replicas: 2,
      sentinels: 3,
      name: 'mymaster',
      binary: inject('redisServerBinary'),
    });
    startMs = Date.now() - startedAt;
    client = new Redis({ sentinels: [...set.sentinels], name: set.name });
    client.on('error', () => undefined);
  });

  afterAll(async () => {
    client?.disconnect();
    await set?.stop();
  });

  function started(): { set: LocalSentinelSet; client: Redis } {
    if (set === undefined || client === undefined) throw new Error('sentinel set not started');
    return { set, client };
  }

  /** The port of the server `client` is connected to now. */
  async function connectedPort(redis: Redis): Promise<number> {
    return Number(/tcp_port:(\d+)/u.exec(await redis.info('server'))?.[1]);
  }

  /** Writes `key` and waits until both replicas have it. */
  async function writeReplicated(redis: Redis, key: string, value: string): Promise<void> {
    await redis.set(key, value);
    expect(Number(await redis.call('WAIT', 2, 5000))).toBe(2);
  }

  it('reports its primary to an ioredis client given the sentinels and the name', async ({
    annotate,
  }) => {
    const { set, client } = started();
    await annotate(`primary, 2 replicas and 3 sentinels healthy in ${startMs} ms`);
    expect(await set.currentPrimary()).toEqual({ host: '127.0.0.1', port: set.primary.port });
    expect(set.replicas).toHaveLength(2);
    await writeReplicated(client, 'kit:start', 'one');
    expect(await connectedPort(client)).toBe(set.primary.port);
  });

  it('promotes a replica on SENTINEL FAILOVER, and the client follows it', async ({ annotate }) => {
    const { set, client } = started();
    await writeReplicated(client, 'kit:manual', 'kept');
    const before = set.primary;
    const startedAt = Date.now();
    const promoted = await set.failover();
    await annotate(`SENTINEL FAILOVER done, replicas reattached, in ${Date.now() - startedAt} ms`);
    expect(promoted).not.toBe(before);
    expect(await set.currentPrimary()).toEqual({ host: '127.0.0.1', port: promoted.port });
    await waitFor(async () => (await client.set('kit:after-manual', 'written')) === 'OK', {
      timeoutMs: FAILOVER_MS,
      description: 'a write through the sentinel client after the failover',
    });
    expect(await connectedPort(client)).toBe(promoted.port);
    expect(await client.get('kit:manual')).toBe('kept');
  });

  it('fails a SIGKILLed primary over to a replica, and the client reconnects to it', async ({
    annotate,
  }) => {
    const { set, client } = started();
    await writeReplicated(client, 'kit:crash', 'survives');
    const killed = set.primary;
    const killedAt = Date.now();
    const promoted = await set.killPrimary();
    const failoverMs = Date.now() - killedAt;
    await annotate(`sentinels failed the SIGKILLed primary over in ${failoverMs} ms`);
    expect(failoverMs).toBeLessThan(FAILOVER_MS);
    expect(promoted).not.toBe(killed);
    expect(await waitFor(() => client.get('kit:crash'), { timeoutMs: FAILOVER_MS })).toBe(
      'survives',
    );
    expect(await connectedPort(client)).toBe(promoted.port);
    await set.restart(killed);
    expect(set.replicas).toContain(killed);
  });
});
