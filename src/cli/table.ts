/** Text layouts of the CLI's read commands: aligned tables and trees. */

/**
 * Rows under a header, each column as wide as its widest cell; a column of figures (numbers,
 * durations such as `4.2s`, `-` for none) aligned right.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  const numeric = header.map(
    (_, c) =>
      rows.length > 0 &&
      rows.every((row) => typeof row[c] === 'number' || /^(-|\d[\d.ms]*)$/u.test(String(row[c]))),
  );
  return cells
    .map((row) =>
      row
        .map((cell, c) =>
          numeric[c] === true ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A node of {@link tree}: a label and the nodes under it. */
export interface TreeNode {
  readonly label: string;
  readonly children: readonly TreeNode[];
}

/** Nodes drawn as a tree with box-drawing branches, as `tree(1)` draws folders. */
export function tree(nodes: readonly TreeNode[], indent = ''): string[] {
  return nodes.flatMap((node, i) => {
    const last = i === nodes.length - 1;
    return [
      `${indent}${last ? '└─ ' : '├─ '}${node.label}`,
      ...tree(node.children, `${indent}${last ? '   ' : '│  '}`),
    ];
  });
}
