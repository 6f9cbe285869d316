import { describe, expect, it } from 'vitest';
import {
  connectRedis,
  deleteNamespaceKeys,
  readServerInfo,
  redisServer,
  startExtraRedis,
  testNamespace,
  useNamespace,
  waitFor,
} from '../support/index.js';

describe('test harness', () => {
  it('provides a Redis that answers PING', async () => {
    const redis = connectRedis();
    expect(await redis.ping()).toBe('PONG');
  });

  it('provides the kind of server the project runs against', async () => {
    const info = await readServerInfo(connectRedis());
    expect(info).toEqual({ kind: redisServer().kind, version: redisServer().version });
    if (redisServer().source === 'spawned') {
      expect(info.kind).toBe(redisServer().binary === 'valkey-server' ? 'valkey' : 'redis');
    }
  });

  describe('namespaces', () => {
    const seen: string[] = [];

    it('gives this test a namespace', () => {
      seen.push(useNamespace().namespace);
      expect(seen[0]).toMatch(/^t-[0-9a-f]{12}$/);
    });

    it('gives the next test another one', () => {
      seen.push(useNamespace().namespace);
      expect(seen).toHaveLength(2);
      expect(seen[1]).not.toBe(seen[0]);
    });
  });

  it('cleanup deletes the namespace keys and nothing else', async () => {
    const { namespace, redis } = useNamespace();
    const other = testNamespace();
    const mine = [
      `${namespace}:{${namespace}}:topology:version`,
      `${namespace}:{${namespace}:q:orders:0}:stream`,
    ];
    const notMine = [`${other}:{${other}}:topology:version`, `${namespace}-lookalike`];
    for (const key of [...mine, ...notMine]) await redis.set(key, '1');

    expect(await deleteNamespaceKeys(redis, namespace)).toBe(mine.length);

    // One key per command: the keys lie in several slots (the cluster-node project refuses more).
    for (const key of mine) expect(await redis.exists(key)).toBe(0);
    for (const key of notMine) expect(await redis.exists(key)).toBe(1);
    for (const key of notMine) await redis.unlink(key);
  });

  it('an extra server with AOF keeps a key across SIGKILL and restart', async () => {
    const server = await startExtraRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    const redis = connectRedis({ maxRetriesPerRequest: null }, server.url);
    await redis.set('survivor', 'yes');
    const pidBefore = server.pid;

    await server.kill('SIGKILL');
    await server.restart();

    expect(server.pid).not.toBe(pidBefore);
    expect(await redis.get('survivor')).toBe('yes');
  });

  it('an extra server without AOF loses its keys on SIGKILL', async () => {
    const server = await startExtraRedis();
    const redis = connectRedis({ maxRetriesPerRequest: null }, server.url);
    await redis.set('ephemeral', 'yes');

    await server.kill('SIGKILL');
    await server.restart();

    expect(await redis.get('ephemeral')).toBeNull();
  });

  it('SIGSTOP makes PING time out and SIGCONT restores it', async () => {
    const server = await startExtraRedis();
    const redis = connectRedis({ commandTimeout: 300 }, server.url);
    expect(await redis.ping()).toBe('PONG');

    await server.kill('SIGSTOP');
    await expect(redis.ping()).rejects.toThrow(/timed out/i);

    await server.kill('SIGCONT');
    await waitFor(async () => (await redis.ping()) === 'PONG', {
      timeoutMs: 5000,
      description: 'PING answered after SIGCONT',
    });
  });

  it('stop shuts an extra server down and restart brings it back on the same port', async () => {
    const server = await startExtraRedis();
    const probe = connectRedis({ lazyConnect: true, retryStrategy: () => null }, server.url);

    await server.stop();
    await expect(probe.connect()).rejects.toThrow();

    await server.restart();
    expect(await connectRedis({}, server.url).ping()).toBe('PONG');
  });
});
