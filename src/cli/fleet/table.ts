/** Plain text tables as kubectl prints them: columns padded to their widest cell, two spaces apart. */

/** Renders rows (the first is the header) with aligned columns; trailing spaces are trimmed. */
export function table(rows: readonly (readonly string[])[]): string {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(0, ...rows.map((r) => [...(r[i] ?? '')].length)));
  return rows
    .map((r) =>
      Array.from({ length: columns }, (_, i) => {
        const cell = r[i] ?? '';
        return cell + ' '.repeat((widths[i] ?? 0) - [...cell].length);
      })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
