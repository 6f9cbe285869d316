import type { Topology } from '../topology/topology.js';
import type { TopologySnapshot } from '../topology/types.js';
import { Router } from './router.js';

/** A snapshot and the router compiled from it; both belong to one topology version. */
export interface CompiledTopology {
  readonly snapshot: TopologySnapshot;
  readonly router: Router;
}

/**
 * The client's cached topology. Scripts that write messages check the version it was
 * compiled at; on a mismatch the caller drops the cache with {@link invalidate} and retries.
 */
export class TopologyCache {
  private compiled: CompiledTopology | undefined;
  private loading: Promise<CompiledTopology> | undefined;

  constructor(private readonly topology: Topology) {}

  /** The cached topology, loaded on first use and after each invalidation. */
  get(): Promise<CompiledTopology> {
    if (this.compiled !== undefined) return Promise.resolve(this.compiled);
    this.loading ??= this.topology
      .snapshot()
      .then((snapshot) => {
        this.compiled = { snapshot, router: new Router(snapshot) };
        return this.compiled;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  /** Drops the cache (only if it is still `stale`, when given, so a newer load survives). */
  invalidate(stale?: CompiledTopology): void {
    if (stale === undefined || this.compiled === stale) this.compiled = undefined;
  }

  /** The version stored in Redis now. */
  currentVersion(): Promise<number> {
    return this.topology.currentVersion();
  }
}
