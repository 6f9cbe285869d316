import type { Command } from 'commander';
import type { PeekedMessage } from '../../queue/peek.js';
import type { QueueInfo } from '../../queue/data.js';
import { confirm, type ConfirmFlags } from '../confirm.js';
import { duration } from '../../dashboard/format.js';
import { nameOf, positiveInteger, print, withSluice, type JsonFlag } from '../context.js';
import { toJson } from '../json.js';
import { progressBar } from '../progress.js';
import { table } from '../table.js';

/** Longest body preview on a line of `peek`. */
const PREVIEW_CHARS = 60;

/** A body as one short line: text as it is, bytes by their size, anything else as JSON. */
function preview(body: unknown): string {
  const text = Buffer.isBuffer(body)
    ? `<${body.length} bytes>`
    : typeof body === 'string'
      ? JSON.stringify(body)
      : toJson(body);
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text;
}

function peekLine(message: PeekedMessage): string {
  if (!('messageId' in message))
    return `${message.streamId}  p${message.partition}  (not a sluice message)`;
  const route = `${message.exchange || '(default)'} ${message.routingKey}`;
  return `${message.streamId}  p${message.partition}  ${message.messageId}  ${route}  ${preview(message.body)}`;
}

function inspectText(info: QueueInfo): string {
  const counts = table(
    ['queue', 'ready', 'unacked', 'delayed', 'dead-letter backlog', 'consumers'],
    [
      [
        info.name,
        info.messages,
        info.unacked,
        info.delayed,
        info.deadLetterBacklog,
        info.consumers,
      ],
    ],
  );
  const sections = [counts];
  if (info.partitions.length > 1 || info.partitions[0]?.owner !== undefined) {
    sections.push(
      table(
        ['partition', 'ready', 'unacked', 'owner'],
        info.partitions.map((p) => [
          p.partition,
          p.messages,
          p.unacked,
          p.owner === undefined ? '-' : `${p.owner.consumer} (token ${p.owner.token})`,
        ]),
      ),
    );
  }
  if (info.consumerDetails.length > 0) {
    sections.push(
      table(
        ['consumer', 'ordered', 'partitions', 'unacked', 'lease ends in'],
        info.consumerDetails.map((c) => [
          c.name,
          c.ordered ? 'yes' : 'no',
          c.partitions.length === 0 ? '-' : c.partitions.join(','),
          c.unacked,
          duration(c.leaseRemainingMs),
        ]),
      ),
    );
  }
  return sections.join('\n\n');
}

/** `sluice queue inspect|purge|delete`, `sluice peek` and `sluice move`. */
export function registerQueue(program: Command): void {
  const queueName = nameOf('queue');
  const queue = program.command('queue').description('inspect, purge or delete one queue');

  queue
    .command('inspect')
    .description(
      'counts of a queue and of each of its partitions, with their owners, and its live consumers',
    )
    .argument('<name>', 'the queue', queueName)
    .option('--json', 'as JSON')
    .action(async (name: string, options: JsonFlag) => {
      const info = await withSluice(program, (sluice) => sluice.inspectQueue(name));
      print(options.json === true ? toJson(info) : inspectText(info));
    });

  queue
    .command('purge')
    .description('delete the ready messages of a queue (unacked ones stay, as in RabbitMQ)')
    .argument('<name>', 'the queue', queueName)
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, options: ConfirmFlags) => {
      await withSluice(program, async (sluice) => {
        const { messages } = await sluice.inspectQueue(name);
        await confirm(`purge ${messages} ready messages of queue '${name}'?`, options);
        print(`purged ${await sluice.purgeQueue(name)}`);
      });
    });

  queue
    .command('delete')
    .description('delete a queue with its bindings and messages')
    .argument('<name>', 'the queue', queueName)
    .option('--if-empty', 'refuse if the queue holds messages')
    .option('--if-unused', 'refuse if consumers are registered on the queue')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, options: ConfirmFlags & { ifEmpty?: true; ifUnused?: true }) => {
      await withSluice(program, async (sluice) => {
        const { messages, unacked } = await sluice.inspectQueue(name);
        await confirm(
          `delete queue '${name}' with its ${messages + unacked} messages and its bindings?`,
          options,
        );
        await sluice.deleteQueue(name, { ifEmpty: options.ifEmpty, ifUnused: options.ifUnused });
        print(`deleted queue '${name}'`);
      });
    });

  program
    .command('peek')
    .description('show the oldest ready messages of a queue without consuming them')
    .argument('<queue>', 'the queue', queueName)
    .option('--count <n>', 'how many (at most 10000)', positiveInteger, 10)
    .option('--json', 'one JSON object per line')
    .action(async (name: string, options: JsonFlag & { count: number }) => {
      const messages = await withSluice(program, (sluice) =>
        sluice.peekQueue(name, { count: options.count }),
      );
      for (const message of messages)
        print(options.json === true ? toJson(message) : peekLine(message));
    });

  program
    .command('move')
    .description('move the ready messages of a queue into another queue')
    .argument('<from>', 'the queue to drain', queueName)
    .argument('<to>', 'the queue that receives them', queueName)
    .option('--limit <n>', 'move at most this many', positiveInteger)
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      `
Each message is taken out of <from> into <from>'s outbox in one step, then
copied into <to> under a dedup key naming it and deleted from the outbox: an
interrupted move loses nothing and, run again, finishes what it took without
copying a message twice. Messages a consumer holds stay in <from>. Works on
queues of one partition (as the dead-letter tools).`,
    )
    .action(async (from: string, to: string, options: ConfirmFlags & { limit?: number }) => {
      await withSluice(program, async (sluice) => {
        const [{ messages }] = await Promise.all([
          sluice.inspectQueue(from),
          sluice.inspectQueue(to),
        ]);
        const count = Math.min(messages, options.limit ?? messages);
        await confirm(`move ${count} ready messages from '${from}' to '${to}'?`, options);
        const progress = progressBar();
        const result = await sluice.dlq
          .replay(from, { toQueue: to, limit: options.limit, onProgress: progress.onProgress })
          .finally(progress.stop);
        print(`moved ${result.replayed}, skipped ${result.skipped}`);
      });
    });
}
