import * as k8s from '@kubernetes/client-node';

/**
 * One line for a failed API call: `HTTP 429 TooManyRequests: storage is (re)initializing` instead of the client's
 * message with the whole response body and headers.
 */
export function describeError(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    let detail: string;
    const body: unknown = err.body;
    try {
      const status = (typeof body === 'string' ? JSON.parse(body) : body) as { reason?: string; message?: string };
      detail = [status.reason, status.message].filter((x) => x !== undefined && x !== '').join(': ');
    } catch {
      detail = typeof body === 'string' ? body.slice(0, 200) : '';
    }
    return `HTTP ${err.code}${detail === '' ? '' : ` ${detail}`}`;
  }
  if (err instanceof Error) return err.message;
  const message = (err as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : String(err);
}

/** The API server's own message of a failed call (its Status `message`), else {@link describeError}'s line. */
export function apiServerMessage(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body: unknown = err.body;
    try {
      const status = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown };
      if (typeof status.message === 'string' && status.message !== '') return status.message;
    } catch {
      // not a Status: fall through
    }
  }
  return describeError(err);
}
