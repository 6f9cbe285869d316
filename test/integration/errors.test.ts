/**
 * Typed failures of the operations other than publishing: the database a URL names is used or
 * refused, never swapped for database 0; arguments Redis would refuse are refused before
 * anything is sent; what Redis refuses is a ServerError; a closed client says CLOSED.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { Keyspace } from '../../src/keys/index.js';
import {
  ClosedError,
  InvalidArgumentError,
  NotFoundError,
  ServerError,
  Sluice,
  UnsupportedError,
} from '../../src/index.js';
import {
  connectRedis,
  redisServer,
  redisUrl,
  startExtraRedis,
  testNamespace,
  waitFor,
} from '../support/index.js';
import { startClusterNode } from '../../scripts/local-redis.js';
import { useSluice } from '../support/sluice.js';

/** The project's Redis URL with `path` as its path, e.g. `/3`. */
function urlWithPath(path: string): string {
  const url = new URL(redisUrl());
  url.pathname = path;
  return url.toString();
}

/** Number of keys in each database of the server, from INFO keyspace. */
async function keysPerDatabase(url: string): Promise<Map<number, number>> {
  const keyspace = await connectRedis({}, url).info('keyspace');
  return new Map(
    [...keyspace.matchAll(/^db(\d+):keys=(\d+)/gmu)].map(([, db, keys]) => [
      Number(db),
      Number(keys),
    ]),
  );
}

describe('the database of a redis:// URL', () => {
  it('is the one every connection uses, the reader connections of consumers included', async () => {
    // A standalone server of its own: a cluster-mode one has database 0 only.
    const server = await startExtraRedis();
    const namespace = testNamespace();
    const db3 = connectRedis({ db: 3 }, server.url);
    const db0 = connectRedis({ db: 0 }, server.url);
    const sluice = await Sluice.connect({ url: `${server.url}/3`, namespace });
    onTestFinished(() => sluice.close());

    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'hello');
    const received: unknown[] = [];
    await sluice.consume('q', (msg) => {
      received.push(msg.body);
    });
    await waitFor(() => received.length === 1);

    const pattern = `${namespace}:*`;
    expect((await db3.keys(pattern)).length).toBeGreaterThan(0);
    expect(await db0.keys(pattern)).toEqual([]);
    expect(received).toEqual(['hello']);
  });

  it('other than 0 is refused with UnsupportedError by a cluster-mode server', async () => {
    const node = await startClusterNode({ binary: redisServer().binary });
    onTestFinished(() => node.dispose());
    await expect(
      Sluice.connect({ url: `${node.url}/1`, namespace: testNamespace() }),
    ).rejects.toBeInstanceOf(UnsupportedError);
  });

  it('is refused with UnsupportedError when the server does not have it; nothing is written', async () => {
    const server = await startExtraRedis(['--databases', '2']);
    const connecting = Sluice.connect({ url: `${server.url}/5`, namespace: testNamespace() });
    await expect(connecting).rejects.toBeInstanceOf(UnsupportedError);
    await expect(connecting).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(/database 5/u) as unknown,
    });
    expect(await keysPerDatabase(server.url)).toEqual(new Map());
  });

  it('is refused with InvalidArgumentError, before connecting, when it is not a number', async () => {
    for (const path of ['/abc', '/1.5', '/-1', '/5/x', '/99999999999']) {
      await expect(
        Sluice.connect({ url: urlWithPath(path), namespace: testNamespace() }),
        path,
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });
});

describe('operationTimeoutMs', () => {
  it('must be an integer from 100 ms to 1 h, checked before connecting', async () => {
    // Nothing listens on port 1: any attempt to connect would fail with ConnectionError.
    for (const operationTimeoutMs of [0, 99, 1.5, Number.NaN, 3_600_001, '1000', 10n]) {
      await expect(
        Sluice.connect({
          url: 'redis://127.0.0.1:1',
          operationTimeoutMs: operationTimeoutMs as number,
        }),
        String(operationTimeoutMs),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });
});

describe('stream ids of the dlq tools', () => {
  const PAST_64_BITS = [
    '18446744073709551616-0',
    '0-18446744073709551616',
    '99999999999999999999-1',
  ];

  it('past 64 bits are refused before anything is sent (even for a queue that does not exist)', async () => {
    const { sluice } = await useSluice();
    for (const id of PAST_64_BITS) {
      await expect(sluice.dlq.list('missing', { after: id }), id).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      await expect(sluice.dlq.show('missing', id), id).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('as `after`, must be a string: an array, a number, an object or a symbol is refused', async () => {
    const { sluice } = await useSluice();
    for (const after of [['1-0'], 1, { toString: () => '1-0' }, Symbol('1-0'), null]) {
      await expect(
        sluice.dlq.list('missing', { after: after as unknown as string }),
        String(typeof after),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('up to 64 bits are read; after the largest one there is nothing', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.publish('', 'q', 'one');
    const largest = '18446744073709551615-18446744073709551615';
    await expect(sluice.dlq.list('q', { after: largest })).resolves.toEqual({
      messages: [],
      next: undefined,
    });
    await expect(
      sluice.dlq.list('q', { after: '18446744073709551615-18446744073709551614' }),
    ).resolves.toEqual({ messages: [], next: undefined });
    await expect(sluice.dlq.show('q', largest)).rejects.toBeInstanceOf(NotFoundError);
    await expect(sluice.dlq.list('missing', { after: largest })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect((await sluice.dlq.list('q', { after: '0-0' })).messages).toHaveLength(1);
  });
});

describe('what Redis refuses', () => {
  it('reaches the caller of a declaration or a read as ServerError, with the reply as cause', async () => {
    const { sluice, redis, namespace } = await useSluice();
    // The queue records are a hash; a string there makes every command on it a WRONGTYPE.
    await redis.set(new Keyspace(namespace).topologyQueues, 'not a hash');
    // One call at a time: a call made before the one awaited would reject unobserved meanwhile.
    for (const call of [
      () => sluice.declareQueue('q'),
      () => sluice.inspectQueue('q'),
      () => sluice.dlq.list('q'),
      () => sluice.dlq.show('q', '1-0'),
    ]) {
      const error: unknown = await call().catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(ServerError);
      expect(error).toMatchObject({ code: 'SERVER', retriable: false });
      expect((error as ServerError).cause).toMatchObject({ name: 'ReplyError' });
      expect((error as Error).message).toMatch(/WRONGTYPE/u);
    }
  });
});

describe('a closed client', () => {
  it('rejects every admin call and every dlq tool with ClosedError', async () => {
    const { sluice } = await useSluice();
    await sluice.declareQueue('q');
    await sluice.close();
    for (const call of [
      () => sluice.dlq.list('q'),
      () => sluice.dlq.show('q', '1-0'),
      () => sluice.dlq.replay('q'),
      () => sluice.dlq.purge('q'),
      () => sluice.declareQueue('q'),
      () => sluice.inspectQueue('q'),
      () => sluice.bindQueue('q', 'x', 'k'),
      () => sluice.deleteQueue('q'),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(ClosedError);
    }
  });
});
