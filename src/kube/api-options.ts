/**
 * Per-request options for the generated Kubernetes API clients: an AbortSignal on the request, so no API call can
 * hang for ever (a hung call must not keep a leader writing past its renew deadline, nor a reconcile stuck).
 */
import * as k8s from '@kubernetes/client-node';

/** Default time allowed for one API request (a write or a read of a single object). */
export const DEFAULT_API_TIMEOUT_MS = 30_000;

/** `base` with `signal` set on the request (other middleware, e.g. a Content-Type header, is kept). */
export function withSignal(signal: AbortSignal, base?: k8s.ConfigurationOptions): k8s.ConfigurationOptions {
  const abort: k8s.ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      return new k8s.Observable(Promise.resolve(ctx));
    },
    post: (res) => new k8s.Observable(Promise.resolve(res)),
  };
  return { ...base, middleware: [...(base?.middleware ?? []), abort], middlewareMergeStrategy: 'append' };
}

/** `base` with a request that is aborted after `ms`. */
export function withTimeout(ms: number, base?: k8s.ConfigurationOptions): k8s.ConfigurationOptions {
  return withSignal(AbortSignal.timeout(Math.max(1, Math.ceil(ms))), base);
}
