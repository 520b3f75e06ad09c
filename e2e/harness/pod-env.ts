// What both Pod runners (pod-runner.ts with podman, pod-sandbox.ts for the data plane) take from a pod spec as
// kubelet does: the Pod fields a fieldRef can name, and `$(VAR)` expansion.
import type * as k8s from '@kubernetes/client-node';

/** The fieldRef paths a runner resolves, for `pod` with the given Pod and host IPs. */
export function podFields(
  pod: k8s.V1Pod,
  ips: { readonly podIP: string | undefined; readonly hostIP: string | undefined },
): Record<string, string | undefined> {
  return {
    'metadata.name': pod.metadata?.name,
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.uid': pod.metadata?.uid,
    'spec.nodeName': pod.spec?.nodeName,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
    'status.podIP': ips.podIP,
    'status.hostIP': ips.hostIP,
  };
}

/** `$(VAR)` from `env`, `$$` as a literal `$`, an unknown `$(VAR)` left as it is: what kubelet does. */
export function expandVars(v: string, env: ReadonlyMap<string, string> | Readonly<Record<string, string>>): string {
  const get = (n: string) => (env instanceof Map ? env.get(n) : (env as Record<string, string>)[n]);
  return v.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n: string | undefined) =>
    n === undefined ? '$' : (get(n) ?? m),
  );
}
