import { SingleBar } from 'cli-progress';

/** A progress callback and its end: a bar on standard error when it is a terminal, else silent. */
export interface Progress {
  readonly onProgress: (done: number, total: number) => void;
  readonly stop: () => void;
}

/**
 * Progress of a long move (replay, move) for a person watching; nothing when standard error is
 * not a terminal, so that logs and scripts get only the summary line.
 */
export function progressBar(): Progress {
  const bar = process.stderr.isTTY ? new SingleBar({ stream: process.stderr }) : undefined;
  let started = false;
  return {
    onProgress: (done, total) => {
      if (!started) bar?.start(total, 0);
      started = true;
      bar?.update(done);
    },
    stop: () => {
      if (started) bar?.stop();
    },
  };
}
