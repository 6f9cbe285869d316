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
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly sluice: Sluice,
    private readonly capacity: number,
    private readonly intervalMs: number,
  ) {
    this.latest = this.read();
    this.scheduleAfter(this.latest);
  }

  /**
   * The next reading, `intervalMs` after `reading` settles: readings never overlap (a slow
   * `stats()` delays the next one instead), so the samples stay in time order.
   */
  private scheduleAfter(reading: Promise<unknown>): void {
    const schedule = (): void => {
      if (this.closed) return;
      this.timer = setTimeout(() => {
        const next = this.read();
        // A failed reading leaves the last good one (and a gap in the chart); the next tries again.
        next.then(
          () => (this.latest = next),
          () => undefined,
        );
        this.scheduleAfter(next);
      }, this.intervalMs);
    };
    reading.then(schedule, schedule);
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
    this.closed = true;
    clearTimeout(this.timer);
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
