/**
 * The runner of every operation other than publishing: it retries what the classification of a
 * failure allows, types every failure, and settles every call by its deadline.
 */
import { Redis, ReplyError } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Operations, type OperationConnection } from '../../src/connection/operation.js';
import {
  ClosedError,
  ConnectionError,
  NotFoundError,
  ServerError,
  TimeoutError,
} from '../../src/errors/index.js';
import { rejection } from '../support/rejection.js';

/** ioredis types its ReplyError (an error reply of the server) as `any`. */
const RedisReply = ReplyError as new (message: string) => Error;

const TIMEOUT_MS = 300;
/** Timers on a loaded machine: how late a rejection may come after its deadline. */
const SLACK_MS = 250;
const IDEMPOTENT = { idempotent: true };
const NOT_IDEMPOTENT = { idempotent: false };

// Never connected: the runner reads only the client's status (to tell a closed client).
const open = new Redis({ lazyConnect: true });
afterAll(() => open.disconnect());

function runner(connection: Partial<OperationConnection> = {}, timeoutMs = TIMEOUT_MS): Operations {
  return new Operations(
    {
      redis: open,
      resendsInFlightCommands: true,
      nextConnectionLoss: () => new Promise<void>(() => undefined),
      ...connection,
    },
    timeoutMs,
  );
}

/** An operation that fails with `failures` in turn, then resolves with 'done'; counts attempts. */
function failing(...failures: Error[]): {
  attempts: () => number;
  operation: () => Promise<string>;
} {
  let attempts = 0;
  return {
    attempts: () => attempts,
    operation: () => {
      const failure = failures[attempts++];
      return failure === undefined ? Promise.resolve('done') : Promise.reject(failure);
    },
  };
}

const loading = (): Error => new RedisReply('LOADING Redis is loading the dataset in memory');
const reset = (): Error => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

describe('the operation runner', () => {
  it('resolves with the first attempt and leaves no timer behind', async () => {
    vi.useFakeTimers();
    try {
      const { attempts, operation } = failing();
      await expect(runner().run('op', operation, IDEMPOTENT)).resolves.toBe('done');
      expect(attempts()).toBe(1);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('retries a reply Redis sent instead of running the command (unsent), idempotent or not', async () => {
    for (const policy of [IDEMPOTENT, NOT_IDEMPOTENT]) {
      const { attempts, operation } = failing(loading(), loading());
      await expect(runner().run('op', operation, policy)).resolves.toBe('done');
      expect(attempts()).toBe(3);
    }
  });

  it('retries a failure with the command in flight (uncertain) only when idempotent', async () => {
    const retried = failing(reset());
    await expect(runner().run('op', retried.operation, IDEMPOTENT)).resolves.toBe('done');
    expect(retried.attempts()).toBe(2);

    const cause = reset();
    const once = failing(cause);
    const { error } = await rejection(runner().run('op', once.operation, NOT_IDEMPOTENT));
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ code: 'CONNECTION', retriable: true, cause });
    expect(once.attempts()).toBe(1);
  });

  it('does not retry a refusal for good: ServerError with the reply as cause', async () => {
    const cause = new RedisReply("OOM command not allowed when used memory > 'maxmemory'.");
    const { attempts, operation } = failing(cause);
    const { error } = await rejection(runner().run('declareQueue', operation, IDEMPOTENT));
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ code: 'SERVER', cause });
    expect((error as Error).message).toMatch(/^declareQueue: OOM/u);
    expect(attempts()).toBe(1);
  });

  it("passes sluice's own errors through unchanged, without a retry", async () => {
    const notFound = new NotFoundError("queue 'q' does not exist");
    const { attempts, operation } = failing(notFound);
    const { error } = await rejection(runner().run('op', operation, IDEMPOTENT));
    expect(error).toBe(notFound);
    expect(attempts()).toBe(1);
  });

  it('does not retry on a closed client: ClosedError, even for a transient reply', async () => {
    const closed = new Redis({ lazyConnect: true });
    closed.disconnect();
    const { attempts, operation } = failing(loading());
    const { error } = await rejection(runner({ redis: closed }).run('op', operation, IDEMPOTENT));
    expect(error).toBeInstanceOf(ClosedError);
    expect(attempts()).toBe(1);
  });

  it('gives up at the deadline with TimeoutError, the last failure as cause, backing off meanwhile', async () => {
    const failures = Array.from({ length: 1000 }, loading);
    const { attempts, operation } = failing(...failures);
    const { error, elapsedMs } = await rejection(runner().run('op', operation, IDEMPOTENT));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'TIMEOUT', retriable: true });
    const cause = (error as TimeoutError).cause;
    expect(cause).toBeInstanceOf(ConnectionError);
    expect((cause as ConnectionError).cause).toBe(failures[attempts() - 1]);
    expect(elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 10);
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    // Backoff of 20, 40, 80, 160 ms at least: no more than 5 attempts fit into 300 ms.
    expect(attempts()).toBeGreaterThan(1);
    expect(attempts()).toBeLessThanOrEqual(5);
  });

  it('settles an attempt that never settles by itself at the deadline', async () => {
    const { error, elapsedMs } = await rejection(
      runner().run('inspectQueue', () => new Promise<never>(() => undefined), IDEMPOTENT),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).cause).toBeUndefined();
    expect((error as Error).message).toBe(
      `inspectQueue did not finish within ${TIMEOUT_MS} ms (connection to Redis: wait)`,
    );
    expect(elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 10);
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });

  it('rejects the calls in flight with ClosedError at close()', async () => {
    const operations = runner();
    const pending = rejection(
      operations.run('dlq.list', () => new Promise<never>(() => undefined), IDEMPOTENT),
    );
    operations.close();
    const { error, elapsedMs } = await pending;
    expect(error).toBeInstanceOf(ClosedError);
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS);
  });

  describe('an operation that reports progress', () => {
    /** Reports progress every 100 ms, `steps` times, then resolves, or stalls if `stall`. */
    function stepping(steps: number, options: { stall?: boolean; fail?: Error } = {}) {
      let attempts = 0;
      return {
        attempts: () => attempts,
        operation: async (progress: () => void): Promise<string> => {
          attempts++;
          for (let step = 0; step < steps; step++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            progress();
          }
          if (options.stall === true) await new Promise<never>(() => undefined);
          if (options.fail !== undefined) throw options.fail;
          return 'done';
        },
      };
    }

    it('is bounded by the time since its last progress, not by its whole duration', async () => {
      const { operation } = stepping(6);
      await expect(runner().run('replay', operation, IDEMPOTENT)).resolves.toBe('done');
    });

    it('times out once it stops making progress', async () => {
      const { operation } = stepping(2, { stall: true });
      const { error, elapsedMs } = await rejection(runner().run('replay', operation, IDEMPOTENT));
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as Error).message).toMatch(/^replay made no progress for 300 ms/u);
      expect(elapsedMs).toBeGreaterThanOrEqual(200 + TIMEOUT_MS - 10);
      expect(elapsedMs).toBeLessThan(200 + TIMEOUT_MS + SLACK_MS);
    });

    it('is not repeated after progress: a repeat would redo counted work', async () => {
      const cause = loading();
      const { attempts, operation } = stepping(1, { fail: cause });
      const { error } = await rejection(runner().run('replay', operation, IDEMPOTENT));
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error).toMatchObject({ cause });
      expect(attempts()).toBe(1);
    });
  });

  describe('on a client that drops the commands in flight at a connection loss', () => {
    /** A connection whose next loss happens when `lose` is called. */
    function droppingConnection(): { connection: Partial<OperationConnection>; lose: () => void } {
      let lose: () => void = () => undefined;
      let loss = new Promise<void>((resolve) => (lose = resolve));
      return {
        connection: {
          resendsInFlightCommands: false,
          nextConnectionLoss: () => loss,
        },
        lose: () => {
          lose();
          loss = new Promise<void>((resolve) => (lose = resolve));
        },
      };
    }

    it('counts an attempt in flight at the loss as failed uncertainly, and retries it', async () => {
      const { connection, lose } = droppingConnection();
      let attempts = 0;
      const operation = (): Promise<string> =>
        ++attempts === 1 ? new Promise<never>(() => undefined) : Promise.resolve('done');
      const call = runner(connection).run('op', operation, IDEMPOTENT);
      lose();
      await expect(call).resolves.toBe('done');
      expect(attempts).toBe(2);
    });

    it('does not retry it when the operation is not idempotent', async () => {
      const { connection, lose } = droppingConnection();
      const call = runner(connection).run(
        'op',
        () => new Promise<never>(() => undefined),
        NOT_IDEMPOTENT,
      );
      lose();
      const { error, elapsedMs } = await rejection(call);
      expect(error).toBeInstanceOf(ConnectionError);
      expect(elapsedMs).toBeLessThan(TIMEOUT_MS);
    });
  });
});
