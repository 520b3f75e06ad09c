// The identity mcs-gossip nodes of the local ClusterSet run under: a ServiceAccount with least-privilege RBAC (the
// same rules the Helm chart's ClusterRole grants), so tests prove the node needs no more, and the API server's audit
// log tells the node's writes apart from everyone else's.
import { writeFile } from 'node:fs/promises';
import * as k8s from '@kubernetes/client-node';
import YAML from 'yaml';

export const SYSTEM_NAMESPACE = 'mcs-gossip-system';
export const SA_NAME = 'mcs-gossip';
/** The node's user name in audit logs. */
export const SA_USER = `system:serviceaccount:${SYSTEM_NAMESPACE}:${SA_NAME}`;

/** The permissions the node needs. */
export const NODE_RULES: k8s.V1PolicyRule[] = [
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  {
    apiGroups: ['discovery.k8s.io'],
    resources: ['endpointslices'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  { apiGroups: ['multicluster.x-k8s.io'], resources: ['serviceexports'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['multicluster.x-k8s.io'], resources: ['serviceexports/status'], verbs: ['get', 'update', 'patch'] },
  {
    apiGroups: ['multicluster.x-k8s.io'],
    resources: ['serviceimports'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  { apiGroups: ['multicluster.x-k8s.io'], resources: ['serviceimports/status'], verbs: ['get', 'update', 'patch'] },
  {
    apiGroups: ['about.k8s.io'],
    resources: ['clusterproperties'],
    verbs: ['get', 'list', 'watch', 'create', 'update'],
  },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

const ignoreConflict = (err: unknown) => {
  if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
};

/**
 * Creates the node's ServiceAccount, ClusterRole and binding through `adminConfig` (idempotent) and writes to `file`
 * a kubeconfig that authenticates as the ServiceAccount (a bound token valid for a day); returns it loaded.
 */
export async function writeNodeKubeConfig(
  adminConfig: k8s.KubeConfig,
  cluster: string,
  file: string,
): Promise<k8s.KubeConfig> {
  const core = adminConfig.makeApiClient(k8s.CoreV1Api);
  const rbac = adminConfig.makeApiClient(k8s.RbacAuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: SYSTEM_NAMESPACE } } }).catch(ignoreConflict);
  await core
    .createNamespacedServiceAccount({ namespace: SYSTEM_NAMESPACE, body: { metadata: { name: SA_NAME } } })
    .catch(ignoreConflict);
  await rbac.createClusterRole({ body: { metadata: { name: SA_NAME }, rules: NODE_RULES } }).catch(ignoreConflict);
  await rbac
    .createClusterRoleBinding({
      body: {
        metadata: { name: SA_NAME },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: SA_NAME },
        subjects: [{ kind: 'ServiceAccount', name: SA_NAME, namespace: SYSTEM_NAMESPACE }],
      },
    })
    .catch(ignoreConflict);
  const tr = await core.createNamespacedServiceAccountToken({
    name: SA_NAME,
    namespace: SYSTEM_NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
  });
  const server = adminConfig.getCurrentCluster();
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': cluster,
    clusters: [{ name: cluster, cluster: { server: server?.server, 'certificate-authority-data': server?.caData } }],
    users: [{ name: SA_NAME, user: { token: tr.status?.token ?? '' } }],
    contexts: [{ name: cluster, context: { cluster, user: SA_NAME } }],
  };
  await writeFile(file, YAML.stringify(doc), { mode: 0o600 });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  return kc;
}
