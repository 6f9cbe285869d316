/**
 * The reader: one consumer's blocking read loop of one queue partition on a connection of its
 * own, taking what the prefetch credit allows, ending when its queue is deleted, recreating a
 * consumer group that disappeared while the queue stayed (NOGROUP), and telling when that
 * connection is lost and restored. An unordered consumer reads with XREADGROUP; the owner of a
 * partition under ordered consumption reads with a script that checks its fencing token, and
 * waits for new entries with a blocking XREAD.
 */
import type { RedisClient } from '../connection/client.js';
import {
  isReplyError,
  nodeOf,
  resendsInFlight,
  toSluiceError,
  type Connection,
} from '../connection/connection.js';
import { ConnectionError, SluiceError, TimeoutError } from '../errors/index.js';
import { CONSUMER_GROUP } from '../keys/index.js';
import { ensureConsumerGroup } from '../queue/group.js';
import type { ReplyBudget } from './deadline.js';
import { readOrdered } from './scripts.js';

/** How long one XREADGROUP blocks; the loop then reads again (and sees a close). */
const BLOCK_MS = 2000;
/** Pause after a failed read before the next one. */
const ERROR_BACKOFF_MS = 250;
/**
 * A read unanswered this long (its BLOCK plus 3 s) finds the server frozen or the network
 * black-holed: a lost connection as far as the consumer can tell, though no socket closed.
 */
const STALL_MS = BLOCK_MS + 3000;
/** How often the reader looks for a stalled read. */
const STALL_CHECK_MS = 1000;

/** What the reader reports and hands on. */
export interface ReaderContext {
  readonly connection: Connection;
  readonly stream: string;
  /** The partition's fence: it exists exactly as long as the queue is declared. */
  readonly fence: string;
  readonly queue: string;
  /**
   * Set for the owner of a partition under ordered consumption: the partition's owner key,
   * the fencing token, and what to do once the script finds the ownership gone (the loop ends).
   */
  readonly ordered?: {
    readonly owner: string;
    readonly token: number;
    readonly lost: () => void;
  };
  readonly consumerName: string;
  /** Deliveries the consumer may still take, not counting the entries the reader is handing on. */
  readonly credit: () => number;
  /**
   * Turns a read entry into a delivery; a promise when it has to wait (a dead-lettered entry),
   * so that the common path stays synchronous.
   */
  readonly receive: (streamId: string, fields: Buffer[] | null) => Promise<unknown> | undefined;
  readonly report: (error: SluiceError) => void;
  readonly groupRecreated: () => void;
  /** The queue was deleted: the reader has stopped, for good. */
  readonly cancelled: () => void;
  readonly connectionLost: (error: SluiceError) => void;
  readonly connectionRestored: (downtimeMs: number) => void;
}

/** Why an awaited read was given up: the reader stops, or the read will never be answered. */
const INTERRUPTED = Symbol('interrupted');

type ReadReply = [stream: Buffer, entries: [Buffer, Buffer[] | null][]][] | null;

/** The read loop of one consumer. */
export class Reader {
  private client: RedisClient | undefined;
  private clientId: number | undefined;
  /** Entries read and not yet handed on (they count against the prefetch). */
  private receiving = 0;
  /** The chain that hands read entries on, in read order. */
  private processing: Promise<void> = Promise.resolve();
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  /** Gives up the read or back-off being awaited now. */
  private abandon: (() => void) | undefined;
  /** When the reading connection was lost (closed, or its read stalled), while it is down. */
  private lostAt: number | undefined;
  private lastError: unknown;
  /** When the read awaited now was sent. */
  private readSentAt: number | undefined;
  private stallCheck: NodeJS.Timeout | undefined;

  constructor(private readonly context: ReaderContext) {}

  /** Deliveries the consumer may still read: its credit less what is being handed on. */
  credit(): number {
    return this.context.credit() - this.receiving;
  }

  /** Opens the reading connection; {@link start} then reads. */
  async open(): Promise<void> {
    const client = await this.context.connection.duplicate();
    this.client = client;
    this.watch(client);
    // On a Cluster, the id of the connection to the node serving the stream: the one its reads
    // go to, and where UNBLOCK must be sent.
    this.clientId = Number(await nodeOf(client, this.context.stream).client('ID'));
  }

  /**
   * Turns the connection's events into the consumer's: `close` of a connection that was up is
   * a loss (reported once, not per reconnect attempt), the next `ready` its end. Errors reach
   * the loop as failed reads; without a listener ioredis would print them.
   */
  private watch(client: RedisClient): void {
    client.on('error', (error: unknown) => (this.lastError = error));
    client.on('close', () => {
      const cause = this.lastError;
      const reason = cause instanceof Error ? `: ${cause.message}` : '';
      const queue = this.context.queue;
      this.lost(new ConnectionError(`reading connection of queue '${queue}' lost${reason}`, cause));
    });
    client.on('ready', () => {
      // A read in flight at the loss is sent again, unless the client drops such commands:
      // then it will never be answered, and the loop must not wait for it.
      if (this.lostAt !== undefined && !resendsInFlight(client)) {
        this.interrupt();
      }
      this.restored();
    });
  }

  private lost(error: SluiceError): void {
    if (this.stopping || this.lostAt !== undefined) return;
    this.lostAt = Date.now();
    this.context.connectionLost(error);
  }

  private restored(): void {
    if (this.lostAt === undefined) return;
    const downtimeMs = Date.now() - this.lostAt;
    this.lostAt = undefined;
    if (!this.stopping) this.context.connectionRestored(downtimeMs);
  }

  /** Reports a read that Redis has not answered long past its BLOCK (see {@link STALL_MS}). */
  private checkStall(): void {
    const sentAt = this.readSentAt;
    if (sentAt === undefined || Date.now() - sentAt < STALL_MS) return;
    const queue = this.context.queue;
    this.lost(
      new TimeoutError(`XREADGROUP on queue '${queue}' got no reply within ${STALL_MS} ms`),
    );
  }

  /** Starts the loop. */
  start(): void {
    this.loop = this.read();
    this.stallCheck = setInterval(() => this.checkStall(), STALL_CHECK_MS).unref();
  }

  /** Lets a loop waiting for credit go on. */
  wake(): void {
    this.wakeUp?.();
    this.wakeUp = undefined;
  }

  private interrupt(): void {
    this.abandon?.();
    this.abandon = undefined;
  }

  /**
   * `promise`, or INTERRUPTED once {@link interrupt} is called. One promise per wait, rather
   * than a race with a long-lived one, which would keep a reaction per read forever.
   */
  private interruptible<R>(promise: Promise<R>): Promise<R | typeof INTERRUPTED> {
    return new Promise<R | typeof INTERRUPTED>((resolve, reject) => {
      this.abandon = () => resolve(INTERRUPTED);
      promise.then(resolve, reject);
    });
  }

  /**
   * Each read takes what the credit allows, and its entries are handed on after the next read
   * (if any credit is left) has been sent, so that Redis prepares it while this process
   * handles the current one.
   */
  private async read(): Promise<void> {
    const client = this.client as RedisClient;
    while (!this.stopping) {
      const credit = this.credit();
      if (credit <= 0) {
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      let reply: ReadReply | typeof INTERRUPTED;
      try {
        const ordered = this.context.ordered;
        if (ordered === undefined) {
          const read = client.callBuffer(
            'XREADGROUP',
            'GROUP',
            CONSUMER_GROUP,
            this.context.consumerName,
            'COUNT',
            credit,
            'BLOCK',
            BLOCK_MS,
            'STREAMS',
            this.context.stream,
            '>',
          ) as Promise<ReadReply>;
          this.readSentAt = Date.now();
          reply = await this.interruptible(read);
        } else {
          // Entries read as the reader stops are handed on all the same: they go back in place
          // from there, uncounted, rather than counting a delivery that never ran.
          reply = await this.readOwned(client, ordered, credit);
        }
      } catch (error) {
        if (this.stopping) break;
        this.answered();
        await this.recover(error);
        continue;
      }
      this.answered();
      if (reply === null || reply === INTERRUPTED) continue;
      for (const [, entries] of reply) {
        this.receiving += entries.length;
        this.processing = this.processing.then(() => this.receiveAll(entries));
      }
    }
    await this.processing;
  }

  /**
   * An owner's read: new entries if the fencing token still holds, else the end of the loop;
   * with nothing new, a blocking XREAD after the stream's last entry, on the reading connection.
   */
  private async readOwned(
    client: RedisClient,
    ordered: NonNullable<ReaderContext['ordered']>,
    credit: number,
  ): Promise<ReadReply | typeof INTERRUPTED> {
    const read = await readOrdered(
      this.context.connection.redis,
      { stream: this.context.stream, owner: ordered.owner },
      { consumer: this.context.consumerName, token: ordered.token, count: credit },
    );
    if (read.kind === 'lost') {
      this.stopping = true;
      ordered.lost();
      return null;
    }
    if (read.kind === 'ok') return [[Buffer.from(this.context.stream), read.entries]];
    const wait = client.callBuffer(
      'XREAD',
      'COUNT',
      1,
      'BLOCK',
      BLOCK_MS,
      'STREAMS',
      this.context.stream,
      read.lastId,
    );
    this.readSentAt = Date.now();
    await this.interruptible(wait);
    return null;
  }

  /** The read was answered: a stalled connection works again. */
  private answered(): void {
    this.readSentAt = undefined;
    if (this.lostAt !== undefined && this.client?.status === 'ready') this.restored();
  }

  /** Hands a read's entries on, in order. */
  private async receiveAll(entries: readonly [Buffer, Buffer[] | null][]): Promise<void> {
    for (const [id, fields] of entries) {
      this.receiving--;
      const waiting = this.context.receive(id.toString(), fields);
      if (waiting !== undefined) {
        await waiting.catch((error: unknown) => this.context.report(error as SluiceError));
        // A dead-lettered entry became no delivery: its credit is free again.
        this.wake();
      }
    }
  }

  /**
   * After a failed read: a stream or group that went away with the queue's fence is a deleted
   * queue, and the reader stops (the stream is not made again, so nothing is left behind); one
   * that went while the fence stayed (deleted by hand, a failover to a replica that lacked it)
   * is recreated. Otherwise back off.
   */
  private async recover(error: unknown): Promise<void> {
    const client = this.client as RedisClient;
    const { redis } = this.context.connection;
    // A script's failure comes as a SluiceError with Redis's reply as its cause.
    const reply = error instanceof SluiceError ? error.cause : error;
    const gone =
      isReplyError(reply) &&
      (reply.message.startsWith('NOGROUP') || reply.message.startsWith('UNBLOCKED'));
    // Whether the queue is still declared; undefined when that could not be told (then the
    // next read, after the back-off, asks again: a stream is never made for a deleted queue).
    let declared: boolean | undefined;
    if (gone) {
      try {
        declared = (await redis.exists(this.context.fence)) === 1;
      } catch (cause) {
        this.context.report(toSluiceError(cause, redis, 'EXISTS'));
      }
      if (declared === false) {
        this.stopping = true;
        this.context.cancelled();
        return;
      }
    }
    this.context.report(
      error instanceof SluiceError
        ? error
        : toSluiceError(error, client, `XREADGROUP on queue '${this.context.queue}'`),
    );
    if (declared === true) {
      try {
        if (await ensureConsumerGroup(redis, this.context.stream)) {
          this.context.groupRecreated();
          return;
        }
      } catch (cause) {
        this.context.report(toSluiceError(cause, redis, 'XGROUP CREATE'));
      }
    }
    let timer: NodeJS.Timeout | undefined;
    await this.interruptible(
      new Promise((resolve) => (timer = setTimeout(resolve, ERROR_BACKOFF_MS))),
    );
    clearTimeout(timer);
  }

  /**
   * Stops reading: ends the blocking read at once (Redis answers an unblocked read as a
   * timeout, so no entry is lost) and waits for the loop, within `budget`. A read Redis does
   * not answer by then is given up: its entries, if any, stay pending and are reclaimed.
   */
  async stop(budget: ReplyBudget): Promise<void> {
    this.stopping = true;
    clearInterval(this.stallCheck);
    this.wake();
    if (this.loop === undefined) return;
    if (this.clientId !== undefined && budget.open) {
      const node = this.context.connection.nodeFor(this.context.stream);
      await budget.wait(node.client('UNBLOCK', this.clientId, 'TIMEOUT'));
    }
    if (!(await budget.wait(this.loop))) this.interrupt();
    await budget.wait(this.loop);
  }

  /** Closes the reading connection. */
  release(): void {
    this.stopping = true;
    clearInterval(this.stallCheck);
    if (this.client !== undefined) this.context.connection.release(this.client);
  }
}
