import type { RedisClient } from '../connection/client.js';
import { callScript } from '../connection/scripts.js';
import { FENCE } from '../connection/script-catalog.js';
import type { Keyspace } from '../keys/index.js';
import { partitionCount, partitionNumbers } from '../queue/partitions.js';
import type { QueueRecord } from './types.js';

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
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
  ) {}

  /** Raises the fence of every declared queue to `version` (fences never go down). */
  async raiseAll(version: number): Promise<void> {
    const records = await this.redis.hgetall(this.keys.topologyQueues);
    await Promise.all(
      Object.entries(records).map(([queue, json]) =>
        this.raise(queue, version, false, partitionCount(JSON.parse(json) as QueueRecord)),
      ),
    );
  }

  /**
   * Makes a queue's fence if it is missing (declaring the queue, or repairing one whose keys
   * were deleted by hand), at `version`, a version its record already had, then raises it to
   * the version current after that: a change that raised every fence while this one was still
   * missing is caught up with.
   */
  async ensure(queue: string, version: number, partitions: number): Promise<void> {
    await this.raise(queue, version, true, partitions);
    await this.raise(queue, await this.currentVersion(), false, partitions);
  }

  /** The topology version stored now. */
  async currentVersion(): Promise<number> {
    return Number((await this.redis.get(this.keys.topologyVersion)) ?? 0);
  }

  /**
   * Raises the fence of each of a queue's partitions to `version`; `create` makes one that is
   * missing.
   */
  async raise(queue: string, version: number, create: boolean, partitions: number): Promise<void> {
    await Promise.all(
      partitionNumbers(partitions).map((partition) =>
        callScript(
          this.redis,
          FENCE,
          { fence: this.keys.queue(queue, partition).fence },
          { version, create: create ? '1' : '0' },
        ),
      ),
    );
  }
}
