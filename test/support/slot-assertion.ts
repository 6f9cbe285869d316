/**
 * Setup file of every integration project: checks that each Lua script sluice runs keeps its
 * keys in one hash slot (DESIGN.md section 2), on every server, not only on Cluster. The one
 * exception is a script whose descriptor allows several slots on a standalone server (the
 * publish of one tick to several queues), and then only when the server is standalone. A call
 * that breaks the rule is refused before it is sent, and fails the test it ran in.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, expect, inject } from 'vitest';
import { scriptBodies } from '../../src/connection/scripts.js';
import { scriptDescriptors } from './script-descriptors.js';
import { hashSlot } from '../../src/keys/slot.js';

interface SentCommand {
  readonly name: string;
  readonly args: readonly (string | Buffer | number)[];
  readonly promise: Promise<unknown>;
  reject?: (error: Error) => void;
}

const crossSlotOnStandalone = new Set(
  scriptDescriptors.filter((d) => d.crossSlotOnStandalone).map((d) => d.file),
);
const fileBySha = new Map(
  [...scriptBodies].map(([file, body]) => [createHash('sha1').update(body).digest('hex'), file]),
);
/** The port of the project's server when it is a one-node cluster; extra servers are standalone. */
const clusterPort = inject('redisClusterNode') ? Number(new URL(inject('redisUrl')).port) : -1;
const violations: string[] = [];

/** Why a script call breaks the one-slot rule, or undefined when it keeps it. */
function violation(command: SentCommand, clusterNode: boolean): string | undefined {
  const [scriptOrSha, keyCount, ...rest] = command.args;
  // EVAL carries the script itself: ioredis sends it after a NOSCRIPT reply to EVALSHA.
  const sha =
    command.name === 'evalsha'
      ? String(scriptOrSha)
      : createHash('sha1').update(String(scriptOrSha)).digest('hex');
  const file = fileBySha.get(sha);
  const keys = rest.slice(0, Number(keyCount)).map((key) => String(key));
  const slots = new Set(keys.map((key) => hashSlot(key)));
  if (slots.size <= 1) return undefined;
  if (!clusterNode && file !== undefined && crossSlotOnStandalone.has(file)) return undefined;
  return `script ${file ?? String(scriptOrSha)} touches ${slots.size} slots: ${keys.join(' ')}`;
}

type SendCommand = (this: Redis, command: SentCommand, ...rest: unknown[]) => unknown;
const prototype = Redis.prototype as unknown as { sendCommand: SendCommand };
const send = prototype.sendCommand;
prototype.sendCommand = function checkedSendCommand(this: Redis, command, ...rest) {
  if (command.name === 'evalsha' || command.name === 'eval') {
    const problem = violation(command, this.options.port === clusterPort);
    if (problem !== undefined) {
      violations.push(problem);
      command.reject?.(new Error(`slot assertion: ${problem}`));
      return command.promise;
    }
  }
  return send.call(this, command, ...rest);
};

afterEach(() => {
  const found = violations.splice(0);
  expect(found, 'script calls whose keys span hash slots').toEqual([]);
});
