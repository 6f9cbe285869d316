import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedisServer, waitFor, type RedisServerHandle } from '../../scripts/local-redis.js';
import { parseServerInfo } from '../../src/connection/connection.js';
import { Sluice, type Delivery } from '../../src/index.js';
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
      await expect(producer.declareQueue('other')).rejects.toThrow(/NOPERM|no permissions/u);
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
});
