// The identity mcs-gossip nodes of the local ClusterSet run under: a ServiceAccount bound to the Helm chart's own
// least-privilege ClusterRole, so tests prove the node needs no more, and the API server's audit log tells the
// node's writes apart from everyone else's.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { ignoreAlreadyExists } from './api-errors.js';
import YAML from 'yaml';
import { repoRoot, toolsBin } from './paths.js';

const run = promisify(execFile);

export const SYSTEM_NAMESPACE = 'mcs-gossip-system';
export const SA_NAME = 'mcs-gossip';
/** The node's user name in audit logs. */
export const SA_USER = `system:serviceaccount:${SYSTEM_NAMESPACE}:${SA_NAME}`;

/**
 * The node's ClusterRole rules, exactly as the Helm chart grants them: rendered with the built helm from
 * charts/mcs-gossip/templates/rbac.yaml, so every test that runs a node proves the chart's RBAC is enough.
 */
export function chartNodeRules(): Promise<k8s.V1PolicyRule[]> {
  // The chart does not change while a process runs: render it once, not once per cluster.
  renderedRules ??= renderChartNodeRules();
  return renderedRules;
}

let renderedRules: Promise<k8s.V1PolicyRule[]> | undefined;

async function renderChartNodeRules(): Promise<k8s.V1PolicyRule[]> {
  const { stdout } = await run(
    join(toolsBin, 'helm'),
    [
      'template',
      'mcs-gossip',
      join(repoRoot, 'charts', 'mcs-gossip'),
      '--show-only=templates/rbac.yaml',
      // The chart refuses to render without keys; any value does for RBAC.
      '--set=identity.keyBase64=eA==',
      '--set=clusterSetKey.keyBase64=eA==',
    ],
    { cwd: repoRoot },
  );
  const role = k8s.loadAllYaml(stdout).find((o) => (o as k8s.KubernetesObject).kind === 'ClusterRole') as
    k8s.V1ClusterRole | undefined;
  if (role?.rules === undefined) throw new Error('charts/mcs-gossip/templates/rbac.yaml renders no ClusterRole rules');
  return role.rules;
}

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
  await core.createNamespace({ body: { metadata: { name: SYSTEM_NAMESPACE } } }).catch(ignoreAlreadyExists);
  await core
    .createNamespacedServiceAccount({ namespace: SYSTEM_NAMESPACE, body: { metadata: { name: SA_NAME } } })
    .catch(ignoreAlreadyExists);
  const rules = await chartNodeRules();
  await rbac.createClusterRole({ body: { metadata: { name: SA_NAME }, rules } }).catch(ignoreAlreadyExists);
  await rbac
    .createClusterRoleBinding({
      body: {
        metadata: { name: SA_NAME },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: SA_NAME },
        subjects: [{ kind: 'ServiceAccount', name: SA_NAME, namespace: SYSTEM_NAMESPACE }],
      },
    })
    .catch(ignoreAlreadyExists);
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
