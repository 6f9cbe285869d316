/** `durability: 'replicated'`: WAIT with group commit, against a real replica. */
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfirmTimeoutError, Sluice, type ConnectOptions } from '../../src/index.js';
import {
  commandCalls,
  freeze,
  queueMessageIds,
  startReplica,
  thaw,
  waitForOnlineReplicas,
} from '../support/faults.js';
import {
  connectRedis,
  startExtraRedis,
  testNamespace,
  type RedisServerHandle,
} from '../support/index.js';
import { streamKey } from '../support/sluice.js';

const DURABILITY_TIMEOUT_MS = 300;

async function connect(
  primary: RedisServerHandle,
  namespace: string,
  options: Partial<ConnectOptions> = {},
): Promise<Sluice> {
  const sluice = await Sluice.connect({
    url: primary.url,
    namespace,
    durability: 'replicated',
    durabilityTimeoutMs: DURABILITY_TIMEOUT_MS,
    ...options,
  });
  onTestFinished(() => sluice.close());
  return sluice;
}

/** A primary with one replica, and a replicated client with queue `q` and a warm topology. */
async function setUp(): Promise<{
  primary: RedisServerHandle;
  replica: RedisServerHandle;
  namespace: string;
  sluice: Sluice;
}> {
  const primary = await startExtraRedis();
  const replica = await startReplica(primary);
  const namespace = testNamespace();
  const sluice = await connect(primary, namespace);
  await sluice.declareQueue('q');
  await sluice.publish('', 'q', 'warm-up');
  return { primary, replica, namespace, sluice };
}

describe("durability 'replicated'", () => {
  it('confirms once the replica has the messages; concurrent publishes share WAITs', async () => {
    const { primary, replica, namespace, sluice } = await setUp();
    const admin = connectRedis({}, primary.url);
    const waitsBefore = await commandCalls(admin, 'wait');

    const confirms = await Promise.all(
      Array.from({ length: 500 }, (_, i) => sluice.publish('', 'q', i, { messageId: `m${i}` })),
    );

    expect(confirms.every((confirm) => !confirm.duplicate)).toBe(true);
    // WAIT answered after the replica processed the writes: they are there now, no polling.
    const onReplica = await queueMessageIds(connectRedis({}, replica.url), namespace, 'q');
    expect(onReplica).toHaveLength(501);
    const waits = (await commandCalls(admin, 'wait')) - waitsBefore;
    expect(waits).toBeGreaterThan(0);
    expect(waits).toBeLessThan(10);
  });

  it('rejects with ConfirmTimeoutError after durabilityTimeoutMs once the replica is stopped', async () => {
    const { primary, replica, namespace, sluice } = await setUp();

    await replica.stop();
    await waitForOnlineReplicas(connectRedis({}, primary.url), 0);
    const startedAt = Date.now();
    const error: unknown = await sluice
      .publish('', 'q', 'after', { messageId: 'lonely' })
      .catch((e: unknown) => e);
    const elapsedMs = Date.now() - startedAt;

    expect(error).toBeInstanceOf(ConfirmTimeoutError);
    expect(error).toMatchObject({ messageId: 'lonely', applied: true, mayBeApplied: true });
    expect(elapsedMs).toBeGreaterThanOrEqual(DURABILITY_TIMEOUT_MS - 10);
    expect(elapsedMs).toBeLessThan(DURABILITY_TIMEOUT_MS + 2000);

    // Once a replica is back, publishing the same message again confirms the stored copy.
    await replica.dispose();
    await startReplica(primary);
    const again = await sluice.publish('', 'q', 'after', { messageId: 'lonely' });
    expect(again.duplicate).toBe(true);
    expect(await queueMessageIds(connectRedis({}, primary.url), namespace, 'q')).toHaveLength(2);
  });

  it('does not confirm a duplicate, found by another connection, that the replica lacks', async () => {
    const { primary, replica, namespace, sluice: first } = await setUp();

    await freeze(replica);
    onTestFinished(() => thaw(replica));
    await expect(first.publish('', 'q', 1, { messageId: 'm' })).rejects.toBeInstanceOf(
      ConfirmTimeoutError,
    );
    // A fresh connection has written nothing: a bare WAIT there would answer at once. The
    // duplicate's call writes, so its WAIT covers the first copy and times out as it should.
    const second = await connect(primary, namespace);
    await expect(second.publish('', 'q', 1, { messageId: 'm' })).rejects.toMatchObject({
      code: 'TIMEOUT',
      applied: true,
    });

    await thaw(replica);
    const confirm = await second.publish('', 'q', 1, { messageId: 'm' });
    expect(confirm.duplicate).toBe(true);
    const onReplica = await queueMessageIds(connectRedis({}, replica.url), namespace, 'q');
    expect(onReplica).toContain('m');
    expect(await connectRedis({}, replica.url).xlen(streamKey(namespace, 'q'))).toBe(2);
  });
});
