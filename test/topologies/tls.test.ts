import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  makeTempDir,
  removeTempDir,
  startRedisServer,
  type RedisServerHandle,
  type TlsFiles,
} from '../../scripts/local-redis.js';
import { createTlsMaterial } from '../support/tls.js';

describe('a TLS-only server', () => {
  let dir: string | undefined;
  let files: TlsFiles | undefined;
  let required: RedisServerHandle | undefined;
  let optional: RedisServerHandle | undefined;

  beforeAll(async () => {
    dir = makeTempDir('sluice-tls-');
    files = await createTlsMaterial(dir);
    const binary = inject('redisServerBinary');
    [required, optional] = await Promise.all([
      startRedisServer({ binary, tls: { files, authClients: 'yes' } }),
      startRedisServer({ binary, tls: { files, authClients: 'optional' } }),
    ]);
  });

  afterAll(async () => {
    await Promise.allSettled([required?.dispose(), optional?.dispose()]);
    if (dir !== undefined) removeTempDir(dir);
  });

  function material(): TlsFiles {
    if (files === undefined) throw new Error('no TLS material');
    return files;
  }

  /**
   * PING from a client of `server` that tries once; a refused handshake rejects with the TLS
   * error (ioredis itself only says the connection closed).
   */
  async function connectOnce(
    server: RedisServerHandle | undefined,
    tls: NonNullable<RedisOptions['tls']>,
  ): Promise<string> {
    if (server === undefined) throw new Error('server not started');
    const client = new Redis(server.port, '127.0.0.1', {
      tls,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    let tlsError: Error | undefined;
    client.on('error', (error: Error) => (tlsError ??= error));
    try {
      await client.connect();
      return await client.ping();
    } catch (error) {
      throw tlsError ?? error;
    } finally {
      client.disconnect();
    }
  }

  it('has a rediss:// URL', () => {
    expect(required?.url).toBe(`rediss://127.0.0.1:${required?.port}`);
  });

  it('answers a client with a certificate the CA signed', async () => {
    const { caCertFile, clientCertFile, clientKeyFile } = material();
    const [ca, cert, key] = [caCertFile, clientCertFile, clientKeyFile].map((file) =>
      readFileSync(file),
    );
    expect(await connectOnce(required, { ca, cert, key })).toBe('PONG');
  });

  it('refuses a client without a certificate when tls-auth-clients is yes', async () => {
    const ca = readFileSync(material().caCertFile);
    // The server ends the handshake with an alert, or resets the connection before it arrives.
    await expect(connectOnce(required, { ca })).rejects.toThrow(/certificate required|ECONNRESET/u);
  });

  it('accepts a client without a certificate when tls-auth-clients is optional', async () => {
    const ca = readFileSync(material().caCertFile);
    expect(await connectOnce(optional, { ca })).toBe('PONG');
  });

  it('is refused by a client that does not trust its CA', async () => {
    await expect(connectOnce(required, {})).rejects.toThrow(/unable to verify|self[- ]signed/u);
  });
});
