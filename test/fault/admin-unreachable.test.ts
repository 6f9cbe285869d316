/**
 * The operations other than publishing — declarations, reads, the DLQ tools — and close() when
 * Redis does not answer (stopped, or behind a black hole): every call settles by
 * `operationTimeoutMs` with a typed error, close() finishes within a few seconds, transient
 * refusals are retried, and no connection sluice owns prints an unhandled error event.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Connection } from '../../src/connection/connection.js';
import { ClosedError, Sluice, TimeoutError } from '../../src/index.js';
import { connectRedis, startExtraRedis, testNamespace, waitFor } from '../support/index.js';
import { startProxy } from '../support/proxy.js';
import { rejection } from '../support/rejection.js';

const OPERATION_TIMEOUT_MS = 1000;
/** Timers and a loaded CI machine: how late a rejection may come after its deadline. */
const SLACK_MS = 1000;
/** close() bounds its QUIT by 2 s; then it drops the connections. */
const CLOSE_BOUND_MS = 2000 + SLACK_MS;

const outageProcess = fileURLToPath(new URL('../support/outage-process.ts', import.meta.url));

/** A client with queue `q` declared, closed when the test finishes. */
async function connect(url: string, operationTimeoutMs = OPERATION_TIMEOUT_MS): Promise<Sluice> {
  const sluice = await Sluice.connect({ url, namespace: testNamespace(), operationTimeoutMs });
  onTestFinished(() => sluice.close());
  await sluice.declareQueue('q');
  return sluice;
}

/** declareQueue, inspectQueue, dlq.list and consume all reject with TimeoutError by their deadline. */
async function expectAdminTimeouts(sluice: Sluice): Promise<void> {
  const results = await Promise.all([
    rejection(sluice.declareQueue('q2')),
    rejection(sluice.inspectQueue('q')),
    rejection(sluice.dlq.list('q')),
    rejection(sluice.consume('q', () => undefined)),
  ]);
  for (const { error, elapsedMs } of results) {
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'TIMEOUT', retriable: true });
    expect(elapsedMs).toBeGreaterThanOrEqual(OPERATION_TIMEOUT_MS - 10);
    expect(elapsedMs).toBeLessThan(OPERATION_TIMEOUT_MS + SLACK_MS);
  }
}

/** close() resolves within a few seconds; what was in flight and what comes after is CLOSED. */
async function expectBoundedClose(sluice: Sluice): Promise<void> {
  const inFlight = rejection(sluice.declareQueue('q3'));
  const startedAt = Date.now();
  await sluice.close();
  expect(Date.now() - startedAt).toBeLessThan(CLOSE_BOUND_MS);
  const { error } = await inFlight;
  expect(error).toBeInstanceOf(ClosedError);
  for (const after of [
    () => sluice.dlq.list('q'),
    () => sluice.declareQueue('q'),
    () => sluice.inspectQueue('q'),
  ]) {
    await expect(after()).rejects.toBeInstanceOf(ClosedError);
  }
}

describe('admin operations when Redis does not answer', () => {
  it('reject with TimeoutError by the deadline while the server is stopped', async () => {
    const server = await startExtraRedis();
    const sluice = await connect(server.url);
    await server.stop();
    await expectAdminTimeouts(sluice);
  });

  it('reject with TimeoutError by the deadline while the network black-holes traffic', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const sluice = await connect(proxy.url);
    proxy.blackhole(true);
    onTestFinished(() => proxy.blackhole(false));
    await expectAdminTimeouts(sluice);
    // Healed, the same client works again.
    proxy.blackhole(false);
    await expect(sluice.inspectQueue('q')).resolves.toMatchObject({ name: 'q', messages: 0 });
  });

  it('resolve when the server comes back within the deadline', async () => {
    const server = await startExtraRedis();
    const sluice = await connect(server.url, 10_000);
    await server.stop();
    const declared = sluice.declareQueue('during-outage');
    await server.restart();
    await declared;
    // The restarted server started empty: what it has now, the declaration wrote.
    await expect(sluice.inspectQueue('during-outage')).resolves.toMatchObject({ messages: 0 });
  });

  it('retry while the server answers BUSY (a long script), until it runs them', async () => {
    const server = await startExtraRedis(['--busy-reply-threshold', '50']);
    const sluice = await connect(server.url, 5000);
    const raw = connectRedis({}, server.url);
    // Runs for 400 ms; after 50 ms the server answers every other command with BUSY.
    const busy = raw.eval(
      `local start = redis.call('TIME')
       repeat local now = redis.call('TIME')
       until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 400000
       return 1`,
      0,
    );
    const probe = connectRedis({}, server.url);
    let probeBusyReplies = 0;
    await waitFor(
      () =>
        probe.ping().then(
          () => false,
          (error: Error) => error.message.startsWith('BUSY') && ++probeBusyReplies > 0,
        ),
      { description: 'a BUSY reply' },
    );

    await sluice.declareQueue('while-busy');
    await busy;
    const errorStats = await probe.info('errorstats');
    const busyReplies = Number(/errorstat_BUSY:count=(\d+)/u.exec(errorStats)?.[1] ?? 0);
    expect(busyReplies).toBeGreaterThan(probeBusyReplies);
    await expect(sluice.inspectQueue('while-busy')).resolves.toMatchObject({ messages: 0 });
  });
});

describe('close() when Redis does not answer', () => {
  it('finishes within a few seconds while the server is stopped', async () => {
    const server = await startExtraRedis();
    const sluice = await connect(server.url, 10_000);
    await server.stop();
    await expectBoundedClose(sluice);
  });

  it('finishes within a few seconds while the network black-holes traffic', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const sluice = await connect(proxy.url, 10_000);
    proxy.blackhole(true);
    onTestFinished(() => proxy.blackhole(false));
    await expectBoundedClose(sluice);
  });

  it('disconnects the reader connections it handed out, and its own client', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const connection = await Connection.open(
      { kind: 'url', url: proxy.url, credentials: {} },
      1000,
    );
    const reader = await connection.duplicate();
    proxy.blackhole(true);
    onTestFinished(() => proxy.blackhole(false));
    const startedAt = Date.now();
    await connection.close();
    expect(Date.now() - startedAt).toBeLessThan(CLOSE_BOUND_MS);
    await waitFor(() => connection.redis.status === 'end' && reader.status === 'end', {
      timeoutMs: 1000,
      description: 'both clients ended',
    });
  });
});

describe('a client whose commands in flight are dropped at a connection loss', () => {
  it('retries an admin call that was in flight, instead of waiting for its deadline', async () => {
    const server = await startExtraRedis();
    const proxy = await startProxy(server.port);
    const redis = new Redis(proxy.url, { autoResendUnfulfilledCommands: false });
    redis.on('error', () => undefined);
    onTestFinished(() => redis.disconnect());
    const sluice = await Sluice.connect({
      redis,
      namespace: testNamespace(),
      operationTimeoutMs: 10_000,
    });
    onTestFinished(() => sluice.close());

    proxy.blackhole(true);
    const startedAt = Date.now();
    const declared = sluice.declareQueue('q');
    await waitFor(() => redis.commandQueue.length > 0, { description: 'the command in flight' });
    proxy.resetAll();
    proxy.blackhole(false);
    await declared;
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });
});

describe('error output during an outage', () => {
  it('no connection of a client prints an unhandled error event, its reader connections included', async () => {
    const server = await startExtraRedis();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', outageProcess, server.url, testNamespace(), String(OPERATION_TIMEOUT_MS)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await waitFor(() => stdout.includes('ready\n'), { timeoutMs: 20_000, description: 'ready' });

    // Every connection of the child sees the loss, then a refused reconnect after another.
    await server.kill('SIGKILL');
    child.stdin.write('go\n');

    expect(await exited).toBe(0);
    expect(stdout).toContain('["TIMEOUT","TIMEOUT","TIMEOUT"]');
    expect(stderr).not.toMatch(/Unhandled|Error/u);
  });
});
