/**
 * Records what a real RabbitMQ broker does in the scenarios of scripts/rabbitmq/scenarios.ts
 * and writes it to test/fixtures/rabbitmq-scenarios.json, which the replay test
 * (test/integration/rabbitmq-scenarios.test.ts) plays against sluice. Not run by `npm test`:
 * it needs a broker.
 *
 *   npx tsx scripts/record-rabbitmq.ts [amqp://guest:guest@127.0.0.1:5672] [--only <name part>]
 *
 * `AMQP_URL` may give the URL instead. With `--only`, the matching scenarios are played and
 * printed, and the fixture is left alone.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'amqplib';
import {
  FIXTURE_URL,
  play,
  type RecordedScenario,
  type ScenarioFixture,
} from '../test/support/scenarios.js';
import { AmqpDriver } from './rabbitmq/amqp-driver.js';
import { SCENARIOS } from './rabbitmq/scenarios.js';

/**
 * The fixture as JSON with one step and one observation per line, so that a step reads next
 * to its neighbours and a new recording diffs step by step.
 */
function formatFixture(fixture: ScenarioFixture): string {
  const lines = (values: readonly unknown[]): string =>
    values.map((value) => `        ${JSON.stringify(value)}`).join(',\n');
  const scenarios = fixture.scenarios.map((scenario) =>
    [
      '    {',
      `      "name": ${JSON.stringify(scenario.name)},`,
      `      "area": ${JSON.stringify(scenario.area)},`,
      `      "question": ${JSON.stringify(scenario.question)},`,
      `      "steps": [\n${lines(scenario.steps)}\n      ],`,
      `      "observations": [\n${lines(scenario.observations)}\n      ]`,
      '    }',
    ].join('\n'),
  );
  return [
    '{',
    `  "broker": ${JSON.stringify(fixture.broker)},`,
    `  "client": ${JSON.stringify(fixture.client)},`,
    `  "recordedAt": ${JSON.stringify(fixture.recordedAt)},`,
    `  "scenarios": [\n${scenarios.join(',\n')}\n  ]`,
    '}\n',
  ].join('\n');
}

const args = process.argv.slice(2);
const onlyIndex = args.indexOf('--only');
const only = onlyIndex === -1 ? undefined : args.splice(onlyIndex, 2)[1];
const url = args[0] ?? process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const names = SCENARIOS.map((scenario) => scenario.name);
const duplicate = names.find((name, i) => names.indexOf(name) !== i);
if (duplicate !== undefined) throw new Error(`two scenarios are named '${duplicate}'`);

const connection = await connect(url);
// A server-side connection close (an unexpected protocol error) must end the run loudly.
connection.on('error', (error: unknown) => {
  throw error;
});
const properties = connection.connection.serverProperties;
const broker = `${String(properties.product)} ${String(properties.version)}`;
const amqplibVersion = (
  JSON.parse(
    readFileSync(new URL('../node_modules/amqplib/package.json', import.meta.url), 'utf8'),
  ) as { version: string }
).version;
const run = `sluice-rec-${randomBytes(4).toString('hex')}`;

const recorded: RecordedScenario[] = [];
try {
  for (const [index, scenario] of SCENARIOS.entries()) {
    if (only !== undefined && !scenario.name.includes(only)) continue;
    const driver = new AmqpDriver(connection, `${run}-${index}.`);
    try {
      const observations = await play(driver, scenario.steps);
      recorded.push({ ...scenario, observations });
      process.stdout.write(`recorded: ${scenario.name}\n`);
    } finally {
      await driver.dispose();
    }
  }
} finally {
  await connection.close();
}

if (only !== undefined) {
  process.stdout.write(`${JSON.stringify(recorded, null, 2)}\n`);
} else {
  const fixture: ScenarioFixture = {
    broker,
    client: `amqplib ${amqplibVersion}`,
    recordedAt: new Date().toISOString().slice(0, 10),
    scenarios: recorded,
  };
  writeFileSync(FIXTURE_URL, formatFixture(fixture));
  process.stdout.write(
    `${recorded.length} scenarios from ${broker} written to ${FIXTURE_URL.pathname}\n`,
  );
}
