/** Small DOM builders: the pages are made of these, with no framework. */

type Child = Node | string | number | null | undefined | false;
type Attributes = Readonly<Record<string, string | number | boolean | EventListener | undefined>>;

function append(parent: Element, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === 'number' ? String(child) : child);
  }
}

function assign(element: Element, attributes: Attributes): void {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
}

/** An HTML element; attributes named `on…` with a function are listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  assign(element, attributes);
  append(element, children);
  return element;
}

/** An SVG element. */
export function s(tag: string, attributes: Attributes = {}, ...children: Child[]): SVGElement {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  assign(element, attributes);
  append(element, children);
  return element;
}

/** A table with a header row; `testid` names it for the browser tests. */
export function dataTable(
  testid: string,
  header: readonly string[],
  rows: readonly (readonly Child[])[],
  empty = 'none',
): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty', 'data-testid': testid }, empty);
  return h(
    'table',
    { 'data-testid': testid },
    h('thead', {}, h('tr', {}, ...header.map((cell) => h('th', {}, cell)))),
    h('tbody', {}, ...rows.map((row) => h('tr', {}, ...row.map((cell) => h('td', {}, cell))))),
  );
}

/** A number for a table cell: rates with one decimal, counts as they are. */
export function figure(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** A rate per second for a cell; a dash until the dashboard has two readings. */
export function rate(perSecond: number | null): string {
  return perSecond === null ? '—' : `${figure(Number(perSecond.toFixed(1)))}/s`;
}
