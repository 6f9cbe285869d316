/**
 * The dashboard as an operator uses it: `sluice dashboard` (the built command) in a child
 * process, driven in Debian's headless Chromium through playwright-core. Screenshots go to
 * test-results/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sluice } from '../../src/index.js';
import { waitFor } from '../support/index.js';
import { startDashboardProcess } from '../support/cli.js';
import { declareWorkWithDeadLetters, useSluice } from '../support/sluice.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = fileURLToPath(new URL('../../test-results/', import.meta.url));
const TOKEN = 'browser-test-token-0123456789';

let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the dashboard tests need Debian's Chromium (apt-get install -y chromium)`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // No sandbox as root; no background traffic, which this machine's closed network refuses.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

/** Orders to `work`, which dead-letters through fanout `dlx` into `work.dlq`; one rejected. */
async function oneDeadLetter(sluice: Sluice): Promise<string> {
  await declareWorkWithDeadLetters(sluice);
  await sluice.declareQueue('audit', { partitions: 2 });
  await sluice.bindQueue('audit', 'orders', '#');
  const { messageId } = await sluice.publish('orders', 'order.created', { orderId: 7 });
  const rejecting = await sluice.consume('work', (msg) => msg.reject());
  await waitFor(async () => (await sluice.inspectQueue('work.dlq')).messages === 1, {
    timeoutMs: 15_000,
  });
  await rejecting.close();
  return messageId;
}

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  await page.goto(url);
  return page;
}

describe('dashboard in a browser', () => {
  it('shows the overview, opens a dead-letter queue and replays its message through a confirmation', async () => {
    const { sluice, namespace } = await useSluice();
    const messageId = await oneDeadLetter(sluice);
    const { url } = await startDashboardProcess(namespace, ['--token', TOKEN]);
    const page = await openPage(url);
    try {
      await page
        .getByTestId('queues')
        .getByRole('link', { name: /work\.dlq/u })
        .waitFor();
      await expect(page.getByTestId('bindings-graph').textContent()).resolves.toContain(
        'orders (topic)',
      );
      // The token moved from the address into the tab's storage.
      expect(page.url()).not.toContain('token=');
      // A second depth sample, so that the chart has a line.
      await page
        .locator('[data-testid="depth-chart"] polyline[points*=" "]')
        .first()
        .waitFor({ state: 'attached', timeout: 15_000 });
      await page.screenshot({ path: `${SCREENSHOTS}dashboard-overview.png`, fullPage: true });

      await page
        .getByTestId('queues')
        .getByRole('link', { name: /work\.dlq/u })
        .click();
      await page.getByTestId('dead-letter-list').getByText('rejected in work ×1').waitFor();
      await page.getByTestId('dead-letter-list').getByRole('button').first().click();
      // Shown once its fetch answers.
      await page.getByTestId('dead-letter-detail').filter({ hasText: messageId }).waitFor();
      // Cancel does nothing: the message stays where it is.
      await page.getByTestId('replay').click();
      await page.getByTestId('confirm-dialog').getByRole('button', { name: 'Cancel' }).click();
      await page.getByTestId('confirm-dialog').waitFor({ state: 'detached' });
      expect((await sluice.inspectQueue('work.dlq')).messages).toBe(1);
      await page.getByTestId('replay').click();
      // The dialog says how many messages the replay moves.
      await page
        .getByTestId('confirm-dialog')
        .getByText("Replay 1 ready message of 'work.dlq' to the queues they died in?")
        .waitFor();
      await page.screenshot({ path: `${SCREENSHOTS}dashboard-dead-letters.png`, fullPage: true });
      await page.getByTestId('confirm').click();
      await page.getByText('replayed 1, skipped 0, failed 0').waitFor();
    } finally {
      await page.close();
    }

    const delivered: { messageId: string; body: unknown }[] = [];
    const consumer = await sluice.consume('work', (msg) => {
      delivered.push({ messageId: msg.messageId, body: msg.body });
    });
    await waitFor(() => delivered.length === 1, { timeoutMs: 15_000 });
    await consumer.close();
    expect(delivered).toEqual([{ messageId, body: { orderId: 7 } }]);
    expect((await sluice.inspectQueue('work.dlq')).messages).toBe(0);
  });

  it('shows a queue with its consumers, totals, partitions and ready messages', async () => {
    const { sluice, namespace } = await useSluice();
    await oneDeadLetter(sluice);
    await sluice.publish('orders', 'order.paid', { orderId: 8 });
    // A consumer holding one of audit's two messages unacked.
    const holder = sluice.messages('audit', { prefetch: 1 });
    await holder[Symbol.asyncIterator]().next();
    await waitFor(async () => (await sluice.inspectQueue('audit')).unacked === 1);
    const { url } = await startDashboardProcess(namespace, ['--token', TOKEN]);
    const page = await openPage(`${url}#/queues/audit`);
    try {
      await page.getByTestId('partitions').getByRole('row').nth(2).waitFor();
      await expect(page.getByTestId('ready-messages').textContent()).resolves.toContain('orderId');
      const consumer = page.getByTestId('consumers').getByRole('row').nth(1).getByRole('cell');
      await expect(consumer.allTextContents()).resolves.toEqual([
        holder.name,
        'no',
        '0, 1',
        '1',
        expect.stringMatching(/^[\d.]+s$/u),
      ]);
      const totals = page.getByTestId('queue-totals');
      await expect(totals.getByRole('columnheader').allTextContents()).resolves.toContain(
        'dead-lettered: delivery_limit',
      );
      // published 2, delivered 1, acked 0, redelivered 0.
      await expect(
        totals.getByRole('row').nth(1).getByRole('cell').allTextContents(),
      ).resolves.toEqual(['2', '1', '0', '0', '0', '0', '0', '0', '0', '0']);
      await page.screenshot({ path: `${SCREENSHOTS}dashboard-queue.png`, fullPage: true });
    } finally {
      await page.close();
    }
    await holder.close();
  });

  it('charts ready, unacked and delayed messages of a failing queue', async () => {
    const { sluice, namespace } = await useSluice();
    await sluice.declareQueue('failing');
    await sluice.publish('', 'failing', 'doomed');
    // Every failure parks the message for a minute: it sits in the delayed set.
    const consumer = await sluice.consume(
      'failing',
      () => {
        throw new Error('always');
      },
      { retry: { initialDelayMs: 60_000, jitter: 0 } },
    );
    await waitFor(async () => (await sluice.inspectQueue('failing')).delayed === 1, {
      timeoutMs: 15_000,
    });
    const { url } = await startDashboardProcess(namespace, ['--token', TOKEN]);
    const page = await openPage(url);
    try {
      const line = (state: string) =>
        page.locator(
          `[data-testid="depth-chart"] polyline[data-queue="failing"][data-state="${state}"]`,
        );
      // Two samples at least, so that each line has points.
      await line('delayed').and(page.locator('[points*=" "]')).waitFor({
        state: 'attached',
        timeout: 15_000,
      });
      await expect(line('ready').count()).resolves.toBe(1);
      await expect(line('unacked').count()).resolves.toBe(1);
      // The delayed line is off the axis (at 1, the chart's top); ready and unacked are on it.
      const heights = await Promise.all(
        ['ready', 'unacked', 'delayed'].map(async (state) => {
          const points = (await line(state).getAttribute('points')) ?? '';
          return Number(points.split(' ').at(-1)?.split(',')[1]);
        }),
      );
      expect(heights[2]).toBeLessThan(heights[0] as number);
      expect(heights[0]).toBe(heights[1]);
      const row = page.getByTestId('queues').getByRole('row').nth(1).getByRole('cell');
      await expect(
        page.getByTestId('queues').getByRole('columnheader').allTextContents(),
      ).resolves.toEqual(expect.arrayContaining(['redeliver', 'dead-letter', 'dropped']));
      await expect(row.first().textContent()).resolves.toBe('failing');
      await page.screenshot({ path: `${SCREENSHOTS}dashboard-failing.png`, fullPage: true });
    } finally {
      await page.close();
    }
    await consumer.close();
    expect((await sluice.stats('failing')).totals.redelivered).toBe(1);
  });

  it('in read-only mode hides write actions and refuses them with 403; without the token with 401', async () => {
    const { sluice, namespace } = await useSluice();
    await oneDeadLetter(sluice);
    const readOnly = await startDashboardProcess(namespace, ['--read-only', '--token', TOKEN]);
    const page = await openPage(`${readOnly.url}#/queues/work.dlq`);
    try {
      await page.getByTestId('dead-letter-list').waitFor();
      await expect(page.getByTestId('mode').textContent()).resolves.toBe('read-only');
      expect(await page.getByTestId('replay').count()).toBe(0);
      expect(await page.getByTestId('purge').count()).toBe(0);
      const status = await page.evaluate(
        async (token) =>
          (
            await fetch('api/queues/work.dlq/purge', {
              method: 'POST',
              headers: { 'x-sluice-token': token },
            })
          ).status,
        TOKEN,
      );
      expect(status).toBe(403);
    } finally {
      await page.close();
    }
    const writable = await startDashboardProcess(namespace, ['--token', TOKEN]);
    const noToken = await fetch(new URL('api/queues/work.dlq/purge', writable.url), {
      method: 'POST',
    });
    expect(noToken.status).toBe(401);
    expect((await sluice.inspectQueue('work.dlq')).messages).toBe(1);
  });
});
