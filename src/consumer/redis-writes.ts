/**
 * The Redis writes an idempotent handler records (`ctx.tx`): applied in the same script as the
 * key's done marker and the ack, or not at all (src/lua/idem_commit.lua).
 */
import { InvalidArgumentError } from '../errors/index.js';
import { hashSlot } from '../keys/slot.js';

/** A value a recorded write may carry. */
export type WriteArgument = string | number | Buffer;

/**
 * Commands a recorded write may not be: scripts and transactions (they cannot run inside the
 * commit script), blocking and subscribing commands, and server-wide ones. Redis refuses some
 * of them in scripts itself, but only once the writes before them were applied.
 */
const REFUSED = new Set([
  'eval',
  'eval_ro',
  'evalsha',
  'evalsha_ro',
  'fcall',
  'fcall_ro',
  'function',
  'script',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'blpop',
  'brpop',
  'brpoplpush',
  'blmove',
  'blmpop',
  'bzpopmin',
  'bzpopmax',
  'bzmpop',
  'xread',
  'xreadgroup',
  'wait',
  'waitaof',
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
  'publish',
  'spublish',
  'monitor',
  'sync',
  'psync',
  'replicaof',
  'slaveof',
  'flushall',
  'flushdb',
  'shutdown',
  'debug',
  'config',
  'client',
  'select',
  'swapdb',
  'move',
  'migrate',
  'keys',
  'scan',
  'save',
  'bgsave',
  'bgrewriteaof',
  'acl',
  'module',
  'cluster',
]);

const COMMAND_NAME = /^[A-Za-z][A-Za-z0-9_|.-]*$/u;

/** One recorded write: the command and its arguments, and its keys where sluice knows them. */
export interface RecordedWrite {
  readonly args: readonly WriteArgument[];
  /** Undefined for {@link RedisWrites.call}: found with COMMAND GETKEYS on a cluster-mode server. */
  readonly keys: readonly string[] | undefined;
}

function checkArgument(command: string, value: unknown, position: number): WriteArgument {
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw new InvalidArgumentError(
    `argument ${position} of ${command} must be a string, a finite number or a Buffer`,
  );
}

/**
 * The writes of one idempotent handler run (`ctx.tx`). Each method records a write (nothing
 * is sent until the handler resolves) and checks it first; on a cluster-mode server a key
 * outside the queue's hash slot is refused at once: build keys with {@link RedisWrites.hashTag}.
 */
export interface RedisWrites {
  /**
   * The queue partition's hash tag, `{<namespace>:q:<queue>:0}`: a key that contains it lies
   * in the queue's slot, as a cluster-mode server requires of every written key.
   */
  readonly hashTag: string;
  call(command: string, ...args: WriteArgument[]): this;
  set(key: string, value: WriteArgument): this;
  del(key: string): this;
  incrby(key: string, increment: number): this;
  hset(key: string, field: string, value: WriteArgument): this;
  hincrby(key: string, field: string, increment: number): this;
  sadd(key: string, ...members: WriteArgument[]): this;
  zadd(key: string, score: number, member: WriteArgument): this;
  rpush(key: string, ...values: WriteArgument[]): this;
  pexpire(key: string, milliseconds: number): this;
}

/** The implementation of {@link RedisWrites}: what the commit script gets. */
export class WriteRecorder implements RedisWrites {
  readonly recorded: RecordedWrite[] = [];

  constructor(
    readonly hashTag: string,
    private readonly cluster: boolean,
  ) {}

  call(command: string, ...args: WriteArgument[]): this {
    return this.record(command, args, undefined);
  }

  set(key: string, value: WriteArgument): this {
    return this.record('SET', [key, value], [key]);
  }

  del(key: string): this {
    return this.record('DEL', [key], [key]);
  }

  incrby(key: string, increment: number): this {
    return this.record('INCRBY', [key, increment], [key]);
  }

  hset(key: string, field: string, value: WriteArgument): this {
    return this.record('HSET', [key, field, value], [key]);
  }

  hincrby(key: string, field: string, increment: number): this {
    return this.record('HINCRBY', [key, field, increment], [key]);
  }

  sadd(key: string, ...members: WriteArgument[]): this {
    return this.record('SADD', [key, ...members], [key]);
  }

  zadd(key: string, score: number, member: WriteArgument): this {
    return this.record('ZADD', [key, score, member], [key]);
  }

  rpush(key: string, ...values: WriteArgument[]): this {
    return this.record('RPUSH', [key, ...values], [key]);
  }

  pexpire(key: string, milliseconds: number): this {
    return this.record('PEXPIRE', [key, milliseconds], [key]);
  }

  private record(command: unknown, args: readonly unknown[], keys: string[] | undefined): this {
    if (typeof command !== 'string' || !COMMAND_NAME.test(command)) {
      throw new InvalidArgumentError('a recorded write needs a command name');
    }
    if (REFUSED.has(command.toLowerCase())) {
      throw new InvalidArgumentError(`${command} cannot be a recorded write`);
    }
    const checked = args.map((value, i) => checkArgument(command, value, i + 1));
    if (keys !== undefined) this.checkSlots(command, keys);
    this.recorded.push({ args: [command, ...checked], keys });
    return this;
  }

  /**
   * On a cluster-mode server the commit script may only touch the queue's slot; a key outside
   * it is refused before the handler's writes would be lost at the commit.
   */
  checkSlots(command: string, keys: readonly string[]): void {
    if (!this.cluster) return;
    const slot = hashSlot(this.hashTag);
    for (const key of keys) {
      if (hashSlot(key) !== slot) {
        throw new InvalidArgumentError(
          `${command} writes key '${key}' outside the queue's hash slot: on a cluster-mode ` +
            `server the keys of recorded writes must contain ${this.hashTag}`,
        );
      }
    }
  }
}
