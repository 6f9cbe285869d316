/**
 * sluice on a Redis Cluster of 3 masters with a replica each (real processes), through the
 * faults of issue E: a master SIGKILLed under publish + consume load, and a slot of a queue's
 * keys resharded to another master under the same load. Publishes are `replicated` (a confirm
 * waits for WAIT on the master that took the write) and consumers idempotent (D1: the effect of
 * a message is a write recorded with `ctx.tx`, applied with the done marker and the ack).
 * Last, on 2 masters, a publish met halfway through a slot's migration: where it is written,
 * and where its WAIT goes.
 */
import { Cluster, Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { waitFor } from '../../scripts/local-redis.js';
import { Sluice, type PublishConfirm } from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import { hashSlot } from '../../src/keys/slot.js';
import { startCluster, type ClusterNode, type LocalCluster } from '../support/cluster.js';

const EXCHANGE = 'orders';
const QUEUE = 'orders.created';
/** Partitions of the queue: enough that, in this namespace, each master serves some. */
const PARTITIONS = 6;
/** Messages of one run; the fault comes once a third of them are confirmed. */
const MESSAGES = 2400;
/** Publishes in flight at once. */
const PUBLISH_WINDOW = 24;
/** Partition keys: message `i` has key `key-<i mod KEYS>`. */
const KEYS = 60;
/**
 * Visibility timeout of the queue: a delivery whose ack was lost with a master (its reply, or
 * the ack itself if it had not reached the replica yet) is delivered again after this long.
 */
const ACK_TIMEOUT_MS = 2000;
/** The longest the run may take to publish and consume everything, the fault included. */
const SETTLE_MS = 30_000;

/** The body of message `i`. */
interface Order {
  readonly index: number;
}

interface Setup {
  readonly cluster: LocalCluster;
  readonly keys: Keyspace;
  readonly producer: Sluice;
  readonly consumer: Sluice;
  /** A plain Cluster client, to read the effects. */
  readonly reader: Cluster;
  /** The master of each partition at the start. */
  readonly masterOfPartition: readonly ClusterNode[];
}

/** What one load run saw. */
interface LoadResult {
  /** The confirm of every message, by index. */
  readonly confirms: readonly PublishConfirm[];
  /** Publishes that failed and were tried again under the same message id. */
  readonly republished: number;
  /** Messages confirmed when the fault began, and those whose publish began after it ended. */
  readonly confirmedAtFault: number;
  readonly publishedAfterFault: readonly number[];
}

function messageId(index: number): string {
  return `order-${index}`;
}

/**
 * A cluster of `masters` masters with a replica each, and a plain Cluster client on it (to read
 * effects and the slot map); both stopped after the test.
 */
async function clusterWithReader(
  masters: number,
): Promise<{ cluster: LocalCluster; reader: Cluster }> {
  const cluster = await startCluster({
    masters,
    replicasPerMaster: 1,
    binary: inject('redisServerBinary'),
  });
  onTestFinished(() => cluster.stop());
  const reader = new Cluster([...cluster.seeds]);
  reader.on('error', () => undefined);
  onTestFinished(() => reader.disconnect());
  return { cluster, reader };
}

/**
 * A cluster, a producer with `replicated` confirms and an idempotent consumer, on a topic
 * exchange bound to a queue of {@link PARTITIONS} partitions; everything is stopped after the
 * test. Each consumer's effect is one HINCRBY of the partition's `effects` hash, field the
 * message id: a count of 1 per message is exactly-once.
 */
async function setUp(namespace: string): Promise<Setup> {
  const { cluster, reader } = await clusterWithReader(3);
  const producer = await Sluice.connect({
    cluster: cluster.seeds,
    namespace,
    durability: 'replicated',
  });
  onTestFinished(() => producer.close());
  await producer.declareExchange(EXCHANGE, 'topic');
  await producer.declareQueue(QUEUE, { partitions: PARTITIONS, ackTimeoutMs: ACK_TIMEOUT_MS });
  await producer.bindQueue(QUEUE, EXCHANGE, 'order.#');
  const consumer = await Sluice.connect({ cluster: cluster.seeds, namespace });
  onTestFinished(() => consumer.close());
  const keys = new Keyspace(namespace);
  const masterOfPartition = await Promise.all(
    Array.from({ length: PARTITIONS }, (_, p) => cluster.masterFor(keys.queue(QUEUE, p).stream)),
  );
  return { cluster, keys, producer, consumer, reader, masterOfPartition };
}

/** The effects hash of one partition, in the partition's slot (what `ctx.tx` may write). */
function effectsKey(keys: Keyspace, partition: number): string {
  return `${keys.queueHashTag(QUEUE, partition)}:effects`;
}

/** Starts the idempotent consumer: its effect is counted once per message id in its partition. */
async function consume(setup: Setup): Promise<void> {
  const consumer = await setup.consumer.consume<Order>(
    QUEUE,
    (msg, { tx }) => {
      tx.hincrby(effectsKey(setup.keys, msg.partition), msg.messageId, 1);
    },
    { idempotency: {}, prefetch: 50, concurrency: 16 },
  );
  onTestFinished(() => consumer.close());
}

/**
 * Publishes {@link MESSAGES} messages with ids, {@link PUBLISH_WINDOW} at a time, and runs
 * `fault` once a third of them are confirmed, while publishing goes on. A publish that fails
 * (the confirm deadline passed while its master was failing over, a retry budget ran out) is
 * published again under the same message id: publish dedup makes that safe, which is what an
 * application does with a publish it could not confirm.
 */
async function publishWithFault(setup: Setup, fault: () => Promise<void>): Promise<LoadResult> {
  const confirms: PublishConfirm[] = [];
  const publishedAfterFault: number[] = [];
  let republished = 0;
  let confirmed = 0;
  let confirmedAtFault = -1;
  let faultEnded = false;
  let faultRun: Promise<void> | undefined;
  const deadline = Date.now() + SETTLE_MS;
  const publishOne = async (index: number): Promise<void> => {
    if (faultEnded) publishedAfterFault.push(index);
    for (;;) {
      try {
        confirms[index] = await setup.producer.publish<Order>(
          EXCHANGE,
          `order.created.${index % KEYS}`,
          { index },
          { messageId: messageId(index), partitionKey: `key-${index % KEYS}` },
        );
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        republished++;
      }
    }
    if (++confirmed === Math.floor(MESSAGES / 3)) {
      confirmedAtFault = confirmed;
      faultRun = fault().then(() => {
        faultEnded = true;
      });
    }
  };
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < MESSAGES) await publishOne(next++);
  };
  await Promise.all(Array.from({ length: PUBLISH_WINDOW }, lane));
  await faultRun;
  return { confirms, republished, confirmedAtFault, publishedAfterFault };
}

/**
 * A counter of the server since it started: `errorstat` for the replies of an error (`ASK`,
 * `TRYAGAIN`), `cmdstat` for the calls of a command (`wait`).
 */
async function serverCount(
  redis: Redis,
  kind: 'errorstat' | 'cmdstat',
  name: string,
): Promise<number> {
  const stats = await redis.info(kind === 'errorstat' ? 'errorstats' : 'commandstats');
  const pattern = new RegExp(`^${kind}_${name}:(?:count|calls)=(\\d+)`, 'mu');
  return Number(pattern.exec(stats)?.[1] ?? 0);
}

/** XLEN of `stream` on the node importing its slot (ASKING lets it answer for the slot). */
async function importedLength(node: Redis, stream: string): Promise<number> {
  const replies = await node.pipeline().call('ASKING').xlen(stream).exec();
  const [error, length] = replies?.[1] ?? [new Error('no reply to XLEN')];
  if (error !== null) throw error;
  return Number(length);
}

/** How many ASK and TRYAGAIN replies a server gave: what it answers on a slot it migrates. */
async function migrationReplies(redis: Redis): Promise<number> {
  const [ask, tryAgain] = await Promise.all([
    serverCount(redis, 'errorstat', 'ASK'),
    serverCount(redis, 'errorstat', 'TRYAGAIN'),
  ]);
  return ask + tryAgain;
}

/** The effect counts of every message id, over every partition. */
async function effectCounts(setup: Setup): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let p = 0; p < PARTITIONS; p++) {
    const hash = await setup.reader.hgetall(effectsKey(setup.keys, p));
    for (const [id, count] of Object.entries(hash)) {
      counts.set(id, (counts.get(id) ?? 0) + Number(count));
    }
  }
  return counts;
}

/**
 * Waits until the queue is drained (nothing ready, unacked, delayed or waiting to be
 * dead-lettered, in any partition) and every message's effect is applied, then asserts the
 * promises: every confirmed message consumed (0 lost), each effect applied once (0
 * duplicated), consumption of messages published after the fault on the partitions it hit.
 */
async function expectEveryMessageOnce(
  setup: Setup,
  result: LoadResult,
  hitPartitions: ReadonlySet<number>,
): Promise<void> {
  expect(result.confirms.filter((confirm) => confirm !== undefined)).toHaveLength(MESSAGES);
  expect(new Set(result.confirms.map((confirm) => confirm.messageId)).size).toBe(MESSAGES);
  // The fault came while publishing went on: messages were confirmed before and after it.
  expect(result.confirmedAtFault).toBeGreaterThan(0);
  expect(result.confirmedAtFault).toBeLessThan(MESSAGES);
  const afterOnHit = result.publishedAfterFault.filter((index) =>
    hitPartitions.has(result.confirms[index]?.targets[0]?.partition ?? -1),
  );
  expect(afterOnHit.length).toBeGreaterThan(0);

  const drained = async (): Promise<boolean> => {
    const info = await setup.producer.inspectQueue(QUEUE);
    const idle = info.partitions.every((p) => p.messages === 0 && p.unacked === 0);
    return idle && info.delayed === 0 && info.deadLetterBacklog === 0;
  };
  await waitFor(async () => (await drained()) && (await effectCounts(setup)).size >= MESSAGES, {
    timeoutMs: SETTLE_MS,
    intervalMs: 100,
    description: 'every message consumed, queue drained',
  });
  const counts = await effectCounts(setup);
  const lost = Array.from({ length: MESSAGES }, (_, i) => messageId(i)).filter(
    (id) => !counts.has(id),
  );
  const duplicated = [...counts].filter(([, count]) => count !== 1).map(([id]) => id);
  expect(lost).toEqual([]);
  expect(duplicated).toEqual([]);
  expect(counts.size).toBe(MESSAGES);
  const info = await setup.producer.inspectQueue(QUEUE);
  expect(info.partitions.map((p) => p.unacked)).toEqual(new Array<number>(PARTITIONS).fill(0));
  expect(info.partitions.map((p) => p.messages)).toEqual(new Array<number>(PARTITIONS).fill(0));
}

describe('sluice on a Redis Cluster', () => {
  it('loses no confirmed message and applies no effect twice when a master is SIGKILLed under load', async ({
    annotate,
  }) => {
    const setup = await setUp('cluster-kill');
    // The queue's keys are on every master: the load reaches all of them.
    expect(new Set(setup.masterOfPartition.map((master) => master.id)).size).toBe(3);
    await consume(setup);
    // The master of partition 0; every partition it serves fails over with it.
    const victim = setup.masterOfPartition[0] as ClusterNode;
    const hit = new Set(
      setup.masterOfPartition.flatMap((master, p) => (master.id === victim.id ? [p] : [])),
    );
    let takeoverMs = 0;
    let rejoinMs = 0;
    const result = await publishWithFault(setup, async () => {
      const killedAt = Date.now();
      const promoted = await setup.cluster.killMaster(victim);
      takeoverMs = Date.now() - killedAt;
      expect(promoted.id).not.toBe(victim.id);
      // The promoted replica is a master without a replica: no WAIT for 1 replica can succeed
      // there, and sluice rightly refuses to confirm those publishes until the killed node is
      // back (as its supervisor would restart it), replicating the new master.
      await setup.cluster.restart(victim);
      rejoinMs = Date.now() - killedAt - takeoverMs;
    });
    await expectEveryMessageOnce(setup, result, hit);
    expect((await setup.cluster.masterFor(setup.keys.queue(QUEUE, 0).stream)).id).not.toBe(
      victim.id,
    );
    await annotate(
      `partitions ${[...hit].join(', ')} failed over in ${takeoverMs} ms, ` +
        `the killed node replicated the new master ${rejoinMs} ms later; ` +
        `${result.republished} publishes failed and were published again under their ids`,
    );
  });

  it('loses no confirmed message and applies no effect twice when a slot of the queue is resharded under load', async ({
    annotate,
  }) => {
    const setup = await setUp('cluster-reshard');
    await consume(setup);
    const stream = setup.keys.queue(QUEUE, 0).stream;
    const slot = hashSlot(stream);
    const source = setup.masterOfPartition[0] as ClusterNode;
    const target = setup.cluster.nodes.find(
      (node) => node.role === 'master' && node.id !== source.id,
    ) as ClusterNode;
    const admin = new Redis(source.port, source.host);
    onTestFinished(() => admin.disconnect());
    let reshardMs = 0;
    let redirected = 0;
    const result = await publishWithFault(setup, async () => {
      const before = await migrationReplies(admin);
      const startedAt = Date.now();
      // One key per MIGRATE: the slot stays migrating over a few hundred round trips.
      await setup.cluster.reshard(slot, target, { keysPerMigrate: 1 });
      reshardMs = Date.now() - startedAt;
      redirected = (await migrationReplies(admin)) - before;
    });
    // The load met the migration: the old owner sent commands on the slot's keys elsewhere.
    expect(redirected).toBeGreaterThan(0);
    await expectEveryMessageOnce(setup, result, new Set([0]));
    expect((await setup.cluster.masterFor(slot)).id).toBe(target.id);
    await annotate(
      `slot ${slot} (partition 0) moved to another master in ${reshardMs} ms, ` +
        `${redirected} ASK or TRYAGAIN replies meanwhile; ` +
        `${result.republished} publishes failed and were published again under their ids`,
    );
  });

  it('writes a replicated publish met mid-migration on the new owner once the migration ends, and WAITs there', async () => {
    const { cluster, reader } = await clusterWithReader(2);
    const sluice = await Sluice.connect({
      cluster: cluster.seeds,
      namespace: 'cluster-ask',
      durability: 'replicated',
      durabilityTimeoutMs: 300,
    });
    onTestFinished(() => sluice.close());
    await sluice.declareQueue('q');
    const keys = new Keyspace('cluster-ask').queue('q');
    // A message that expires goes through the queue's dead-letter outbox, which stays, empty:
    // every key that a publish call without dedup lists but the guard (stream, fence, outbox,
    // and the stats hash, where the expiry counted it) exists now.
    // Only then does a migrating source answer ASK, and the importing node run the call.
    await sluice.publish('', 'q', 'expires', { expirationMs: 1 });
    await waitFor(
      async () =>
        (await reader.exists(keys.deadLetters)) === 1 &&
        (await reader.xlen(keys.deadLetters)) === 0 &&
        (await reader.xlen(keys.stream)) === 0,
      { description: 'the expired message dead-lettered and its outbox drained' },
    );
    const slot = hashSlot(keys.stream);
    const source = await cluster.masterFor(slot);
    const target = cluster.nodes.find(
      (node) => node.role === 'master' && node.id !== source.id,
    ) as ClusterNode;
    const admin = (node: ClusterNode): Redis => {
      const client = new Redis(node.port, node.host);
      onTestFinished(() => client.disconnect());
      return client;
    };
    const [sourceAdmin, targetAdmin] = [admin(source), admin(target)];
    // The first half of a reshard: every key of the slot is on the target, which imports it.
    await targetAdmin.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await sourceAdmin.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    const slotKeys = (await sourceAdmin.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
    expect(slotKeys).toContain(keys.deadLetters);
    await sourceAdmin.call('MIGRATE', target.host, target.port, '', 0, 5000, 'KEYS', ...slotKeys);
    const [waitsBefore, refusalsBefore] = await Promise.all([
      serverCount(targetAdmin, 'cmdstat', 'wait'),
      serverCount(targetAdmin, 'errorstat', 'TRYAGAIN'),
    ]);
    const published = sluice.publish('', 'q', 'mid-migration', { dedupWindowMs: 0 });
    // The source sends the call on (ASK, as its keys are gone) and the importing target refuses
    // it: run there, its WAIT would go to the source, the slot's owner in the client's map.
    await waitFor(
      async () => (await serverCount(targetAdmin, 'errorstat', 'TRYAGAIN')) > refusalsBefore,
      { description: 'the importing node refusing the publish' },
    );
    expect(await importedLength(targetAdmin, keys.stream)).toBe(0);
    // The second half of the reshard: the publish follows MOVED to the new owner.
    for (const node of [targetAdmin, sourceAdmin]) {
      await node.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    }
    const confirm = await published;
    expect(confirm.targets.map(({ queue, partition }) => ({ queue, partition }))).toEqual([
      { queue: 'q', partition: 0 },
    ]);
    expect(await targetAdmin.xlen(keys.stream)).toBe(1);
    expect(await serverCount(targetAdmin, 'cmdstat', 'wait')).toBeGreaterThan(waitsBefore);
  });
});
