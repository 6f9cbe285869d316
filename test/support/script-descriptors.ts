/** Every script descriptor of src/connection/script-catalog.ts, for tests that check them all. */
import * as catalog from '../../src/connection/script-catalog.js';
import type { Script } from '../../src/connection/scripts.js';

export const scriptDescriptors: readonly Script<string, string, unknown>[] = (
  Object.values(catalog) as unknown[]
).filter(
  (value): value is Script<string, string, unknown> =>
    typeof value === 'object' && value !== null && 'file' in value,
);
