import type { DepthSample } from './types.js';

/**
 * The last `capacity` samples of queue depths, oldest first, for the overview's chart: the
 * dashboard's server keeps them from its start, so the chart has a past when a page opens.
 */
export class DepthHistory {
  private readonly samples: DepthSample[] = [];

  constructor(private readonly capacity: number) {}

  add(sample: DepthSample): void {
    this.samples.push(sample);
    if (this.samples.length > this.capacity) this.samples.shift();
  }

  list(): readonly DepthSample[] {
    return this.samples;
  }
}
