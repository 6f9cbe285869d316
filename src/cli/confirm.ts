import { createInterface } from 'node:readline/promises';
import { RefusedError } from './exit-codes.js';

/** The `--yes` flag of destructive commands, as commander parses it. */
export interface ConfirmFlags {
  readonly yes?: true;
}

/**
 * Asks `question` on the terminal before a destructive command, unless `--yes` was given.
 * Without a terminal on standard input nobody can answer, so the command is refused rather
 * than run: a script must say `--yes` to delete.
 */
export async function confirm(question: string, flags: ConfirmFlags): Promise<void> {
  if (flags.yes === true) return;
  if (process.stdin.isTTY !== true) {
    throw new RefusedError(`refused: ${question} (standard input is not a terminal; pass --yes)`);
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    if (!/^y(es)?$/iu.test(answer.trim())) throw new RefusedError('refused: not confirmed');
  } finally {
    prompt.close();
  }
}
