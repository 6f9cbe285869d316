import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConnectionError, InvalidArgumentError, Sluice } from '../../src/index.js';
import { connectRedis, redisServer, redisUrl, testNamespace, waitFor } from '../support/index.js';

/** A TCP server that accepts connections and never answers, closed after the test. */
async function silentServer(): Promise<Server> {
  // Reads what it is sent (so it sees the client's FIN) and answers nothing.
  const server: Server = createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    server.close();
  });
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

async function clientCount(admin: Redis, name: string): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

describe('Sluice.connect', () => {
  it('reports the server and its features', async () => {
    const sluice = await Sluice.connect({ url: redisUrl(), namespace: testNamespace() });
    onTestFinished(() => sluice.close());
    expect(sluice.server.name).toBe(redisServer().kind);
    expect(sluice.server.version).toBe(redisServer().version);
    expect(sluice.server.features.waitAof).toBe(redisServer().kind === 'valkey');
  });

  it('never closes a client passed in, and closes the connections it opened itself', async () => {
    const admin = connectRedis();
    const name = `sluice-${testNamespace()}`;
    const mine = new Redis(redisUrl(), { connectionName: name });
    onTestFinished(() => mine.disconnect());
    const sluice = await Sluice.connect({ redis: mine, namespace: testNamespace() });
    await sluice.declareQueue('q');
    await sluice.consume('q', () => undefined);
    // The consumer reads on a duplicate of the client, with the same name.
    await waitFor(async () => (await clientCount(admin, name)) === 2);
    await sluice.close();
    await waitFor(async () => (await clientCount(admin, name)) === 1);
    expect(mine.status).toBe('ready');
    expect(await mine.ping()).toBe('PONG');
  });

  it('closes the client it created from a URL', async () => {
    const admin = connectRedis();
    const name = `sluice-${testNamespace()}`;
    const url = new URL(redisUrl());
    url.searchParams.set('connectionName', name);
    const before = await clientCount(admin, name);
    const sluice = await Sluice.connect({ url: url.toString(), namespace: testNamespace() });
    await waitFor(async () => (await clientCount(admin, name)) === before + 1);
    await sluice.close();
    await waitFor(async () => (await clientCount(admin, name)) === before);
  });

  it('fails with ConnectionError when nothing listens', async () => {
    // A port that was free a moment ago: the connection is refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const address = probe.address();
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    if (address === null || typeof address === 'string') throw new Error('no port');
    await expect(
      Sluice.connect({ url: `redis://127.0.0.1:${address.port}`, connectTimeoutMs: 1000 }),
    ).rejects.toBeInstanceOf(ConnectionError);
  });

  it('fails with ConnectionError within connectTimeoutMs when the server never answers', async () => {
    const server = await silentServer();
    const error: unknown = await Sluice.connect({
      url: `redis://127.0.0.1:${portOf(server)}`,
      connectTimeoutMs: 300,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).retriable).toBe(true);
    // Nothing is left behind trying to reconnect.
    await waitFor(async () => (await openConnections(server)) === 0);
  });

  it('validates its options before connecting', async () => {
    const bad = [
      { url: 'http://127.0.0.1:6379' },
      { redis: {} as Redis },
      { url: redisUrl(), namespace: 'a:b' },
      { url: redisUrl(), connectTimeoutMs: 0 },
      { url: redisUrl(), maxBodyBytes: -1 },
    ];
    for (const options of bad) {
      await expect(Sluice.connect(options)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });
});
