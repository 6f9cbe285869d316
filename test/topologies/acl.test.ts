import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { startRedisServer, waitFor, type RedisServerHandle } from '../../scripts/local-redis.js';
import { parseServerInfo } from '../../src/connection/connection.js';
import { AccessRefusedError, Sluice, type Delivery } from '../../src/index.js';
import { Keyspace } from '../../src/keys/index.js';
import {
  createAclUser,
  namespaceKeyPatterns,
  sluiceAclRules,
  type AclCredentials,
  type SluiceRole,
} from '../support/acl.js';

describe('ACL users of a sluice namespace', () => {
  let server: RedisServerHandle | undefined;
  let root: Redis | undefined;
  let waitAof = true;

  beforeAll(async () => {
    server = await startRedisServer({ binary: inject('redisServerBinary') });
    root = new Redis(server.url);
    waitAof = parseServerInfo(await root.info('server')).features.waitAof;
  });

  afterAll(async () => {
    root?.disconnect();
    await server?.dispose();
  });

  function admin(): Redis {
    if (root === undefined) throw new Error('server not started');
    return root;
  }

  /** A user with only the rules of `role` in `namespace`. */
  function roleUser(namespace: string, role: SluiceRole): Promise<AclCredentials> {
    return createAclUser(admin(), {
      name: `${namespace}-${role}`,
      password: `secret-${role}`,
      rules: sluiceAclRules(namespace, role, { waitAof }),
    });
  }

  /** Whether `user` may run `args` (ACL DRYRUN: checked, not run). */
  async function allowed(user: AclCredentials, ...args: string[]): Promise<boolean> {
    return (await admin().call('ACL', 'DRYRUN', user.username, ...args)) === 'OK';
  }

  function connect(user: AclCredentials, namespace: string): Promise<Sluice> {
    const { username, password } = user;
    return Sluice.connect({
      url: `redis://${username}:${password}@127.0.0.1:${server?.port ?? 0}`,
      namespace,
    });
  }

  /** A client of `namespace` as the default user (every right), closed when the test finishes. */
  async function connectAsRoot(namespace: string): Promise<Sluice> {
    const client = await Sluice.connect({ url: server?.url ?? '', namespace });
    onTestFinished(() => client.close());
    return client;
  }

  /** An ioredis client logged in as `user`, for raw commands; closed when the test finishes. */
  function rawClient(user: AclCredentials): Redis {
    const client = new Redis({ port: server?.port ?? 0, ...user, maxRetriesPerRequest: 0 });
    onTestFinished(() => client.disconnect());
    return client;
  }

  /** The AccessRefusedError `operation` rejects with; fails the test if it does anything else. */
  async function refusal(operation: Promise<unknown>): Promise<AccessRefusedError> {
    const outcome: unknown = await operation.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(AccessRefusedError);
    return outcome as AccessRefusedError;
  }

  /** B's topology, made by its admin: exchange `orders` → queue `billing`, one message in it. */
  async function namespaceWithMessage(namespace: string): Promise<Sluice> {
    const owner = await connectAsRoot(namespace);
    await owner.declareExchange('orders', 'topic');
    await owner.declareQueue('billing');
    await owner.bindQueue('billing', 'orders', 'order.#');
    await owner.publish('orders', 'order.created', { total: 1 }, { messageId: 'kept' });
    return owner;
  }

  it('lets a user touch the keys of its own namespace only, not of one its name is a prefix of', async () => {
    const patterns = namespaceKeyPatterns('app');
    const user = await createAclUser(admin(), {
      name: 'app-raw',
      password: 'secret',
      rules: ['+get', '+set', `~${patterns.topology}`, `~${patterns.queues}`],
    });
    const own = new Keyspace('app');
    expect(await allowed(user, 'SET', own.topologyVersion, '1')).toBe(true);
    expect(await allowed(user, 'SET', own.queue('jobs').stream, '1')).toBe(true);
    for (const other of ['app2', 'ap', 'apps', 'x']) {
      const keys = new Keyspace(other);
      expect(await allowed(user, 'GET', keys.topologyVersion)).toBe(false);
      expect(await allowed(user, 'GET', keys.queue('jobs').stream)).toBe(false);
    }
    expect(await allowed(user, 'GET', 'app:stray')).toBe(false);
    expect(await allowed(user, 'GET', 'app')).toBe(false);
  });

  it('escapes glob characters in a namespace name', async () => {
    const user = await roleUser('a*b', 'admin');
    expect(await allowed(user, 'GET', new Keyspace('a*b').topologyVersion)).toBe(true);
    expect(await allowed(user, 'GET', new Keyspace('aXb').topologyVersion)).toBe(false);
  });

  it('lets each role do its job with its own rules, and a producer not change the topology', async () => {
    const namespace = 'shop';
    const [adminUser, producerUser, consumerUser] = await Promise.all(
      (['admin', 'producer', 'consumer'] as const).map((role) => roleUser(namespace, role)),
    );
    const connected = await Promise.allSettled(
      [adminUser, producerUser, consumerUser].map((user) =>
        connect(user as AclCredentials, namespace),
      ),
    );
    const clients = connected.flatMap((result) =>
      result.status === 'fulfilled' ? [result.value] : [],
    );
    try {
      for (const result of connected) if (result.status === 'rejected') throw result.reason;
      const [adminSluice, producer, consumerSluice] = clients as [Sluice, Sluice, Sluice];
      await adminSluice.declareExchange('orders', 'topic');
      await adminSluice.declareQueue('billing');
      await adminSluice.bindQueue('billing', 'orders', 'order.#');
      await producer.publish('orders', 'order.created', { total: 10 });
      // A declaration first reads the queue's record (HGET), a command producers lack.
      expect((await refusal(producer.declareQueue('other'))).permission).toBe("command 'hget'");
      const seen: Delivery[] = [];
      const consumer = await consumerSluice.consume('billing', (message) => {
        seen.push(message);
      });
      await waitFor(() => consumer.stats.acked === 1, { timeoutMs: 10_000 });
      await consumer.close();
      expect(seen.map((message) => message.body)).toEqual([{ total: 10 }]);
      expect(await adminSluice.inspectQueue('billing')).toMatchObject({ messages: 0 });
      await adminSluice.deleteQueue('billing');
      // An overflow dead-letters the oldest, dropped without a dead-letter exchange: the
      // producer's scripts count both in the queue's stats hash.
      await adminSluice.declareQueue('latest', { maxLength: 1, overflow: 'drop-head' });
      await producer.publish('', 'latest', 1);
      await producer.publish('', 'latest', 2);
      await waitFor(async () => (await adminSluice.stats('latest')).totals.dropped === 1, {
        timeoutMs: 10_000,
      });
      expect((await adminSluice.stats('latest')).totals.deadLettered.maxlen).toBe(1);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  it('keeps a producer of namespace A out of namespace B: no publish, read, purge, delete or raw command there', async () => {
    const owner = await namespaceWithMessage('acl-b');
    const producerOfA = await roleUser('acl-a', 'producer');
    // sluice itself, as A's producer pointed at B: every operation refused, naming why.
    const intruder = await connect(producerOfA, 'acl-b');
    onTestFinished(() => intruder.close());
    // Routing reads B's topology, which is not A's to read.
    expect((await refusal(intruder.publish('orders', 'order.created', 2))).permission).toBe('key');
    expect((await refusal(intruder.publish('', 'billing', 2))).permission).toBe('key');
    expect((await refusal(intruder.consume('billing', () => undefined))).permission).toBe('key');
    // A producer has no HGET at all (the queue record's read), in any namespace.
    for (const operation of [
      () => intruder.inspectQueue('billing'),
      () => intruder.peekQueue('billing'),
      () => intruder.purgeQueue('billing'),
      () => intruder.deleteQueue('billing'),
    ]) {
      expect((await refusal(operation())).permission).toBe("command 'hget'");
    }
    // The topology is read-only to a producer even in its own namespace; B's is not A's at all.
    expect((await refusal(intruder.deleteExchange('orders'))).permission).toBe('key');

    // Raw commands the producer's rules grant, on B's keys: refused for the keys alone, as the
    // same commands on A's keys are allowed.
    const commandsOn = (namespace: string): [string, ...string[]][] => {
      const keys = new Keyspace(namespace);
      const queue = keys.queue('billing');
      return [
        ['XRANGE', queue.stream, '-', '+'],
        ['XADD', queue.stream, '*', 'f', 'v'],
        ['XDEL', queue.stream, '0-1'],
        ['DEL', queue.stream],
        ['HSET', queue.stats, 'f', 'v'],
        ['GET', keys.topologyVersion],
        ['HGETALL', keys.topologyQueues],
      ];
    };
    for (const [name, ...args] of commandsOn('acl-a')) {
      expect(await allowed(producerOfA, name, ...args)).toBe(true);
    }
    const raw = rawClient(producerOfA);
    for (const [name, ...args] of commandsOn('acl-b')) {
      // ioredis's reply error, not sluice's: NOPERM is Redis's and Valkey's code for it.
      await expect(raw.call(name, ...args)).rejects.toMatchObject({
        name: 'ReplyError',
        message: expect.stringMatching(/^NOPERM /u) as unknown,
      });
    }

    // B is as it was: its exchange routes, its queue holds its one message.
    expect(await owner.inspectQueue('billing')).toMatchObject({ messages: 1, unacked: 0 });
    expect(await owner.peekQueue('billing')).toMatchObject([{ messageId: 'kept' }]);
  });

  it('refuses a consumer every change of the topology, naming the missing permission, and lets it consume', async () => {
    const owner = await namespaceWithMessage('acl-c');
    const before = await owner.listTopology();
    const consumerSluice = await connect(await roleUser('acl-c', 'consumer'), 'acl-c');
    onTestFinished(() => consumerSluice.close());
    // Each one writes the topology's keys, which a consumer may only read (%R~).
    const changes = {
      declareExchange: () => consumerSluice.declareExchange('audit', 'fanout'),
      deleteExchange: () => consumerSluice.deleteExchange('orders'),
      bindQueue: () => consumerSluice.bindQueue('billing', 'orders', 'invoice.#'),
      unbindQueue: () => consumerSluice.unbindQueue('billing', 'orders', 'order.#'),
      declareQueue: () => consumerSluice.declareQueue('audit'),
      deleteQueue: () => consumerSluice.deleteQueue('billing'),
    };
    for (const [operation, change] of Object.entries(changes)) {
      const error = await refusal(change());
      expect({ operation, permission: error.permission }).toEqual({ operation, permission: 'key' });
      expect(error.code).toBe('ACCESS_REFUSED');
    }
    expect(await owner.listTopology()).toEqual(before);

    // What a consumer is for still works.
    const seen: string[] = [];
    const consumer = await consumerSluice.consume('billing', (message) => {
      seen.push(message.messageId);
    });
    onTestFinished(() => consumer.close());
    await waitFor(() => consumer.stats.acked === 1, { timeoutMs: 10_000 });
    expect(seen).toEqual(['kept']);
  });
});
