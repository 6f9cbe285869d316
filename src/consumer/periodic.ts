/**
 * A chore that runs again `intervalMs` after each run finished (never two at once), until it
 * is stopped. A failed run goes to `onError` and the next one comes as usual.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  /** The first run comes after `firstDelayMs` (default at once). */
  constructor(
    private readonly task: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
    firstDelayMs = 0,
  ) {
    this.schedule(firstDelayMs);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.task()
        .catch(this.onError)
        .finally(() => {
          this.running = undefined;
          this.schedule(this.intervalMs);
        });
    }, delayMs);
  }

  /** Stops; resolves once a run in progress has finished. */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    return this.running ?? Promise.resolve();
  }
}
