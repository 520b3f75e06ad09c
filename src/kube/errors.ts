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
  const message = (err as { message?: unknown } | undefined)?.message;
  const line = typeof message === 'string' ? message : String(err);
  // fetch's "fetch failed" says nothing: its cause (`connect ECONNREFUSED 127.0.0.1:6443`, a TLS error) does.
  const parts = [line];
  let cause = (err as { cause?: unknown } | undefined)?.cause;
  for (let depth = 0; depth < 3 && cause !== undefined && cause !== null; depth++) {
    const text = (cause as { message?: unknown }).message;
    const c = typeof text === 'string' && text !== '' ? text : (cause as { code?: unknown }).code;
    if (typeof c === 'string' && !parts.some((p) => p.includes(c))) parts.push(c);
    cause = (cause as { cause?: unknown }).cause;
  }
  return parts.join(': ');
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
