/** A cluster id: the value of the `cluster.clusterset.k8s.io` ClusterProperty, unique in the ClusterSet. */
export type ClusterId = string;

const CLUSTER_ID = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Whether `s` can be a cluster id here: it becomes a label value (`multicluster.kubernetes.io/source-cluster`, at most
 * 63 characters) and part of imported EndpointSlice names (a DNS subdomain), so lowercase alphanumerics, "-" and ".".
 */
export function isClusterId(s: string): boolean {
  return s.length <= 63 && CLUSTER_ID.test(s);
}

/** A service key `<namespace>/<name>`: namespace sameness makes it the identity of a service across clusters. */
export type ServiceKey = string;

/** The key of the service `name` in `namespace`. */
export function serviceKey(namespace: string, name: string): ServiceKey {
  return `${namespace}/${name}`;
}

/** Splits a key made by {@link serviceKey}; namespaces cannot contain "/", so the first "/" separates. */
export function splitServiceKey(key: ServiceKey): { readonly namespace: string; readonly name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/**
 * Orders strings by UTF-16 code units. Every cluster must sort the same way, so never `localeCompare`
 * (its result depends on the ICU data of the runtime).
 */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
