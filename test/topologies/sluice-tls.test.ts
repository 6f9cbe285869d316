/**
 * sluice over TLS (issue E): Sluice.connect to a TLS-only server that asks every client for a
 * certificate (`tls-auth-clients yes`), with a CA and client certificate made by openssl.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import {
  makeTempDir,
  removeTempDir,
  startRedisServer,
  waitFor,
  type RedisServerHandle,
  type TlsFiles,
} from '../../scripts/local-redis.js';
import {
  ConnectionError,
  Sluice,
  type ConnectOptions,
  type ServerLocation,
  type TlsOptions,
} from '../../src/index.js';
import { createTlsMaterial } from '../support/tls.js';

/**
 * Bounds a connect: a refused handshake must fail well within it, not retry until it passes
 * (which would end in a TimeoutError-caused ConnectionError just the same).
 */
const CONNECT_TIMEOUT_MS = 3000;

describe('Sluice.connect over TLS', () => {
  let dir: string | undefined;
  let files: TlsFiles | undefined;
  /** A CA the server's certificate was not signed by, and a client certificate it signed. */
  let strangers: TlsFiles | undefined;
  let server: RedisServerHandle | undefined;

  beforeAll(async () => {
    dir = makeTempDir('sluice-tls-connect-');
    const strangerDir = join(dir, 'strangers');
    mkdirSync(strangerDir);
    [files, strangers] = await Promise.all([
      createTlsMaterial(dir),
      createTlsMaterial(strangerDir),
    ]);
    server = await startRedisServer({
      binary: inject('redisServerBinary'),
      tls: { files, authClients: 'yes' },
    });
  });

  afterAll(async () => {
    await server?.dispose();
    if (dir !== undefined) removeTempDir(dir);
  });

  function started(): { url: string; port: number; own: TlsFiles; foreign: TlsFiles } {
    if (server === undefined || files === undefined || strangers === undefined) {
      throw new Error('TLS server not started');
    }
    return { url: server.url, port: server.port, own: files, foreign: strangers };
  }

  /** The CA and client certificate of `material`, as Sluice.connect's `tls` takes them. */
  function credentials(material: TlsFiles, withClientCertificate = true): TlsOptions {
    const ca = readFileSync(material.caCertFile);
    if (!withClientCertificate) return { ca };
    return {
      ca,
      cert: readFileSync(material.clientCertFile),
      key: readFileSync(material.clientKeyFile),
    };
  }

  async function connect(
    tls: TlsOptions,
    namespace: string,
    location: ServerLocation = { url: started().url },
  ): Promise<Sluice> {
    const options: ConnectOptions = {
      ...location,
      tls,
      namespace,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    };
    const client = await Sluice.connect(options);
    onTestFinished(() => client.close());
    return client;
  }

  /** The error `Sluice.connect` rejects with, and how long it took. */
  async function refusedConnect(tls: TlsOptions): Promise<{ error: unknown; elapsedMs: number }> {
    const startedAt = Date.now();
    const error: unknown = await connect(tls, 'refused').then(
      () => 'connected',
      (cause: unknown) => cause,
    );
    return { error, elapsedMs: Date.now() - startedAt };
  }

  /** Publishes to a new queue of `sluice` and consumes the message back. */
  async function roundTrip(sluice: Sluice): Promise<void> {
    await sluice.declareQueue('jobs');
    const confirm = await sluice.publish('', 'jobs', { job: 1 }, { messageId: 'over-tls' });
    expect(confirm.targets.map(({ queue }) => queue)).toEqual(['jobs']);
    const received: unknown[] = [];
    const consumer = await sluice.consume('jobs', (message) => {
      received.push({ id: message.messageId, body: message.body });
    });
    onTestFinished(() => consumer.close());
    await waitFor(() => consumer.stats.acked === 1, { description: 'the message acked' });
    expect(received).toEqual([{ id: 'over-tls', body: { job: 1 } }]);
    expect(await sluice.inspectQueue('jobs')).toMatchObject({ messages: 0, unacked: 0 });
  }

  it('publishes and consumes with the CA and a client certificate, on a rediss:// URL', async () => {
    const { url, own } = started();
    expect(url).toMatch(/^rediss:\/\//u);
    await roundTrip(await connect(credentials(own), 'tls-round-trip'));
  });

  it('reaches over TLS the primary a Sentinel names', async () => {
    const { port, own } = started();
    // A plain Sentinel that names the TLS server as the primary of `tls-primary`: it cannot
    // monitor it (no TLS of its own), but it answers GET-MASTER-ADDR-BY-NAME all the same,
    // which is all a client asks it. The tls option is for the data servers.
    const sentinelDir = join(dir ?? '', 'sentinel');
    mkdirSync(sentinelDir);
    const config = join(sentinelDir, 'sentinel.conf');
    writeFileSync(config, `sentinel monitor tls-primary 127.0.0.1 ${port} 1\n`);
    const sentinel = await startRedisServer({
      binary: inject('redisServerBinary'),
      dir: sentinelDir,
      args: [config, '--sentinel'],
    });
    onTestFinished(() => sentinel.dispose());
    const location = {
      sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
      name: 'tls-primary',
    };
    await roundTrip(await connect(credentials(own), 'tls-sentinel', location));
  });

  it('fails with ConnectionError, within the connect timeout, without a client certificate', async () => {
    const { error, elapsedMs } = await refusedConnect(credentials(started().own, false));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'CONNECTION', retriable: true });
    // For the operator: the server's alert, or its reset when it ends the handshake first.
    expect((error as ConnectionError).message).toMatch(/certificate required|ECONNRESET/u);
    expect(elapsedMs).toBeLessThan(CONNECT_TIMEOUT_MS);
  });

  it('fails with ConnectionError, within the connect timeout, when it trusts another CA', async () => {
    // A certificate and key of the other CA too: the client refuses the server first.
    const { error, elapsedMs } = await refusedConnect(credentials(started().foreign));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'CONNECTION', retriable: true });
    expect((error as ConnectionError).message).toMatch(/self[- ]signed|unable to verify/u);
    expect(elapsedMs).toBeLessThan(CONNECT_TIMEOUT_MS);
  });
});
