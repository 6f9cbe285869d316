import type { Redis } from 'ioredis';
import type { Connection } from '../connection/connection.js';

/** What one WAIT / WAITAOF answered. */
export type CommitOutcome =
  | { readonly reached: boolean; readonly detail: string; readonly epoch: number }
  | { readonly error: unknown; readonly epoch: number };

/** Sends one WAIT or WAITAOF; `reached` tells whether it got the acknowledgements it asked for. */
export type CommitCommand = () => Promise<{ reached: boolean; detail: string }>;

/**
 * Group commit: every caller of {@link wait} in the same tick shares one WAIT (or WAITAOF),
 * sent at the end of that tick. A WAIT covers every write its connection made before it, so
 * it covers the writes of all these callers, whose replies had arrived when they called.
 * Several WAITs may be in flight at once (pipelined), each covering the writes before it.
 *
 * The outcome carries the connection epoch at the reply: a caller trusts it only if it
 * equals the epoch at which its write was issued (same connection throughout).
 */
export class GroupCommit {
  private next: Promise<CommitOutcome> | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly command: CommitCommand,
  ) {}

  /** Resolves with the outcome of a WAIT sent after this call; never rejects. */
  wait(): Promise<CommitOutcome> {
    this.next ??= new Promise<CommitOutcome>((resolve) => {
      process.nextTick(() => {
        this.next = undefined;
        this.command().then(
          ({ reached, detail }) => resolve({ reached, detail, epoch: this.connection.epoch }),
          (error: unknown) => resolve({ error, epoch: this.connection.epoch }),
        );
      });
    });
    return this.next;
  }
}

/** The durable levels, each confirmed by a group commit. */
export type CommitLevel = 'replicated' | 'fsynced';

/**
 * The group commits of the two durable levels, one pair per master that took writes: a WAIT
 * covers the writes of its own connection to one server, so on a Redis Cluster each node that
 * stored a copy is asked for its own.
 */
export class GroupCommits {
  private readonly byNode = new WeakMap<Redis, Record<CommitLevel, GroupCommit>>();

  constructor(
    private readonly connection: Connection,
    private readonly replicas: number,
    private readonly timeoutMs: number,
  ) {}

  /** The group commit of `level` on the master that serves `key` now. */
  of(level: CommitLevel, key: string): GroupCommit {
    const node = this.connection.nodeFor(key);
    let commits = this.byNode.get(node);
    if (commits === undefined) {
      commits = this.create(node);
      this.byNode.set(node, commits);
    }
    return commits[level];
  }

  private create(node: Redis): Record<CommitLevel, GroupCommit> {
    const { connection, replicas, timeoutMs } = this;
    return {
      replicated: new GroupCommit(connection, async () => {
        const acknowledged = await connection.waitForReplicas(node, replicas, timeoutMs);
        return {
          reached: acknowledged >= replicas,
          detail: `WAIT: ${acknowledged} of ${replicas} replicas acknowledged within ${timeoutMs} ms`,
        };
      }),
      fsynced: new GroupCommit(connection, async () => {
        const [local] = await connection.waitForAof(node, 1, 0, timeoutMs);
        return {
          reached: local >= 1,
          detail: `WAITAOF: the append-only file was not fsynced within ${timeoutMs} ms`,
        };
      }),
    };
  }
}
