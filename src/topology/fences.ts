import type { Redis } from 'ioredis';
import { callScript } from '../connection/scripts.js';
import { FENCE } from '../connection/script-catalog.js';
import type { Keyspace } from '../keys/index.js';

/**
 * Fences: each queue partition's copy of the topology version, in the queue's own slot, so that
 * a publish checks in one slot that it was routed with a current topology (DESIGN.md section 1).
 *
 * The protocol: a topology change writes the topology record (and its version) first, then
 * raises the fence of every queue to the new version, then resolves; a change that found
 * nothing to do raises them to the current version all the same (the same change by another
 * client may still be raising them). A producer routing with an older version then finds a
 * fence above its version and routes again. A change that crashed between the two steps
 * leaves fences behind; the next change (or the same one made again) raises them all. A
 * fence is made only by declaring its queue: a queue whose fence is missing is gone, or its
 * keys were deleted by hand (declaring it again repairs it).
 */
export class Fences {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  /** Raises the fence of every declared queue to `version` (fences never go down). */
  async raiseAll(version: number): Promise<void> {
    const queues = await this.redis.hkeys(this.keys.topologyQueues);
    await Promise.all(queues.map((queue) => this.raise(queue, version, false)));
  }

  /**
   * Makes a queue's fence if it is missing (declaring the queue, or repairing one whose keys
   * were deleted by hand), at `version`, a version its record already had, then raises it to
   * the version current after that: a change that raised every fence while this one was still
   * missing is caught up with.
   */
  async ensure(queue: string, version: number): Promise<void> {
    await this.raise(queue, version, true);
    await this.raise(queue, await this.currentVersion(), false);
  }

  /** The topology version stored now. */
  async currentVersion(): Promise<number> {
    return Number((await this.redis.get(this.keys.topologyVersion)) ?? 0);
  }

  /** Raises one queue's fence to `version`; `create` makes it when it is missing. */
  async raise(queue: string, version: number, create = false): Promise<void> {
    await callScript(
      this.redis,
      FENCE,
      { fence: this.keys.queue(queue).fence },
      { version, create: create ? '1' : '0' },
    );
  }
}
