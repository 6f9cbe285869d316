import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError, type Sluice } from '../../src/index.js';
import { scriptBodies } from '../../src/connection/scripts.js';
import { Keyspace } from '../../src/keys/index.js';
import { redisUrl, waitFor } from '../support/index.js';
import { entryMessageId, streamKey, useSluice } from '../support/sluice.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

async function sluiceCli(namespace: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [
    '--import',
    'tsx',
    cli,
    '--url',
    redisUrl(),
    '--namespace',
    namespace,
    ...args,
  ]);
  return stdout;
}

/** Orders go through topic `orders` to `work`, which dead-letters into `work.dlq`; `n` rejected. */
async function deadLetters(sluice: Sluice, n: number): Promise<string[]> {
  await sluice.declareExchange('orders', 'topic');
  await sluice.declareExchange('dlx', 'fanout');
  await sluice.declareQueue('work.dlq');
  await sluice.bindQueue('work.dlq', 'dlx');
  await sluice.declareQueue('work', { deadLetterExchange: 'dlx' });
  await sluice.bindQueue('work', 'orders', 'order.*');
  const confirms = await sluice.publishBatch(
    Array.from({ length: n }, (_, i) => ({
      exchange: 'orders',
      routingKey: 'order.created',
      body: { i },
    })),
  );
  const consumer = await sluice.consume('work', (msg) => msg.reject(), {
    prefetch: 50,
    concurrency: 10,
  });
  await waitFor(() => consumer.stats.rejected === n, { timeoutMs: 20_000 });
  await consumer.close();
  return confirms.map((c) => c.messageId);
}

describe('dead-letter queue tools', () => {
  it('list pages through dead letters with their death records', async () => {
    const { sluice } = await useSluice();
    const ids = await deadLetters(sluice, 5);
    const first = await sluice.dlq.list('work.dlq', { count: 3 });
    expect(first.messages).toHaveLength(3);
    expect(first.next).toBeDefined();
    const second = await sluice.dlq.list('work.dlq', { count: 3, after: first.next as string });
    expect(second.messages).toHaveLength(2);
    expect(second.next).toBeUndefined();
    const listed = [...first.messages, ...second.messages];
    expect(listed.map((m) => ('messageId' in m ? m.messageId : ''))).toEqual(ids);
    expect(listed[0]).toMatchObject({
      deathHistory: { last: { queue: 'work', reason: 'rejected', exchange: 'orders' } },
    });
  });

  it('show finds a message by stream id or message id', async () => {
    const { sluice } = await useSluice();
    const [id] = await deadLetters(sluice, 2);
    const byMessageId = await sluice.dlq.show('work.dlq', id ?? '');
    expect(byMessageId).toMatchObject({ messageId: id, body: { i: 0 } });
    const byStreamId = await sluice.dlq.show('work.dlq', byMessageId.streamId);
    expect(byStreamId).toEqual(byMessageId);
    await expect(sluice.dlq.show('work.dlq', 'nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('replay sends messages back to their original exchange and routing key', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const ids = await deadLetters(sluice, 20);
    const progress: number[] = [];
    const result = await sluice.dlq.replay('work.dlq', {
      onProgress: (done) => progress.push(done),
    });
    expect(result).toEqual({ replayed: 20, skipped: 0 });
    expect(progress.at(-1)).toBe(20);
    expect(await redis.xlen(streamKey(namespace, 'work.dlq'))).toBe(0);
    const received: string[] = [];
    const consumer = await sluice.consume('work', (msg) => {
      received.push(msg.messageId);
      expect(msg.deathHistory?.deaths[0]?.reason).toBe('rejected');
    });
    await waitFor(() => consumer.stats.acked === 20);
    expect(received).toEqual(ids);
    await consumer.close();
  });

  it('replay to a given queue, interrupted and run again, never doubles a message', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await deadLetters(sluice, 30);
    await sluice.declareQueue('retry-later');
    const partial = await sluice.dlq.replay('work.dlq', { toQueue: 'retry-later', limit: 12 });
    expect(partial).toEqual({ replayed: 12, skipped: 0 });
    const rest = await sluice.dlq.replay('work.dlq', { toQueue: 'retry-later' });
    expect(rest).toEqual({ replayed: 18, skipped: 0 });
    const entries = await redis.xrange(streamKey(namespace, 'retry-later'), '-', '+');
    const messageIds = entries.map(([, fields]) => entryMessageId(fields));
    expect(new Set(messageIds).size).toBe(30);
    expect(messageIds).toHaveLength(30);
  });

  it('replay skips what it cannot route and leaves it in place', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await deadLetters(sluice, 3);
    await sluice.unbindQueue('work', 'orders', 'order.*');
    expect(await sluice.dlq.replay('work.dlq')).toEqual({ replayed: 0, skipped: 3 });
    expect(await redis.xlen(streamKey(namespace, 'work.dlq'))).toBe(3);
  });

  it('replay leaves alone a dead letter that a consumer of the dead-letter queue is handling', async () => {
    const { sluice } = await useSluice();
    await deadLetters(sluice, 2);
    const stream = sluice.messages('work.dlq', { prefetch: 1 });
    for await (const held of stream) {
      expect(await sluice.dlq.replay('work.dlq')).toEqual({ replayed: 1, skipped: 1 });
      await held.ack();
      break;
    }
  });

  it('purge removes the dead letters', async () => {
    const { sluice } = await useSluice();
    await deadLetters(sluice, 4);
    expect(await sluice.dlq.purge('work.dlq')).toBe(4);
    expect((await sluice.dlq.list('work.dlq')).messages).toEqual([]);
  });

  it('validate their input', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await expect(sluice.dlq.list('q', { count: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sluice.dlq.list('q', { after: 'yesterday' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(sluice.dlq.replay('q', { toQueue: 'ghost' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(sluice.dlq.replay('ghost')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('sluice dlq command line', () => {
  it('lists, shows, replays and purges', async () => {
    const { sluice, namespace } = await useSluice();
    const [first] = await deadLetters(sluice, 6);
    const listing = await sluiceCli(namespace, 'dlq', 'list', 'work.dlq', '--count', '4');
    expect(listing.trim().split('\n')).toHaveLength(5);
    expect(listing).toContain('rejected in work x1');
    expect(listing).toMatch(/^next: \d+-\d+$/m);
    const shown = JSON.parse(
      await sluiceCli(namespace, 'dlq', 'show', 'work.dlq', first ?? ''),
    ) as { messageId: string };
    expect(shown.messageId).toBe(first);
    expect(await sluiceCli(namespace, 'dlq', 'replay', 'work.dlq', '--limit', '2')).toContain(
      'replayed 2, skipped 0',
    );
    expect(await sluiceCli(namespace, 'dlq', 'purge', 'work.dlq')).toContain('purged 4');
  });

  it('reports a typed error and exits with 1', async () => {
    const { namespace } = await useSluice();
    const failure = await sluiceCli(namespace, 'dlq', 'list', 'ghost').catch(
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('NOT_FOUND') as string,
    });
  });
});

describe('dlq replay interrupted between its steps', () => {
  it('routes what an earlier replay took first, and puts back what routes nowhere now', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await deadLetters(sluice, 2);
    const keys = new Keyspace(namespace).queue('work.dlq');
    await waitFor(async () => (await redis.xlen(keys.stream)) === 2);
    const entries = await redis.xrange(keys.stream, '-', '+');
    const [taken, kept] = entries.map(([id]) => id);
    const keptMessageId = entryMessageId((entries[1] as [string, string[]])[1]);
    // An earlier replay took two messages into the outbox and died before routing them: one
    // to a route that still exists, one to a queue deleted since.
    const take = (entryId: string, routingKey: string): Promise<unknown> =>
      redis.eval(
        scriptBodies.get('take') as string,
        2,
        keys.stream,
        keys.deadLetters,
        'sluice',
        entryId,
        JSON.stringify({ exchange: '', routingKey }),
        Date.now(),
      );
    await sluice.declareQueue('elsewhere');
    expect(await take(taken as string, 'elsewhere')).toBe('ok');
    await sluice.declareQueue('doomed');
    expect(await take(kept as string, 'doomed')).toBe('ok');
    await sluice.deleteQueue('doomed');
    expect(await redis.xlen(keys.stream)).toBe(0);

    const result = await sluice.dlq.replay('work.dlq', { toQueue: 'work' });
    expect(await redis.xlen(keys.deadLetters)).toBe(0);
    expect(await redis.xlen(streamKey(namespace, 'elsewhere'))).toBe(1);
    // The one whose route is gone came back, and this replay sent it to `work`.
    expect(result).toEqual({ replayed: 1, skipped: 0 });
    const work = await redis.xrange(streamKey(namespace, 'work'), '-', '+');
    expect(work.map(([, fields]) => entryMessageId(fields))).toEqual([keptMessageId]);
  });
});
