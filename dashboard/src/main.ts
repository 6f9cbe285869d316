import type { OverviewView } from '../../src/dashboard/types.js';
import { adoptToken, get } from './api.js';
import { h } from './dom.js';
import './style.css';
import { deadLetterQueues, overviewPage } from './views/overview.js';
import { queuePage } from './views/queue.js';

/** How often the page shown is read again: live rates and depths. */
const REFRESH_MS = 2000;

const app = document.getElementById('app') as HTMLElement;
let timer: ReturnType<typeof setTimeout> | undefined;
/** Counts renders, so that a slow answer for a page left meanwhile is dropped. */
let generation = 0;
/** What the last action on the page shown did; forgotten when another page is opened. */
let notice: string | undefined;

function header(overview: OverviewView): void {
  (document.getElementById('where') as HTMLElement).textContent =
    `namespace ${overview.namespace} · ${overview.server.name} ${overview.server.version}`;
  const mode = document.getElementById('mode') as HTMLElement;
  mode.textContent = overview.readOnly ? 'read-only' : '';
  mode.dataset.testid = 'mode';
}

/**
 * Renders the page the address names, and again every REFRESH_MS; a refresh leaves a page
 * with an open confirmation or a message shown in full as it is, unless `force`d (after an
 * action, whose effect must show).
 */
async function render(force = false): Promise<void> {
  clearTimeout(timer);
  const mine = ++generation;
  const route = window.location.hash.replace(/^#/u, '') || '/';
  try {
    const overview = await get<OverviewView>('overview');
    header(overview);
    const queue = /^\/queues\/([^/]+)$/u.exec(route)?.[1];
    const page =
      queue === undefined
        ? overviewPage(overview)
        : await queuePage(decodeURIComponent(queue), {
            view: overview.queues.find((row) => row.name === decodeURIComponent(queue)),
            deadLetterQueue: deadLetterQueues(overview).has(decodeURIComponent(queue)),
            readOnly: overview.readOnly,
            refresh: (text) => {
              notice = text;
              void render(true);
            },
            notice,
          });
    if (mine !== generation) return;
    const busy =
      !force &&
      (document.getElementById('modal-root')?.childElementCount !== 0 ||
        app.querySelector('[data-testid="dead-letter-detail"]:not([hidden])') !== null);
    if (!busy) app.replaceChildren(page);
  } catch (error) {
    if (mine !== generation) return;
    app.replaceChildren(
      h(
        'p',
        { class: 'error', 'data-testid': 'error' },
        `error: ${error instanceof Error ? error.message : String(error)}`,
      ),
    );
  }
  timer = setTimeout(() => void render(), REFRESH_MS);
}

adoptToken();
window.addEventListener('hashchange', () => {
  // A new page replaces whatever the old one had open, and says nothing of its actions.
  notice = undefined;
  document.getElementById('modal-root')?.replaceChildren();
  app.replaceChildren();
  void render();
});
void render();
