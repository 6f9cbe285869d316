/** Reading a rejection in a test: what a call rejected with, and when. */
import { expect } from 'vitest';

/**
 * Resolves with what `call` rejected with and how long it took to settle (from now, so call it
 * as the call starts); fails the test if the call resolves.
 */
export async function rejection(
  call: Promise<unknown>,
): Promise<{ error: unknown; elapsedMs: number }> {
  const startedAt = Date.now();
  const error = await call.then(
    () => expect.fail('the call resolved'),
    (reason: unknown) => reason,
  );
  return { error, elapsedMs: Date.now() - startedAt };
}
