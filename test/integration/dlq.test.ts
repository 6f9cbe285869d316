import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  NotFoundError,
  type ReplayResult,
  type Sluice,
} from '../../src/index.js';
import { scriptBodies } from '../../src/connection/scripts.js';
import type { ReplayRoute } from '../../src/dead-letter/relay.js';
import { Keyspace } from '../../src/keys/index.js';
import { sluiceCli as runCli } from '../support/cli.js';
import { waitFor } from '../support/index.js';
import {
  declareWorkWithDeadLetters,
  connectSluice,
  entryMessageId,
  streamKey,
  useSluice,
} from '../support/sluice.js';

/** Runs the built `sluice` command on `namespace`; resolves with its stdout if it exited 0. */
async function sluiceCli(namespace: string, ...args: string[]): Promise<string> {
  const run = await runCli(namespace, args);
  expect(run.code, `exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`).toBe(0);
  return run.stdout;
}

/** Rejects the next `n` messages of `queue`. */
async function reject(sluice: Sluice, queue: string, n: number): Promise<void> {
  const consumer = await sluice.consume(queue, (msg) => msg.reject(), {
    prefetch: 50,
    concurrency: 10,
  });
  await waitFor(() => consumer.stats.rejected === n, { timeoutMs: 20_000 });
  await consumer.close();
}

/** Orders go through topic `orders` to `work`, which dead-letters into `work.dlq`; `n` rejected. */
async function deadLetters(sluice: Sluice, n: number): Promise<string[]> {
  await declareWorkWithDeadLetters(sluice);
  const confirms = await sluice.publishBatch(
    Array.from({ length: n }, (_, i) => ({
      exchange: 'orders',
      routingKey: 'order.created',
      body: { i },
    })),
  );
  await reject(sluice, 'work', n);
  return confirms.map((c) => c.messageId);
}

/** `shipping` is bound to `orders` too: it gets its own copy of every order, and keeps it. */
async function bindShipping(sluice: Sluice): Promise<void> {
  await sluice.declareExchange('orders', 'topic');
  await sluice.declareQueue('shipping');
  await sluice.bindQueue('shipping', 'orders', 'order.*');
}

/** A replay that moved `replayed` messages and left none. */
function replayedAll(replayed: number): ReplayResult {
  return { replayed, skipped: 0, failed: 0, failures: [] };
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

  it('replay sends each message back to the queue it died in, and to no other queue bound to its exchange', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await bindShipping(sluice);
    const ids = await deadLetters(sluice, 20);
    expect(await redis.xlen(streamKey(namespace, 'shipping'))).toBe(20);
    const progress: number[] = [];
    const result = await sluice.dlq.replay('work.dlq', {
      onProgress: (done) => progress.push(done),
    });
    expect(result).toEqual(replayedAll(20));
    expect(progress.at(-1)).toBe(20);
    expect(await redis.xlen(streamKey(namespace, 'work.dlq'))).toBe(0);
    // The replay resolves after its moves: a copy for shipping would be there by now.
    expect(await redis.xlen(streamKey(namespace, 'shipping'))).toBe(20);
    const received: { id: string; exchange: string; routingKey: string; death?: string }[] = [];
    const consumer = await sluice.consume('work', (msg) => {
      received.push({
        id: msg.messageId,
        exchange: msg.exchange,
        routingKey: msg.routingKey,
        ...(msg.deathHistory === undefined ? {} : { death: msg.deathHistory.last.reason }),
      });
    });
    await waitFor(() => consumer.stats.acked === 20);
    // Back as it was in `work`: its exchange and routing key, with the death it came back from.
    expect(received).toEqual(
      ids.map((id) => ({ id, exchange: 'orders', routingKey: 'order.created', death: 'rejected' })),
    );
    await consumer.close();
  });

  it('replay with viaExchange publishes to the original exchange: every queue bound there gets a copy', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await bindShipping(sluice);
    await deadLetters(sluice, 5);
    expect(await redis.xlen(streamKey(namespace, 'work'))).toBe(0);
    expect(await sluice.dlq.replay('work.dlq', { viaExchange: true })).toEqual(replayedAll(5));
    expect(await redis.xlen(streamKey(namespace, 'work.dlq'))).toBe(0);
    expect(await redis.xlen(streamKey(namespace, 'work'))).toBe(5);
    expect(await redis.xlen(streamKey(namespace, 'shipping'))).toBe(10);
  });

  it('replay leaves in place, with a NotFoundError, the messages whose queue is gone', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const stranded = await deadLetters(sluice, 3);
    await sluice.declareQueue('returns', { deadLetterExchange: 'dlx' });
    await sluice.publishBatch(
      [1, 2].map((r) => ({ exchange: '', routingKey: 'returns', body: { r } })),
    );
    await reject(sluice, 'returns', 2);
    const dlq = streamKey(namespace, 'work.dlq');
    await waitFor(async () => (await redis.xlen(dlq)) === 5);
    // Another process deletes `work`: this client's topology does not know yet.
    const other = await connectSluice(namespace);
    await other.deleteQueue('work');

    const result = await sluice.dlq.replay('work.dlq');
    expect(result).toMatchObject({
      replayed: 2,
      skipped: 0,
      failed: 3,
      failures: [{ queue: 'work', messages: 3 }],
    });
    expect(result.failures[0]?.error).toBeInstanceOf(NotFoundError);
    expect(await redis.xlen(streamKey(namespace, 'returns'))).toBe(2);
    const left = await redis.xrange(dlq, '-', '+');
    expect(left.map(([, fields]) => entryMessageId(fields))).toEqual(stranded);
    // Run again, the same: nothing moved, nothing doubled.
    expect(await sluice.dlq.replay('work.dlq')).toMatchObject({ replayed: 0, failed: 3 });
    expect(await redis.xlen(dlq)).toBe(3);

    // Declared again (by the other process), the queue gets them back.
    await other.declareQueue('work', { deadLetterExchange: 'dlx' });
    expect(await sluice.dlq.replay('work.dlq')).toEqual(replayedAll(3));
    const work = await redis.xrange(streamKey(namespace, 'work'), '-', '+');
    expect(work.map(([, fields]) => entryMessageId(fields))).toEqual(stranded);
    expect(await redis.xlen(dlq)).toBe(0);
  });

  it('replay to a given queue, interrupted and run again, never doubles a message', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await deadLetters(sluice, 30);
    await sluice.declareQueue('retry-later');
    const partial = await sluice.dlq.replay('work.dlq', { toQueue: 'retry-later', limit: 12 });
    expect(partial).toEqual(replayedAll(12));
    const rest = await sluice.dlq.replay('work.dlq', { toQueue: 'retry-later' });
    expect(rest).toEqual(replayedAll(18));
    const entries = await redis.xrange(streamKey(namespace, 'retry-later'), '-', '+');
    const messageIds = entries.map(([, fields]) => entryMessageId(fields));
    expect(new Set(messageIds).size).toBe(30);
    expect(messageIds).toHaveLength(30);
  });

  it('replay through the exchange skips what it cannot route now and leaves it in place', async () => {
    const { sluice, redis, namespace } = await useSluice();
    await deadLetters(sluice, 3);
    await sluice.unbindQueue('work', 'orders', 'order.*');
    expect(await sluice.dlq.replay('work.dlq', { viaExchange: true })).toEqual({
      replayed: 0,
      skipped: 3,
      failed: 0,
      failures: [],
    });
    expect(await redis.xlen(streamKey(namespace, 'work.dlq'))).toBe(3);
    // Its queue is still there, unbound or not.
    expect(await sluice.dlq.replay('work.dlq')).toEqual(replayedAll(3));
    expect(await redis.xlen(streamKey(namespace, 'work'))).toBe(3);
  });

  it('replay leaves alone a dead letter that a consumer of the dead-letter queue is handling', async () => {
    const { sluice } = await useSluice();
    await deadLetters(sluice, 2);
    const stream = sluice.messages('work.dlq', { prefetch: 1 });
    for await (const held of stream) {
      expect(await sluice.dlq.replay('work.dlq')).toEqual({
        replayed: 1,
        skipped: 1,
        failed: 0,
        failures: [],
      });
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
    for (const options of [
      { viaExchange: 'yes' },
      { viaExchange: true, toQueue: 'q' },
      { to: 'exchange' },
    ]) {
      await expect(sluice.dlq.replay('q', options as object)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    await expect(
      sluice.dlq.replay('q', { viaExchange: undefined, toQueue: undefined, limit: undefined }),
    ).resolves.toEqual(replayedAll(0));
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
    expect(
      await sluiceCli(namespace, 'dlq', 'replay', 'work.dlq', '--limit', '2', '--yes'),
    ).toContain('replayed 2, skipped 0, failed 0');
    expect(await sluiceCli(namespace, 'dlq', 'purge', 'work.dlq', '--yes')).toContain('purged 4');
  });

  it('lists (one JSON object per line, then the next page) and shows as JSON', async () => {
    const { sluice, namespace } = await useSluice();
    const [first] = await deadLetters(sluice, 3);
    const lines = (await sluiceCli(namespace, 'dlq', 'list', 'work.dlq', '--count', '2', '--json'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
    const page = JSON.parse(JSON.stringify(await sluice.dlq.list('work.dlq', { count: 2 }))) as {
      messages: unknown[];
      next: string;
    };
    expect(lines).toEqual([...page.messages, { next: page.next }]);
    expect(lines[0]).toMatchObject({ messageId: first });
    const shown = (
      await sluiceCli(namespace, 'dlq', 'show', 'work.dlq', first ?? '', '--json')
    ).trim();
    expect(shown.split('\n')).toHaveLength(1);
    expect(JSON.parse(shown)).toEqual(
      JSON.parse(JSON.stringify(await sluice.dlq.show('work.dlq', first ?? ''))),
    );
  });

  it('replay says in --help where messages go, and goes through the exchange when asked', async () => {
    const { sluice, redis, namespace } = await useSluice();
    const help = (await sluiceCli(namespace, 'dlq', 'replay', '--help')).replace(/\s+/gu, ' ');
    expect(help).toContain('send messages back to the queue each one died in, and only there');
    expect(help).toContain('--via-exchange publish each message to the exchange it was first');
    await bindShipping(sluice);
    await deadLetters(sluice, 4);
    expect(
      await sluiceCli(
        namespace,
        'dlq',
        'replay',
        'work.dlq',
        '--via-exchange',
        '--limit',
        '2',
        '--yes',
      ),
    ).toContain('replayed 2, skipped 0, failed 0');
    expect(await redis.xlen(streamKey(namespace, 'work'))).toBe(2);
    expect(await redis.xlen(streamKey(namespace, 'shipping'))).toBe(6);

    await sluice.deleteQueue('work');
    const failure = await runCli(namespace, ['dlq', 'replay', 'work.dlq', '--yes']);
    expect(failure).toMatchObject({
      code: 1,
      stdout: expect.stringContaining('replayed 0, skipped 0, failed 2') as string,
      stderr: expect.stringContaining(
        "error: NOT_FOUND: queue 'work' does not exist; 2 stay in 'work.dlq'",
      ) as string,
    });
  });

  it("shows why a message died: its handler's last error, message and stack", async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareExchange('dlx', 'fanout');
    await sluice.declareQueue('work.dlq');
    await sluice.bindQueue('work.dlq', 'dlx');
    await sluice.declareQueue('work', { deadLetterExchange: 'dlx', maxDeliveries: 2 });
    const { messageId } = await sluice.publish('', 'work', { orderId: 7 });
    const consumer = await sluice.consume(
      'work',
      (msg) => {
        throw new Error(`card declined\non attempt ${msg.deliveryCount}`);
      },
      { retry: false },
    );
    await waitFor(() => consumer.stats.deadLettered.delivery_limit === 1);
    await consumer.close();
    await waitFor(async () => (await sluice.inspectQueue('work.dlq')).messages === 1);

    const shown = JSON.parse(await sluiceCli(namespace, 'dlq', 'show', 'work.dlq', messageId)) as {
      deathHistory: { deaths: { reason: string; lastError: { message: string; stack: string } }[] };
    };
    const [death] = shown.deathHistory.deaths;
    expect(death?.reason).toBe('delivery_limit');
    expect(death?.lastError.message).toBe('card declined\non attempt 2');
    expect(death?.lastError.stack).toMatch(/^Error: card declined\non attempt 2\n {4}at /u);
    expect(shown).toEqual(JSON.parse(JSON.stringify(await sluice.dlq.show('work.dlq', messageId))));
    const listing = await sluiceCli(namespace, 'dlq', 'list', 'work.dlq');
    expect(listing.trim().split('\n')).toEqual([
      expect.stringMatching(
        /delivery_limit in work x1 {2}dlx work {2}last error: "card declined\\non attempt 2"$/u,
      ),
    ]);
  });

  it('reports a missing queue as a typed error and exits with 3', async () => {
    const { namespace } = await useSluice();
    const failure = await runCli(namespace, ['dlq', 'list', 'ghost']);
    expect(failure).toMatchObject({
      code: 3,
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
    // Earlier replays took two messages into the outbox and died before routing them: one to a
    // queue that still exists (through the default exchange, as `toQueue` does), one back to the
    // queue it died in (as by default), deleted since.
    const take = (entryId: string, route: ReplayRoute): Promise<unknown> =>
      redis.eval(
        scriptBodies.get('take') as string,
        2,
        keys.stream,
        keys.deadLetters,
        'sluice',
        entryId,
        JSON.stringify(route),
        Date.now(),
      );
    await sluice.declareQueue('elsewhere');
    expect(await take(taken as string, { exchange: '', routingKey: 'elsewhere' })).toBe('ok');
    await sluice.declareQueue('doomed');
    const back = { exchange: 'orders', routingKey: 'order.created', queue: 'doomed' };
    expect(await take(kept as string, back)).toBe('ok');
    await sluice.deleteQueue('doomed');
    expect(await redis.xlen(keys.stream)).toBe(0);

    const result = await sluice.dlq.replay('work.dlq', { toQueue: 'work' });
    expect(await redis.xlen(keys.deadLetters)).toBe(0);
    expect(await redis.xlen(streamKey(namespace, 'elsewhere'))).toBe(1);
    // The one whose route is gone came back, and this replay sent it to `work`.
    expect(result).toEqual(replayedAll(1));
    const work = await redis.xrange(streamKey(namespace, 'work'), '-', '+');
    expect(work.map(([, fields]) => entryMessageId(fields))).toEqual([keptMessageId]);
  });
});
