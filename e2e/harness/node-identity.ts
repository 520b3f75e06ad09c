// The identity mcs-gossip nodes of the local ClusterSet run under: a ServiceAccount bound to the Helm chart's own
// least-privilege ClusterRole and its Role for the leader-election Lease, so tests prove the node needs no more, and
// the API server's audit log tells the node's writes apart from everyone else's.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
 * `--kube-version` for `helm template`: the chart requires Kubernetes >= 1.29 (Chart.yaml kubeVersion), and a helm
 * built from Go modules without the Makefile's ldflags assumes v1.20 when no cluster is asked. The version the local
 * ClusterSet runs (e2e/tools/versions.env).
 */
export function helmKubeVersionArg(): string {
  const env = readFileSync(join(repoRoot, 'e2e', 'tools', 'versions.env'), 'utf8');
  const version = /^KUBERNETES_VERSION=(\S+)$/m.exec(env)?.[1];
  if (version === undefined) throw new Error('e2e/tools/versions.env has no KUBERNETES_VERSION');
  return `--kube-version=${version}`;
}

/** The node's RBAC exactly as the Helm chart grants it: the ClusterRole's rules, and the Role's for the Lease. */
export interface ChartRbac {
  readonly clusterRules: k8s.V1PolicyRule[];
  /** The Role in the release namespace (leader election): Leases, get and update only on the Lease `SA_NAME`. */
  readonly leaseRules: k8s.V1PolicyRule[];
}

/**
 * The node's ClusterRole rules, exactly as the Helm chart grants them: rendered with the built helm from
 * charts/mcs-gossip/templates/rbac.yaml, so every test that runs a node proves the chart's RBAC is enough.
 */
export async function chartNodeRules(): Promise<k8s.V1PolicyRule[]> {
  return (await chartRbac()).clusterRules;
}

/** The ClusterRole's and the Lease Role's rules of charts/mcs-gossip/templates/rbac.yaml (rendered once). */
export function chartRbac(): Promise<ChartRbac> {
  // The chart does not change while a process runs: render it once, not once per cluster.
  renderedRbac ??= renderChartRbac();
  return renderedRbac;
}

let renderedRbac: Promise<ChartRbac> | undefined;

async function renderChartRbac(): Promise<ChartRbac> {
  const { stdout } = await run(
    join(toolsBin, 'helm'),
    [
      'template',
      // Release `mcs-gossip` in SYSTEM_NAMESPACE: the chart's names are then `mcs-gossip`, the node's default
      // Lease name, so the Role's resourceNames fit nodes run without --lease-name.
      SA_NAME,
      join(repoRoot, 'charts', 'mcs-gossip'),
      `--namespace=${SYSTEM_NAMESPACE}`,
      helmKubeVersionArg(),
      '--show-only=templates/rbac.yaml',
      // The chart refuses to render without keys; any value does for RBAC.
      '--set=identity.keyBase64=eA==',
      '--set=clusterSetKey.keyBase64=eA==',
      // The Lease's Role is rendered only with leader election (replicas > 1); tests run replicas that elect.
      '--set=replicas=2',
    ],
    { cwd: repoRoot },
  );
  const objects = k8s.loadAllYaml(stdout) as k8s.KubernetesObject[];
  const role = objects.find((o) => o.kind === 'ClusterRole') as k8s.V1ClusterRole | undefined;
  if (role?.rules === undefined) throw new Error('charts/mcs-gossip/templates/rbac.yaml renders no ClusterRole rules');
  const leaseRole = objects.find((o) => o.kind === 'Role') as k8s.V1Role | undefined;
  if (leaseRole?.rules === undefined)
    throw new Error('charts/mcs-gossip/templates/rbac.yaml renders no Role rules (the Lease) with replicas=2');
  return { clusterRules: role.rules, leaseRules: leaseRole.rules };
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
  const { clusterRules, leaseRules } = await chartRbac();
  const subjects = [{ kind: 'ServiceAccount', name: SA_NAME, namespace: SYSTEM_NAMESPACE }];
  await rbac
    .createClusterRole({ body: { metadata: { name: SA_NAME }, rules: clusterRules } })
    .catch(ignoreAlreadyExists);
  await rbac
    .createClusterRoleBinding({
      body: {
        metadata: { name: SA_NAME },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: SA_NAME },
        subjects,
      },
    })
    .catch(ignoreAlreadyExists);
  // Leader election: the Lease in SYSTEM_NAMESPACE, as the chart's Role grants it in the release namespace.
  await rbac
    .createNamespacedRole({ namespace: SYSTEM_NAMESPACE, body: { metadata: { name: SA_NAME }, rules: leaseRules } })
    .catch(ignoreAlreadyExists);
  await rbac
    .createNamespacedRoleBinding({
      namespace: SYSTEM_NAMESPACE,
      body: {
        metadata: { name: SA_NAME },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: SA_NAME },
        subjects,
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
