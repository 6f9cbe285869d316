/**
 * A server with an append-only file is SIGKILLed while publishes are in flight, stays down long
 * enough for some confirms to time out, and restarts: no confirmed message is lost, and
 * publishing the unconfirmed ones again stores each exactly once.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  ConfirmTimeoutError,
  Sluice,
  UnsupportedError,
  type ConnectOptions,
  type PublishConfirm,
} from '../../src/index.js';
import {
  commandCalls,
  countEach,
  queueEntries,
  startAofRedis,
  type AppendFsync,
} from '../support/faults.js';
import {
  connectRedis,
  redisServer,
  testNamespace,
  waitFor,
  type RedisServerHandle,
} from '../support/index.js';
import { streamKey } from '../support/sluice.js';

const MESSAGES = 3000;
const IN_FLIGHT = 64;
const CONFIRM_TIMEOUT_MS = 1000;

interface LoadOutcome {
  readonly confirmed: Map<string, PublishConfirm>;
  readonly unconfirmed: string[];
}

/** A server with an append-only file and a client with queue `q`. */
async function setUp(
  appendfsync: AppendFsync,
  options: Partial<ConnectOptions> = {},
): Promise<{ server: RedisServerHandle; namespace: string; sluice: Sluice }> {
  const server = await startAofRedis(appendfsync);
  const namespace = testNamespace();
  const sluice = await Sluice.connect({
    url: server.url,
    namespace,
    confirmTimeoutMs: CONFIRM_TIMEOUT_MS,
    ...options,
  });
  onTestFinished(() => sluice.close());
  await sluice.declareQueue('q');
  return { server, namespace, sluice };
}

/**
 * Publishes MESSAGES messages with IN_FLIGHT in flight; once a third is confirmed, SIGKILLs the
 * server and restarts it after some publishes have timed out. Resolves once every confirm has
 * settled.
 */
async function publishThroughCrash(
  sluice: Sluice,
  server: RedisServerHandle,
): Promise<LoadOutcome> {
  const confirmed = new Map<string, PublishConfirm>();
  const unconfirmed: string[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < MESSAGES) {
      const messageId = `m${next++}`;
      try {
        confirmed.set(messageId, await sluice.publish('', 'q', { messageId }, { messageId }));
      } catch (error) {
        expect(error).toBeInstanceOf(ConfirmTimeoutError);
        expect(error).toMatchObject({ messageId, mayBeApplied: true });
        unconfirmed.push(messageId);
      }
    }
  };
  const crash = async (): Promise<void> => {
    await waitFor(() => confirmed.size >= MESSAGES / 3, { timeoutMs: 30_000 });
    await server.kill('SIGKILL');
    await waitFor(() => unconfirmed.length > 0, { timeoutMs: 10_000 });
    await server.restart();
  };
  await Promise.all([crash(), ...Array.from({ length: IN_FLIGHT }, lane)]);
  return { confirmed, unconfirmed };
}

/** Every confirmed message is in the queue, at its confirmed stream id, exactly once. */
async function expectNoConfirmedLoss(
  server: RedisServerHandle,
  namespace: string,
  { confirmed }: LoadOutcome,
): Promise<Map<string, number>> {
  const entries = await queueEntries(connectRedis({}, server.url), namespace, 'q');
  const byStreamId = new Map(entries);
  for (const [messageId, confirm] of confirmed) {
    expect(byStreamId.get(confirm.targets[0]?.streamId ?? '')).toBe(messageId);
  }
  const counts = countEach(entries.map(([, messageId]) => messageId));
  expect([...counts.values()].every((count) => count === 1)).toBe(true);
  return counts;
}

describe('a SIGKILLed server with an append-only file', () => {
  it(
    'keeps every confirmed message; publishing the unconfirmed again stores each once',
    { timeout: 90_000 },
    async () => {
      const { server, namespace, sluice } = await setUp('always');

      const outcome = await publishThroughCrash(sluice, server);
      expect(outcome.confirmed.size + outcome.unconfirmed.length).toBe(MESSAGES);
      expect(outcome.unconfirmed.length).toBeGreaterThan(0);
      await expectNoConfirmedLoss(server, namespace, outcome);

      // Some unconfirmed publishes reached the server before the crash or after the restart
      // (ioredis sends what it queued); publishing them again finds those copies.
      for (const messageId of outcome.unconfirmed) {
        await sluice.publish('', 'q', { messageId }, { messageId });
      }
      const counts = await expectNoConfirmedLoss(server, namespace, outcome);
      expect(counts.size).toBe(MESSAGES);
    },
  );
});

describe("durability 'fsynced'", () => {
  if (redisServer().kind === 'redis' && redisServer().version.startsWith('7.0')) {
    it('is refused at connect with UnsupportedError on Redis 7.0 (no WAITAOF)', async () => {
      const server = await startAofRedis('everysec');
      await expect(
        Sluice.connect({ url: server.url, namespace: testNamespace(), durability: 'fsynced' }),
      ).rejects.toBeInstanceOf(UnsupportedError);
    });
    return;
  }

  it(
    'confirms after WAITAOF and loses no confirmed message to a SIGKILL (appendfsync everysec)',
    { timeout: 90_000 },
    async () => {
      const { server, namespace, sluice } = await setUp('everysec', { durability: 'fsynced' });
      const admin = connectRedis({}, server.url);
      const warmUp = await Promise.all(
        Array.from({ length: 200 }, (_, i) => sluice.publish('', 'q', i)),
      );
      expect(warmUp.every((confirm) => !confirm.duplicate)).toBe(true);
      // Group commit: the 200 publishes of one tick share WAITAOF calls.
      const waits = await commandCalls(admin, 'waitaof');
      expect(waits).toBeGreaterThan(0);
      expect(waits).toBeLessThan(10);
      await admin.xtrim(streamKey(namespace, 'q'), 'MAXLEN', 0);

      const outcome = await publishThroughCrash(sluice, server);
      await expectNoConfirmedLoss(server, namespace, outcome);
    },
  );
});
