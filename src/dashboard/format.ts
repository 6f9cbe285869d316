/** Figures as both the CLI and the dashboard's pages show them (pure: the front end bundles it). */

/** A lag as people read it: `0s`, `4.2s`, `3m05s`. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}
