/**
 * Exit codes of the `sluice` command, listed in its help and in docs/operations.md, so that a
 * script can tell a mistake in its own call from a missing queue or a refusal.
 */
export const EXIT = {
  /** The command did what it was asked. */
  ok: 0,
  /** It failed: Redis unreachable, a sluice error, or part of the work left undone. */
  error: 1,
  /** The call itself is wrong: unknown command or option, a value that does not parse or is refused. */
  usage: 2,
  /** A queue, exchange or message named by the call does not exist. */
  notFound: 3,
  /** A destructive command was not confirmed (declined, or no terminal and no --yes). */
  refused: 4,
} as const;

/** A destructive command that was not confirmed; the command exits with {@link EXIT}.refused. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
}

/** A call that is wrong in a way only the command can tell (two bodies, say): exits with usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The help text that lists the exit codes, shown after every command's help. */
export const EXIT_CODES_HELP = `
Exit codes:
  0  ok
  1  error (Redis unreachable, a sluice error, work left undone)
  2  usage (unknown command or option, a value that does not parse or that sluice refuses)
  3  not found (no such queue, exchange or message)
  4  refused (a destructive command not confirmed: declined, or no terminal and no --yes)`;
