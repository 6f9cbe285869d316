/**
 * Partitioned queues and ordered consumption in one process: a partition key picks one
 * partition, an ordered consumer handles one key at a time in publish order with other keys in
 * parallel, a failing message keeps its key's place, partitions are shared among the ordered
 * consumers of a queue, and a single active consumer hands over in order.
 */
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  PreconditionFailedError,
  UnsupportedError,
  type Consumer,
  type Delivery,
} from '../../src/index.js';
import { partitionOf } from '../../src/queue/partitions.js';
import { waitFor } from '../support/index.js';
import { connectSluice, useSluice } from '../support/sluice.js';

interface Change {
  readonly row: string;
  readonly version: number;
}

describe('partitioned queues', () => {
  it('puts each partition key in one partition, carried by the delivery', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('rows', { partitions: 4 });
    const confirms = await Promise.all(
      ['a', 'b', 'c', 'd', 'e', 'f'].map((row) =>
        sluice.publish('', 'rows', { row }, { partitionKey: row }),
      ),
    );
    for (const [i, confirm] of confirms.entries()) {
      const row = ['a', 'b', 'c', 'd', 'e', 'f'][i] as string;
      expect(confirm.targets).toHaveLength(1);
      expect(confirm.targets[0]).toMatchObject({ queue: 'rows', partition: partitionOf(row, 4) });
    }
    const info = await sluice.inspectQueue('rows');
    expect(info.messages).toBe(6);
    expect(info.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    expect(info.partitions.reduce((n, p) => n + p.messages, 0)).toBe(6);
    const seen: Delivery<{ row: string }>[] = [];
    const consumer = await sluice.consume<{ row: string }>('rows', (msg) => void seen.push(msg));
    await waitFor(() => seen.length === 6, { description: 'six deliveries' });
    for (const msg of seen) {
      expect(msg.partitionKey).toBe(msg.body.row);
      expect(msg.partition).toBe(partitionOf(msg.body.row, 4));
      expect(msg.fencingToken).toBeUndefined();
    }
    await consumer.close();
    expect((await sluice.inspectQueue('rows')).messages).toBe(0);
  });

  it('uses the routing key when no partition key is given', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('rows', { partitions: 8 });
    await sluice.declareExchange('changes', 'topic');
    await sluice.bindQueue('rows', 'changes', 'row.*');
    const confirm = await sluice.publish('changes', 'row.42', 1);
    expect(confirm.targets[0]?.partition).toBe(partitionOf('row.42', 8));
  });

  it('refuses another partition count, and bad partitions or partition keys', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('rows', { partitions: 4 });
    await sluice.declareQueue('rows', { partitions: 4 });
    await expect(sluice.declareQueue('rows', { partitions: 8 })).rejects.toThrow(
      PreconditionFailedError,
    );
    await expect(sluice.declareQueue('rows')).rejects.toThrow(/4 partitions, not 1/);
    await sluice.declareQueue('one', { partitions: 1 });
    await sluice.declareQueue('one');
    for (const partitions of [0, -1, 1025, 1.5, '4', null, Number.NaN]) {
      await expect(
        sluice.declareQueue('bad', { partitions } as unknown as { partitions: number }),
      ).rejects.toThrow(InvalidArgumentError);
    }
    for (const partitionKey of [5, '', {}, null, 'x'.repeat(300)]) {
      await expect(
        sluice.publish('', 'rows', 1, { partitionKey } as unknown as { partitionKey: string }),
      ).rejects.toThrow(InvalidArgumentError);
    }
    await expect(
      sluice.declareQueue('bad', { singleActiveConsumer: 'yes' } as unknown as {
        singleActiveConsumer: boolean;
      }),
    ).rejects.toThrow(InvalidArgumentError);
    await expect(
      sluice.consume('rows', () => undefined, { ordered: 1 } as unknown as { ordered: boolean }),
    ).rejects.toThrow(InvalidArgumentError);
    await expect(sluice.consume('rows', () => undefined, { onPoison: 'halt' })).rejects.toThrow(
      /ordered/,
    );
    expect(() => sluice.messages('rows', { ordered: true })).toThrow(UnsupportedError);
    expect(await sluice.inspectQueue('bad').catch((error: unknown) => error)).toBeInstanceOf(Error);
  });

  it('deletes every partition of a queue whose record went before its keys (a repeated delete)', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('rows', { partitions: 4 });
    for (const row of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) {
      await sluice.publish('', 'rows', 1, { partitionKey: row });
    }
    // As if an earlier delete removed the record and stopped there.
    await redis.hdel(`${namespace}:{${namespace}}:topology:queues`, 'rows');
    await sluice.deleteQueue('rows');
    expect(await redis.keys(`${namespace}:{${namespace}:q:rows:*`)).toEqual([]);
    await sluice.declareQueue('rows', { partitions: 4 });
    expect((await sluice.inspectQueue('rows')).messages).toBe(0);
  });

  it('deletes every partition of a queue', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await sluice.declareQueue('rows', { partitions: 3 });
    await sluice.publish('', 'rows', 1, { partitionKey: 'x' });
    await sluice.deleteQueue('rows');
    expect(await redis.keys(`${namespace}:{${namespace}:q:rows:*`)).toEqual([]);
  });
});

describe('ordered consumers', () => {
  it('handles one key at a time in publish order, other keys in parallel', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('rows', { partitions: 2 });
    const rows = ['r1', 'r2', 'r3', 'r4'];
    for (let version = 1; version <= 20; version++) {
      await Promise.all(
        rows.map((row) => sluice.publish('', 'rows', { row, version }, { partitionKey: row })),
      );
    }
    const applied = new Map<string, number[]>();
    const running = new Set<string>();
    let overlap = 0;
    let parallel = 0;
    const consumer = await sluice.consume<Change>(
      'rows',
      async (msg) => {
        const { row, version } = msg.body;
        if (running.has(row)) overlap++;
        running.add(row);
        parallel = Math.max(parallel, running.size);
        await new Promise((resolve) => setTimeout(resolve, 2));
        running.delete(row);
        applied.set(row, [...(applied.get(row) ?? []), version]);
        expect(msg.fencingToken).toBeGreaterThan(0);
      },
      { ordered: true, concurrency: 8 },
    );
    await waitFor(() => rows.every((row) => applied.get(row)?.length === 20), {
      timeoutMs: 10_000,
      description: 'every change applied',
    });
    await consumer.close();
    for (const row of rows) {
      expect(applied.get(row)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    }
    expect(overlap).toBe(0);
    expect(parallel).toBeGreaterThan(1);
  });

  it('keeps a failing message in its key’s place: A fails twice, then B and C; others go on', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    for (const name of ['A', 'B', 'C']) {
      await sluice.publish('', 'jobs', { name, key: 'k' }, { partitionKey: 'k' });
    }
    await sluice.publish('', 'jobs', { name: 'X', key: 'other' }, { partitionKey: 'other' });
    const order: string[] = [];
    let failures = 0;
    const consumer = await sluice.consume<{ name: string }>(
      'jobs',
      (msg) => {
        order.push(`${msg.body.name}#${msg.deliveryCount}`);
        if (msg.body.name === 'A' && failures < 2) {
          failures++;
          throw new Error('not yet');
        }
      },
      { ordered: true, concurrency: 4, retry: { initialDelayMs: 200, jitter: 0 } },
    );
    await waitFor(() => order.includes('C#1'), { description: 'C handled' });
    await consumer.close();
    const keyed = order.filter((entry) => !entry.startsWith('X'));
    expect(keyed).toEqual(['A#1', 'A#2', 'A#3', 'B#1', 'C#1']);
    // The other key was not held back by A's retries.
    expect(order.indexOf('X#1')).toBeLessThan(order.indexOf('A#3'));
  });

  it('dead-letters a message past maxDeliveries and moves its key on, or halts it', async () => {
    const { sluice } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('dead');
    await sluice.bindQueue('dead', 'dlx');
    await sluice.declareQueue('jobs', { maxDeliveries: 2, deadLetterExchange: 'dlx' });
    const { messageId } = await sluice.publish('', 'jobs', 'bad', { partitionKey: 'k' });
    await sluice.publish('', 'jobs', 'good', { partitionKey: 'k' });
    const handled: string[] = [];
    const consumer = await sluice.consume<string>(
      'jobs',
      (msg) => {
        handled.push(msg.body);
        if (msg.body === 'bad') throw new Error(`poison, attempt ${msg.deliveryCount}`);
      },
      { ordered: true, retry: false },
    );
    await waitFor(() => handled.includes('good'), { description: 'the key moved on' });
    await consumer.close();
    expect(handled).toEqual(['bad', 'bad', 'good']);
    await waitFor(async () => (await sluice.inspectQueue('dead')).messages === 1, {
      description: 'dead-lettered',
    });
    // Retried in place, the message's death record still has the handler's last error.
    const dead = await sluice.dlq.show('dead', messageId);
    const death = 'deathHistory' in dead ? dead.deathHistory?.deaths[0] : undefined;
    expect(death).toMatchObject({ queue: 'jobs', reason: 'delivery_limit' });
    expect(death?.lastError?.message).toBe('poison, attempt 2');

    await sluice.publish('', 'jobs', 'bad', { partitionKey: 'h' });
    await sluice.publish('', 'jobs', 'after', { partitionKey: 'h' });
    await sluice.publish('', 'jobs', 'free', { partitionKey: 'other' });
    const halted: { key: string; deliveryCount: number }[] = [];
    const seen: string[] = [];
    const halting: Consumer = await sluice.consume<string>(
      'jobs',
      (msg) => {
        seen.push(msg.body);
        if (msg.body === 'bad') throw new Error('poison');
      },
      { ordered: true, retry: false, onPoison: 'halt' },
    );
    halting.on('key.halted', (event) => halted.push(event));
    await waitFor(() => halted.length === 1 && seen.includes('free'), {
      description: 'halted',
    });
    expect(halted[0]).toMatchObject({ key: 'h', deliveryCount: 3 });
    expect(seen).not.toContain('after');
    await halting.close();
    expect((await sluice.inspectQueue('jobs')).messages).toBe(2);
  });

  it('reads on after a whole prefetch of failing messages is dead-lettered', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs', { maxDeliveries: 2 });
    await sluice.publish('', 'jobs', 'bad', { partitionKey: 'k' });
    await sluice.publish('', 'jobs', 'good', { partitionKey: 'k' });
    const handled: string[] = [];
    const consumer = await sluice.consume<string>(
      'jobs',
      (msg) => {
        handled.push(msg.body);
        if (msg.body === 'bad') throw new Error('poison');
      },
      { ordered: true, retry: false, prefetch: 1 },
    );
    await waitFor(() => handled.includes('good'), { description: 'the next message read' });
    await consumer.close();
    expect(handled).toEqual(['bad', 'bad', 'good']);
  });

  it('retries in place after the backoff, an idempotent consumer too', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('jobs');
    await sluice.publish('', 'jobs', 'x', { partitionKey: 'k' });
    const seenAt: number[] = [];
    const consumer = await sluice.consume<string>(
      'jobs',
      () => {
        seenAt.push(Date.now());
        if (seenAt.length < 3) throw new Error('not yet');
      },
      {
        ordered: true,
        retry: { initialDelayMs: 300, multiplier: 1, jitter: 0 },
        idempotency: {},
      },
    );
    await waitFor(() => seenAt.length === 3, { description: 'three deliveries' });
    await consumer.close();
    for (let i = 1; i < seenAt.length; i++) {
      expect((seenAt[i] as number) - (seenAt[i - 1] as number)).toBeGreaterThanOrEqual(290);
    }
  });

  it('shares partitions among the ordered consumers of a queue, and hands them over', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('rows', { partitions: 4 });
    const other = await connectSluice(namespace);
    const first = await sluice.consume('rows', () => undefined, { ordered: true });
    await waitFor(
      async () => (await sluice.inspectQueue('rows')).partitions.every((p) => p.owner),
      { timeoutMs: 10_000, description: 'all partitions owned' },
    );
    const second = await other.consume('rows', () => undefined, { ordered: true });
    const owners = async (): Promise<Set<string>> =>
      new Set(
        (await sluice.inspectQueue('rows')).partitions.map((p) => p.owner?.consumer ?? 'none'),
      );
    await waitFor(async () => (await owners()).size === 2 && !(await owners()).has('none'), {
      timeoutMs: 15_000,
      description: 'two owners of two partitions each',
    });
    const counts = new Map<string, number>();
    for (const p of (await sluice.inspectQueue('rows')).partitions) {
      const owner = p.owner?.consumer as string;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    expect([...counts.values()]).toEqual([2, 2]);
    await expect(sluice.consume('rows', () => undefined)).rejects.toThrow(PreconditionFailedError);
    await first.close();
    await waitFor(async () => (await owners()).size === 1 && !(await owners()).has('none'), {
      timeoutMs: 15_000,
      description: 'the second consumer owns all',
    });
    await second.close();
  });

  it('refuses an ordered consumer on a queue that an unordered one reads', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('rows');
    const plain = await sluice.consume('rows', () => undefined);
    await expect(sluice.consume('rows', () => undefined, { ordered: true })).rejects.toThrow(
      PreconditionFailedError,
    );
    await plain.close();
  });
});

describe('single active consumer', () => {
  it('delivers to one consumer only, and the next takes over in order when it closes', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('sac', { singleActiveConsumer: true });
    const clients = [sluice, await connectSluice(namespace), await connectSluice(namespace)];
    const received: [number, number][] = [];
    const consumers: Consumer[] = [];
    for (const [i, client] of clients.entries()) {
      consumers.push(
        await client.consume<number>('sac', (msg) => void received.push([i, msg.body])),
      );
    }
    for (let n = 1; n <= 10; n++) await sluice.publish('', 'sac', n);
    await waitFor(() => received.length === 10, { timeoutMs: 10_000, description: 'ten' });
    expect(new Set(received.map(([i]) => i)).size).toBe(1);
    const active = (received[0] as [number, number])[0];
    await (consumers[active] as Consumer).close();
    for (let n = 11; n <= 20; n++) await sluice.publish('', 'sac', n);
    await waitFor(() => received.length === 20, { timeoutMs: 15_000, description: 'twenty' });
    const after = received.slice(10);
    expect(new Set(after.map(([i]) => i)).size).toBe(1);
    expect(after[0]?.[0]).not.toBe(active);
    expect(received.map(([, n]) => n)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await Promise.all(consumers.map((consumer) => consumer.close()));
  });
});
