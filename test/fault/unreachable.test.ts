/**
 * Every confirm settles within `confirmTimeoutMs` when Redis does not answer (frozen, behind a
 * black hole, dead), and publishing resumes when it answers again; a failover's READONLY
 * replies are retried until a master takes the write.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfirmTimeoutError, Sluice, type PublishConfirm } from '../../src/index.js';
import { countEach, freeze, queueMessageIds, startReplica, thaw } from '../support/faults.js';
import {
  connectRedis,
  startExtraRedis,
  testNamespace,
  waitFor,
  type RedisServerHandle,
} from '../support/index.js';
import { startProxy } from '../support/proxy.js';

const CONFIRM_TIMEOUT_MS = 1000;
/** Timers and a loaded CI machine: how late a rejection may come after its deadline. */
const SLACK_MS = 1000;

/** A client with queue `q` declared and its topology cached (by a first publish). */
async function connect(url: string, namespace = testNamespace()): Promise<Sluice> {
  const sluice = await Sluice.connect({ url, namespace, confirmTimeoutMs: CONFIRM_TIMEOUT_MS });
  onTestFinished(() => sluice.close());
  await sluice.declareQueue('q');
  await sluice.publish('', 'q', 'first', { messageId: 'first' });
  return sluice;
}

/** Publishes `ids` at once; resolves with each outcome and how long it took to settle. */
async function publishAll(
  sluice: Sluice,
  ids: readonly string[],
): Promise<{ outcome: PromiseSettledResult<PublishConfirm>; elapsedMs: number }[]> {
  const startedAt = Date.now();
  return Promise.all(
    ids.map(async (messageId) => {
      const [outcome] = await Promise.allSettled([
        sluice.publish('', 'q', messageId, { messageId }),
      ]);
      return {
        outcome: outcome,
        elapsedMs: Date.now() - startedAt,
      };
    }),
  );
}

/** Every publish rejected with ConfirmTimeoutError (may be applied) by the deadline. */
function expectTimedOut(results: Awaited<ReturnType<typeof publishAll>>): void {
  for (const { outcome, elapsedMs } of results) {
    expect(outcome.status).toBe('rejected');
    const reason = (outcome as PromiseRejectedResult).reason as unknown;
    expect(reason).toBeInstanceOf(ConfirmTimeoutError);
    expect(reason).toMatchObject({ code: 'TIMEOUT', mayBeApplied: true, applied: false });
    expect(elapsedMs).toBeGreaterThanOrEqual(CONFIRM_TIMEOUT_MS - 10);
    expect(elapsedMs).toBeLessThan(CONFIRM_TIMEOUT_MS + SLACK_MS);
  }
}

/** Publishing the timed-out messages again stores each one exactly once. */
async function expectOnceEach(
  sluice: Sluice,
  server: RedisServerHandle,
  ids: readonly string[],
): Promise<void> {
  for (const messageId of ids) await sluice.publish('', 'q', messageId, { messageId });
  const stored = await queueMessageIds(connectRedis({}, server.url), sluice.namespace, 'q');
  const counts = countEach(stored);
  for (const messageId of ids) expect(counts.get(messageId)).toBe(1);
}

const IDS = Array.from({ length: 20 }, (_, i) => `m${i}`);

describe('a confirm when Redis does not answer', () => {
  it('times out while the server is frozen (SIGSTOP); publishing resumes after SIGCONT', async () => {
    const server = await startExtraRedis();
    const sluice = await connect(server.url);
    // A client that has not read the topology yet never gets as far as the write.
    const cold = await Sluice.connect({
      url: server.url,
      namespace: sluice.namespace,
      confirmTimeoutMs: CONFIRM_TIMEOUT_MS,
    });
    onTestFinished(() => cold.close());
    await freeze(server);
    onTestFinished(() => thaw(server));

    const [results, coldError] = await Promise.all([
      publishAll(sluice, IDS),
      cold.publish('', 'q', 'cold').catch((error: unknown) => error),
    ]);
    expectTimedOut(results);
    expect(coldError).toMatchObject({ code: 'TIMEOUT', mayBeApplied: false });

    await thaw(server);
    await sluice.publish('', 'q', 'after', { messageId: 'after' });
    await expectOnceEach(sluice, server, IDS);
  });

  it('times out while the network black-holes traffic; publishing resumes when it heals', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const sluice = await connect(proxy.url);
    proxy.blackhole(true);
    onTestFinished(() => proxy.blackhole(false));

    expectTimedOut(await publishAll(sluice, IDS));

    proxy.blackhole(false);
    await sluice.publish('', 'q', 'after', { messageId: 'after' });
    await expectOnceEach(sluice, server, IDS);
  });

  it('settles in-flight publishes when the server dies for good', async () => {
    const server = await startExtraRedis();
    const sluice = await connect(server.url);
    const pending = publishAll(sluice, IDS);
    await server.kill('SIGKILL');
    for (const { outcome, elapsedMs } of await pending) {
      // A publish answered before the kill resolved; the others time out by the deadline.
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(ConfirmTimeoutError);
        expect(elapsedMs).toBeLessThan(CONFIRM_TIMEOUT_MS + SLACK_MS);
      }
    }
  });

  it('confirms through added latency, one call per tick', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const sluice = await connect(proxy.url);
    proxy.setLatency(100);
    const startedAt = Date.now();
    const results = await publishAll(sluice, IDS);
    expect(results.every(({ outcome }) => outcome.status === 'fulfilled')).toBe(true);
    // One round trip (2 × 100 ms) for all of them, not one each.
    expect(Date.now() - startedAt).toBeLessThan(CONFIRM_TIMEOUT_MS);
  });
});

describe('a failover', () => {
  it('retries READONLY replies until the replica it reaches is promoted', async () => {
    const primary = await startExtraRedis();
    const replica = await startReplica(primary);
    const namespace = testNamespace();
    await connect(primary.url, namespace);
    const replicaClient = connectRedis({}, replica.url);
    await waitFor(
      async () => (await replicaClient.exists(`${namespace}:{${namespace}}:topology:queues`)) === 1,
    );

    // Connected to the replica, as a client is during a failover until Sentinel says otherwise.
    const onReplica = await Sluice.connect({ url: replica.url, namespace, confirmTimeoutMs: 5000 });
    onTestFinished(() => onReplica.close());
    const publish = onReplica.publish('', 'q', 'second', { messageId: 'second' });
    await waitFor(
      async () => /errorstat_READONLY:count=\d+/u.test(await replicaClient.info('errorstats')),
      {
        description: 'a READONLY reply',
      },
    );
    await replicaClient.replicaof('NO', 'ONE');

    const confirm = await publish;
    expect(confirm.duplicate).toBe(false);
    expect(await queueMessageIds(replicaClient, namespace, 'q')).toEqual(['first', 'second']);
  });
});
