import * as k8s from '@kubernetes/client-node';

/** For `.catch()` on a create: an object that already exists (409) is fine, any other error is rethrown. */
export function ignoreAlreadyExists(err: unknown): void {
  if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
}
