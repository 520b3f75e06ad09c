// Polling helpers shared by the harness, the integration tests and the conformance specs.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Errors that end a wait at once instead of counting as "not yet": an abort, or one marked `fatal`. */
export function isFatal(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { fatal?: unknown }).fatal === true);
}

/**
 * Polls `fn` every 200 ms until it returns something other than undefined, and returns that. Errors thrown by `fn`
 * count as "not yet", except fatal ones (see isFatal), which end the wait; at the deadline it throws, naming
 * `what` and the last error.
 */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      if (isFatal(err)) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms: ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
    }
    await sleep(200);
  }
}

/** A plain text table: columns padded to their widest cell. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
