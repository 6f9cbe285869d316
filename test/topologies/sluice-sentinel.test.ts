/**
 * sluice on a Redis Sentinel set (issue E): the primary SIGKILLed while producers publish with
 * `replicated` confirms and consumers consume. What must hold: no confirmed message is lost,
 * consumption resumes within 10 s of the kill, and no consumer stays stalled.
 */
import { setTimeout as pause } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../scripts/local-redis.js';
import { Sluice, SluiceError, type Consumer, type Delivery } from '../../src/index.js';
import { startProxy } from '../support/proxy.js';
import { startSentinelSet, type LocalSentinelSet } from '../support/sentinel.js';

const QUEUE = 'orders';
const CONSUMERS = 3;
/** Publish loops running side by side, each awaiting its confirm before the next message. */
const PUBLISHERS = 4;
/** Between two publishes of a loop: keeps the load near 300 messages/s on a shared machine. */
const PUBLISH_PACE_MS = 10;
/**
 * Between two publishes of the probe, a producer confirming at `written`: unlike the loops, it
 * need not wait for a replica to follow the promoted one, so a message published after the
 * failover is there to be consumed as soon as the new primary takes writes.
 */
const PROBE_PACE_MS = 50;
/** The bound: from the kill to the first delivery of a message published after it. */
const RESUME_WITHIN_MS = 10_000;
/**
 * Bounds the waits on the Sentinels: down after 1 s, then a vote; a split vote is tried again
 * after twice the failover-timeout (see test/support/sentinel.ts).
 */
const FAILOVER_MS = 30_000;
/**
 * An entry whose delivery the dead primary replicated but whose ack it did not is pending on
 * the promoted replica for a consumer that has finished with it; this short visibility timeout
 * lets another consumer reclaim it well inside the test.
 */
const ACK_TIMEOUT_MS = 2000;
/** Latency of the slow Sentinels, each way: a lookup of the primary takes several times it. */
const SLOW_SENTINEL_MS = 150;

/** Every publish issued, its first attempt's time, and which were confirmed. */
interface PublishLog {
  readonly issuedAtMs: Map<string, number>;
  readonly confirmed: Set<string>;
  /** Attempts that failed during the failover and were made again under the same id. */
  retries: number;
  stop: boolean;
}

/**
 * One publish loop: publishes `<loop>-<n>` messages one after another until `log.stop`.
 * A publish that fails (it may have been cut off by the failover) is made again under the same
 * message id, as an application would: sluice's dedup window makes the retry safe, a copy the
 * first attempt stored is confirmed as a duplicate rather than written twice.
 */
async function publishLoop(
  producer: Sluice,
  loop: string,
  paceMs: number,
  log: PublishLog,
): Promise<void> {
  for (let n = 0; !log.stop; n++) {
    const messageId = `${loop}-${n}`;
    log.issuedAtMs.set(messageId, Date.now());
    // Until confirmed, or the test stops publishing: one left unconfirmed then fails its check.
    while (!log.stop) {
      try {
        await producer.publish('', QUEUE, { loop, n }, { messageId });
        log.confirmed.add(messageId);
        break;
      } catch (error) {
        // Typed and retriable (ConfirmTimeoutError, ConnectionError), never anything else.
        expect(error).toBeInstanceOf(SluiceError);
        expect((error as SluiceError).retriable).toBe(true);
        log.retries++;
      }
    }
    await pause(paceMs);
  }
}

/**
 * What the clients saw, in ms since `start`: connections lost and restored, publishes retried
 * by sluice or rejected, the first confirm of each producer after the failover. Annotated with the
 * outcome, so that a slow resumption says where the time went.
 */
class Timeline {
  readonly entries: string[] = [];
  start = Date.now();

  add(what: string): void {
    this.entries.push(`${Date.now() - this.start} ms ${what}`);
  }

  /** Records `client`'s connection events and its retried and rejected publishes, as `name`. */
  watch(name: string, client: Sluice): void {
    client.on('connection.lost', () => this.add(`${name}: connection lost`));
    client.on('connection.restored', () => this.add(`${name}: connection restored`));
    client.on('publish.retried', ({ attempt, error }) =>
      this.add(`${name}: attempt ${attempt} failed, retried: ${String(error)}`),
    );
    client.on('publish.failed', ({ messageId, error }) =>
      this.add(`${name}: ${messageId} rejected: ${String(error)}`),
    );
  }
}

describe('sluice on Redis Sentinel', () => {
  let set: LocalSentinelSet | undefined;
  const clients: Sluice[] = [];

  beforeAll(async () => {
    set = await startSentinelSet({ binary: inject('redisServerBinary') });
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((client) => client.close()));
    await set?.stop();
  });

  async function connect(
    sentinels: LocalSentinelSet,
    durability: 'replicated' | 'written' = 'replicated',
  ): Promise<Sluice> {
    const client = await Sluice.connect({
      sentinels: [...sentinels.sentinels],
      name: sentinels.name,
      namespace: 'failover',
      durability,
      ...(durability === 'replicated' ? { replicas: 1 } : {}),
    });
    clients.push(client);
    return client;
  }

  it('loses no confirmed message when the primary is SIGKILLed under load, resumes within 10 s, and stalls no consumer', async ({
    annotate,
  }) => {
    if (set === undefined) throw new Error('sentinel set not started');
    const sentinels = set;
    const admin = await connect(sentinels);
    await admin.declareQueue(QUEUE, { ackTimeoutMs: ACK_TIMEOUT_MS });
    const killedServer = sentinels.primary;
    const timeline = new Timeline();

    // When each message was first delivered, and to whom: every consumer's deliveries.
    const firstDeliveredAtMs = new Map<string, number>();
    const deliveredTo: string[][] = Array.from({ length: CONSUMERS }, () => []);
    const consumers: Consumer[] = [];
    for (let i = 0; i < CONSUMERS; i++) {
      const client = await connect(sentinels);
      timeline.watch(`consumer ${i}'s client`, client);
      const consumer = await client.consume(QUEUE, (message: Delivery) => {
        if (!firstDeliveredAtMs.has(message.messageId)) {
          firstDeliveredAtMs.set(message.messageId, Date.now());
        }
        deliveredTo[i]?.push(message.messageId);
      });
      consumer.on('connection.lost', () => timeline.add(`consumer ${i}: reading connection lost`));
      consumer.on('connection.restored', () =>
        timeline.add(`consumer ${i}: reading connection restored`),
      );
      consumers.push(consumer);
    }
    const producer = await connect(sentinels);
    const probe = await connect(sentinels, 'written');
    timeline.watch('producer', producer);
    timeline.watch('probe', probe);
    const newLog = (): PublishLog => ({
      issuedAtMs: new Map(),
      confirmed: new Set(),
      retries: 0,
      stop: false,
    });
    // The replicated publishes, whose confirms promise that a failover loses nothing, and the
    // probe's, whose `written` confirms do not (the promoted replica may lack the last ones).
    const log = newLog();
    const probeLog = newLog();
    const loops = [
      ...Array.from({ length: PUBLISHERS }, (_, loop) =>
        publishLoop(producer, `m-${loop}`, PUBLISH_PACE_MS, log),
      ),
      publishLoop(probe, 'probe', PROBE_PACE_MS, probeLog),
    ];
    let outcome = 'no kill yet';
    try {
      // Steady state first: confirms coming and every consumer busy.
      await waitFor(() => log.confirmed.size >= 100 && deliveredTo.every((ids) => ids.length > 0), {
        timeoutMs: 15_000,
        description: 'load running on every consumer',
      });

      const killedPort = sentinels.primary.port;
      const killedAtMs = Date.now();
      timeline.start = killedAtMs;
      const healthy = sentinels.killPrimary();
      // The failover as the Sentinels see it, not as sluice does.
      await waitFor(async () => (await sentinels.currentPrimary()).port !== killedPort, {
        timeoutMs: FAILOVER_MS,
        intervalMs: 50,
        description: 'sentinels reporting a promoted replica',
      });
      const failedOverAtMs = Date.now();
      timeline.add('sentinels report a promoted replica');
      /** Messages whose publish was first issued once the Sentinels had promoted a replica. */
      const publishedAfterFailover = (messageId: string): boolean =>
        (log.issuedAtMs.get(messageId) ?? probeLog.issuedAtMs.get(messageId) ?? 0) > failedOverAtMs;
      outcome = `sentinels promoted a replica ${failedOverAtMs - killedAtMs} ms after the kill`;
      for (const [name, client] of [
        ['producer', producer],
        ['probe', probe],
      ] as const) {
        const onConfirmed = ({ messageId }: { messageId: string }): void => {
          if (!publishedAfterFailover(messageId)) return;
          timeline.add(`${name}: first confirm of a publish issued after the failover`);
          client.off('publish.confirmed', onConfirmed);
        };
        client.on('publish.confirmed', onConfirmed);
      }

      const resumedAtMs = await waitFor(
        () =>
          [...firstDeliveredAtMs]
            .filter(([messageId]) => publishedAfterFailover(messageId))
            .map(([, atMs]) => atMs)
            .sort((a, b) => a - b)[0],
        { timeoutMs: FAILOVER_MS, intervalMs: 50, description: 'a delivery after the failover' },
      );
      outcome += `; first delivery of a message published after it at ${resumedAtMs - killedAtMs} ms`;
      expect(resumedAtMs - killedAtMs).toBeLessThan(RESUME_WITHIN_MS);

      // No consumer stalled: each one receives messages published after the failover.
      await waitFor(() => deliveredTo.every((ids) => ids.some(publishedAfterFailover)), {
        timeoutMs: FAILOVER_MS,
        description: 'every consumer receiving after the failover',
      });
      await healthy;
    } finally {
      log.stop = true;
      probeLog.stop = true;
      await Promise.all(loops);
      // Also when a wait above timed out: the timeline says where the time went.
      await annotate(`${outcome}; after the kill: ${timeline.entries.join('; ')}`);
    }

    // Every confirmed message is consumed, and nothing stays pending.
    const notConsumed = (): string[] =>
      [...log.confirmed].filter((messageId) => !firstDeliveredAtMs.has(messageId));
    // Polled for until every one has arrived; if some never do, the assertion names them.
    await waitFor(() => notConsumed().length === 0, { timeoutMs: 15_000 }).catch(() => undefined);
    expect(notConsumed()).toEqual([]);
    const settled = await waitFor(
      async () => {
        const info = await admin.inspectQueue(QUEUE);
        return info.messages === 0 && info.unacked === 0 && info;
      },
      { timeoutMs: 15_000, description: 'queue drained, nothing unacked' },
    );
    expect(settled).toMatchObject({ messages: 0, unacked: 0, delayed: 0 });
    await annotate(
      `${log.confirmed.size} confirmed, all consumed (${consumers.map((c) => c.stats.acked).join(' + ')} acks); ` +
        `${log.retries} publish attempts retried under their ids`,
    );
    expect(log.confirmed.size).toBe(log.issuedAtMs.size);
    // Back to two replicas, for the next test's failover.
    await sentinels.restart(killedServer);
  });

  it('keeps a client that was asking slow Sentinels for the primary when the failover was announced', async ({
    annotate,
  }) => {
    if (set === undefined) throw new Error('sentinel set not started');
    const sentinels = set;
    // Sentinels that answer slowly: a client reconnecting after the kill spends most of its
    // time asking them for the primary, which is when the +switch-master announcing the
    // failover reaches it (from the real Sentinels, which ioredis learns of and subscribes to).
    const proxies = await Promise.all(sentinels.sentinels.map(({ port }) => startProxy(port)));
    const client = await Sluice.connect({
      sentinels: proxies.map(({ port }) => ({ host: '127.0.0.1', port })),
      name: sentinels.name,
      namespace: 'slow-sentinels',
    });
    clients.push(client);
    await client.declareQueue(QUEUE);
    const received: string[] = [];
    await client.consume(QUEUE, (message: Delivery) => {
      received.push(message.messageId);
    });
    await client.publish('', QUEUE, 'before', { messageId: 'before' });
    await waitFor(() => received.includes('before'), { description: 'delivery before the kill' });
    for (const proxy of proxies) proxy.setLatency(SLOW_SENTINEL_MS);

    const killedAtMs = Date.now();
    const killed = sentinels.primary;
    const healthy = sentinels.killPrimary();
    // Tried again under the same id while the client reconnects; a client that had ended for
    // good would refuse every attempt with ClosedError until the deadline.
    await waitFor(() => client.publish('', QUEUE, 'after', { messageId: 'after' }), {
      timeoutMs: FAILOVER_MS,
      description: 'a publish after the failover',
    });
    await waitFor(() => received.includes('after'), {
      timeoutMs: FAILOVER_MS,
      description: 'the consumer receiving after the failover',
    });
    await annotate(`publish and delivery after the kill took ${Date.now() - killedAtMs} ms`);
    await healthy;
    await sentinels.restart(killed);
  });
});
