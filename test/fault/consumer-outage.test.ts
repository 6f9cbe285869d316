/**
 * A consumer while its Redis is down: it says so through its events within a bound, says when
 * Redis is back, consumes again, closes within a few seconds with Redis still down, and its
 * settlements reject with typed errors within their deadline. ioredis prints nothing.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  SETTLEMENT_TIMEOUT_MS,
  Sluice,
  SluiceError,
  type ConsumerEvents,
  type Delivery,
} from '../../src/index.js';
import { freeze, startAofRedis, thaw } from '../support/faults.js';
import {
  startExtraRedis,
  testNamespace,
  waitFor,
  type RedisServerHandle,
} from '../support/index.js';

const observedConsumer = fileURLToPath(new URL('../support/observed-consumer.ts', import.meta.url));

/** How soon after the server went away the consumer must have said so. */
const REPORT_BOUND_MS = 3000;
/**
 * How soon a frozen server must be reported: no socket closes, so it takes a read unanswered
 * for its 2 s BLOCK plus 3 s, found by a check every second, plus slack.
 */
const STALL_REPORT_BOUND_MS = 8000;
/** Timers and a loaded CI machine: how late a deadline may be met. */
const SLACK_MS = 1500;

interface Observed {
  readonly event: string;
  readonly at: number;
  readonly code?: string;
  readonly body?: unknown;
  readonly ms?: number;
}

/** The consumer of test/support/observed-consumer.ts, its reports and its stderr. */
class ConsumerProcess {
  readonly reports: Observed[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(private readonly child: ChildProcessByStdio<Writable, Readable, Readable>) {
    createInterface({ input: child.stdout }).on('line', (line) =>
      this.reports.push(JSON.parse(line) as Observed),
    );
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => child.once('exit', resolve));
  }

  static start(url: string, namespace: string, queue: string): ConsumerProcess {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', observedConsumer, url, namespace, queue],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    return new ConsumerProcess(child);
  }

  /** The first report of `event` at or after `since`, once there is one. */
  next(event: string, since = 0, timeoutMs = 15_000): Promise<Observed> {
    return waitFor(() => this.reports.find((r) => r.event === event && r.at >= since), {
      timeoutMs,
      description: `the consumer process reporting ${event}`,
    });
  }

  handled(): unknown[] {
    return this.reports.filter((r) => r.event === 'handled').map((r) => r.body);
  }

  close(): void {
    this.child.stdin.write('close\n');
  }
}

/** A server that keeps its data across a stop (AOF, fsync always), a client, queue `jobs`. */
async function setUp(): Promise<{ server: RedisServerHandle; sluice: Sluice }> {
  const server = await startAofRedis('always');
  const sluice = await Sluice.connect({ url: server.url, namespace: testNamespace() });
  onTestFinished(() => sluice.close());
  await sluice.declareQueue('jobs');
  return { server, sluice };
}

describe('a consumer while Redis is down', () => {
  it('reports the outage and the recovery, consumes again, and closes cleanly', async () => {
    const { server, sluice } = await setUp();
    const consumer = ConsumerProcess.start(server.url, sluice.namespace, 'jobs');
    await consumer.next('ready');
    await sluice.publish('', 'jobs', 'before');
    await waitFor(() => consumer.handled().length === 1, { timeoutMs: 10_000 });

    const stoppedAt = Date.now();
    await server.stop();
    const lost = await consumer.next('connection.lost', stoppedAt);
    const readError = await consumer.next('readError', stoppedAt);
    expect(lost.at - stoppedAt).toBeLessThan(REPORT_BOUND_MS);
    expect(readError).toMatchObject({ code: 'CONNECTION' });
    expect(readError.at - stoppedAt).toBeLessThan(REPORT_BOUND_MS);

    const restartedAt = Date.now();
    await server.restart();
    await consumer.next('connection.restored', restartedAt);
    await sluice.publish('', 'jobs', 'after');
    await waitFor(() => consumer.handled().length === 2, { timeoutMs: 10_000 });
    expect(consumer.handled()).toEqual(['before', 'after']);

    consumer.close();
    await consumer.next('closed');
    // Nothing of the consumer's keeps the process alive once the client is closed.
    expect(await consumer.exited).toBe(0);
    expect(consumer.stderr).not.toContain('Unhandled error event');
    expect(consumer.stderr).toBe('');
  });

  it('reports a frozen server as a lost connection, and its thaw as the recovery', async () => {
    const server = await startExtraRedis();
    const sluice = await Sluice.connect({ url: server.url, namespace: testNamespace() });
    onTestFinished(() => sluice.close());
    await sluice.declareQueue('jobs');
    const handled: unknown[] = [];
    const consumer = await sluice.consume('jobs', (msg) => void handled.push(msg.body));
    const lost: ConsumerEvents['connection.lost'][] = [];
    const restored: ConsumerEvents['connection.restored'][] = [];
    consumer.on('connection.lost', (event) => lost.push(event));
    consumer.on('connection.restored', (event) => restored.push(event));

    const frozenAt = Date.now();
    await freeze(server);
    onTestFinished(() => thaw(server));
    await waitFor(() => lost.length === 1, { timeoutMs: STALL_REPORT_BOUND_MS + 2000 });
    expect(Date.now() - frozenAt).toBeLessThan(STALL_REPORT_BOUND_MS);
    expect(lost[0]?.error).toMatchObject({ code: 'TIMEOUT', retriable: true });
    expect(restored).toEqual([]);

    await thaw(server);
    await waitFor(() => restored.length === 1, { timeoutMs: 10_000 });
    await sluice.publish('', 'jobs', 'after the thaw');
    await waitFor(() => handled.length === 1, { timeoutMs: 10_000 });
    expect(lost).toHaveLength(1);
    await consumer.close();
  });

  it('closes within a few seconds while Redis stays down, printing nothing', async () => {
    const { server, sluice } = await setUp();
    const consumer = ConsumerProcess.start(server.url, sluice.namespace, 'jobs');
    await consumer.next('ready');
    const stoppedAt = Date.now();
    await server.stop();
    await consumer.next('connection.lost', stoppedAt);

    consumer.close();
    const closed = await consumer.next('closed', stoppedAt, 10_000);
    expect(closed.ms).toBeLessThan(5000);
    expect(await consumer.exited).toBe(0);
    expect(consumer.stderr).toBe('');
  });

  it('closes a consumer within a few seconds in-process too, and the client after it', async () => {
    const { server, sluice } = await setUp();
    const consumer = await sluice.consume('jobs', () => undefined);
    const lost = new Promise<void>((resolve) => consumer.on('connection.lost', () => resolve()));
    await server.stop();
    await lost;

    let startedAt = Date.now();
    await consumer.close();
    expect(Date.now() - startedAt).toBeLessThan(5000);
    startedAt = Date.now();
    await sluice.close();
    expect(Date.now() - startedAt).toBeLessThan(5000);
  });

  it('rejects a settlement with a typed error within the settlement deadline', async () => {
    const { server, sluice } = await setUp();
    await sluice.publishBatch(
      ['a', 'b'].map((body) => ({ exchange: '', routingKey: 'jobs', body })),
    );
    const held: Delivery[] = [];
    for await (const msg of sluice.messages('jobs')) {
      held.push(msg);
      if (held.length === 2) break;
    }
    const [first, second] = held as [Delivery, Delivery];
    await server.stop();

    const startedAt = Date.now();
    const outcomes = await Promise.allSettled([first.ack(), second.nack()]);
    const elapsedMs = Date.now() - startedAt;
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason as unknown;
      expect(reason).toBeInstanceOf(SluiceError);
      expect(['CONNECTION', 'TIMEOUT']).toContain((reason as SluiceError).code);
      expect((reason as SluiceError).retriable).toBe(true);
    }
    expect(elapsedMs).toBeLessThan(SETTLEMENT_TIMEOUT_MS + SLACK_MS);

    // Both waited in ioredis's offline queue: once Redis is back they are applied (a timed-out
    // settlement may still take effect), the ack removing `a`, the nack requeueing `b`.
    await server.restart();
    await waitFor(
      async () => {
        const { messages, unacked } = await sluice.inspectQueue('jobs');
        return messages === 1 && unacked === 0;
      },
      { timeoutMs: 15_000 },
    );
  });
});
