/** Labels, names and defaults shared by resolution and the adapters. */

/** Value of `endpointslice.kubernetes.io/managed-by` on imported slices (never `endpointslice-controller.k8s.io`). */
export const MANAGED_BY = 'mcs-gossip.x-k8s.io';

export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const LABEL_SERVICE_NAME = 'multicluster.kubernetes.io/service-name';
export const LABEL_SOURCE_CLUSTER = 'multicluster.kubernetes.io/source-cluster';
/** Points kube-proxy at the derived Service so it load-balances the ClusterSetIP over imported slices. */
export const LABEL_KUBE_SERVICE_NAME = 'kubernetes.io/service-name';

export const MCS_API_VERSION = 'multicluster.x-k8s.io/v1beta1';

/** Default endpoint TTL (KEP "Endpoint TTL"): an origin unheard this long has its endpoints withdrawn. */
export const DEFAULT_ENDPOINT_TTL_MS = 30_000;

/** Endpoints per imported slice: the default `--max-endpoints-per-slice` of kube-controller-manager. */
export const MAX_ENDPOINTS_PER_SLICE = 100;
