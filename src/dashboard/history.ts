import type { QueueStats } from '../queue/data.js';
import type { Sluice } from '../sluice.js';
import type { DepthSample } from './types.js';

/**
 * Reads every queue's statistics at a fixed interval, for the whole dashboard: the overview
 * answers with the latest reading, so the rates are those of one interval however many pages
 * are open (sluice's rates run from one `stats()` of a client to its next), and the depths
 * go into a history of `capacity` samples for the chart, kept from the server's start.
 */
export class StatsSampler {
  private readonly samples: DepthSample[] = [];
  private latest: Promise<readonly QueueStats[]>;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly sluice: Sluice,
    private readonly capacity: number,
    intervalMs: number,
  ) {
    this.latest = this.read();
    this.timer = setInterval(() => {
      const next = this.read();
      // A failed reading leaves the last good one (and a gap in the chart); the next tries again.
      next.then(
        () => (this.latest = next),
        () => undefined,
      );
    }, intervalMs);
  }

  /** The latest reading (the first one until a later one succeeds). */
  current(): Promise<readonly QueueStats[]> {
    return this.latest;
  }

  /** Depths over time, oldest first. */
  history(): readonly DepthSample[] {
    return this.samples;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private read(): Promise<readonly QueueStats[]> {
    const reading = this.sluice.stats();
    reading.then(
      (queues) => {
        this.samples.push({
          time: Date.now(),
          depth: Object.fromEntries(
            queues.map(({ name, messages, unacked, delayed }) => [
              name,
              { ready: messages, unacked, delayed },
            ]),
          ),
        });
        if (this.samples.length > this.capacity) this.samples.shift();
      },
      // Whoever asks for this reading hears of its failure; the sampler itself does not.
      () => undefined,
    );
    return reading;
  }
}
