// mcs-gossip nodes for the local ClusterSet: one `mcs-gossip run` process per cluster on its own loopback address
// (cluster i on 127.0.0.(i+1)), one ClusterSet key for all, one identity key each, every node bootstrapped to the
// others with their PeerIds pinned to their cluster ids. Each node's HTTP endpoint listens on 0.0.0.0 (its port, as
// every gossip port, is distinct across the ClusterSet), and each node process is registered as a Pod of its cluster (registerNodePod) so
// the API server's pod proxy reaches its /status, as it reaches a real node pod's.
import { mkdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { generateIdentityKey, encodeIdentityKey, generatePsk, writeSecretFile } from '../../src/gossip/keys.js';
import { ignoreAlreadyExists } from './api-errors.js';
import { writeNodeKubeConfig } from './node-identity.js';
import { freePorts } from './ports.js';
import { ensureBuilt, programArgv } from './program.js';
import { startDetached, type StartedProcess } from './process.js';

export interface NodePlan {
  readonly cluster: string;
  readonly host: string;
  readonly gossipPort: number;
  readonly metricsPort: number;
  readonly peerId: string;
  readonly identityKey: string;
  readonly listen: string;
  /** The full `mcs-gossip run` command line (program first), reused to restart the node. */
  readonly argv: readonly string[];
}

/**
 * Writes keys and a least-privilege kubeconfig per cluster (`kubeconfig` is the cluster's admin kubeconfig, used to
 * create the node's ServiceAccount) and plans one node per cluster. `extraArgs` go to every node's `run` flags.
 */
export async function planNodes(
  dir: string,
  clusters: readonly { name: string; index: number; kubeconfig: string }[],
  repoRoot: string,
  extraArgs: readonly string[] = [],
): Promise<NodePlan[]> {
  await ensureBuilt();
  const clusterSetKey = join(dir, 'clusterset.key');
  await writeSecretFile(clusterSetKey, generatePsk(), { force: true });
  // The HTTP endpoints listen on every address (the pod proxy dials the machine's address), the gossip ports on
  // each node's loopback address. All the ports are drawn in one go, free on 0.0.0.0 (so free on every 127.0.0.x
  // too) and distinct: no gossip port can be another node's metrics port, nor two nodes share one.
  const ports = await freePorts(2 * clusters.length, '0.0.0.0');
  const partial = await Promise.all(
    clusters.map(async (c, i) => {
      const host = `127.0.0.${c.index + 1}`;
      const gossipPort = ports[2 * i] as number;
      const metricsPort = ports[2 * i + 1] as number;
      const nodeDir = join(dir, c.name, 'node');
      await mkdir(nodeDir, { recursive: true });
      const key = await generateIdentityKey();
      const identityKey = join(nodeDir, 'identity.key');
      await writeSecretFile(identityKey, encodeIdentityKey(key), { force: true });
      const peerId = peerIdFromPrivateKey(key).toString();
      const admin = new k8s.KubeConfig();
      admin.loadFromFile(c.kubeconfig);
      const kubeconfig = join(nodeDir, 'kubeconfig');
      await writeNodeKubeConfig(admin, c.name, kubeconfig);
      const listen = `/ip4/${host}/tcp/${gossipPort}`;
      return { c, host, gossipPort, metricsPort, peerId, identityKey, kubeconfig, listen };
    }),
  );
  return partial.map((p) => {
    const bootstrap = partial
      .filter((o) => o !== p)
      .flatMap((o) => ['--bootstrap', `${o.c.name}=${o.listen}/p2p/${o.peerId}`]);
    // The compiled program (dist/, built by ensureBuilt before any node starts), as the image runs it.
    const argv = [
      ...programArgv(),
      'run',
      `--kubeconfig=${p.kubeconfig}`,
      `--context=${p.c.name}`,
      `--identity-key=${p.identityKey}`,
      `--clusterset-key=${clusterSetKey}`,
      `--listen=${p.listen}`,
      `--metrics-addr=0.0.0.0:${p.metricsPort}`,
      ...bootstrap,
      ...extraArgs,
    ];
    return {
      cluster: p.c.name,
      host: p.host,
      gossipPort: p.gossipPort,
      metricsPort: p.metricsPort,
      peerId: p.peerId,
      identityKey: p.identityKey,
      listen: p.listen,
      argv,
    };
  });
}

export function launchNode(argv: readonly string[], log: string, cwd: string): StartedProcess {
  const [program, ...args] = argv;
  if (program === undefined) throw new Error('empty node command line');
  return startDetached(program, args, log, cwd);
}

/** Labels of the Pod standing for a node process: those the Helm chart gives its node pods. */
export const NODE_POD_LABELS = { 'app.kubernetes.io/name': 'mcs-gossip', 'app.kubernetes.io/instance': 'mcs-gossip' };
export const NODE_POD_NAMESPACE = 'mcs-gossip-system';
export const NODE_POD_NAME = 'mcs-gossip-node';
/** The Node the node Pods are bound to: not annotated for kwok, which would manage its pods and rewrite podIP. */
export const NODE_HOST = 'mcs-gossip-host';

/**
 * The address the API server can proxy to for a pod of this machine: the first non-internal, non-link-local IPv4
 * address (the API server refuses loopback pod IPs). Undefined when the machine has none.
 */
export function machineAddress(): string | undefined {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.')) return a.address;
    }
  }
  return undefined;
}

/**
 * Registers the node process of `plan` as a Pod of its cluster (namespace mcs-gossip-system, the chart's labels, the
 * container port `metrics`, the node's `run` flags as args), bound to the Node mcs-gossip-host and marked Running
 * at `ip`, so `GET /api/v1/namespaces/mcs-gossip-system/pods/mcs-gossip-node:<port>/proxy/status` reaches the
 * process. Idempotent; the Pod stays while the process is stopped or restarted (the proxy then fails, as for a
 * crashed pod).
 */
export async function registerNodePod(adminConfig: k8s.KubeConfig, plan: NodePlan, ip: string): Promise<void> {
  const core = adminConfig.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NODE_POD_NAMESPACE } } }).catch(ignoreAlreadyExists);
  await core
    .createNode({
      body: {
        metadata: { name: NODE_HOST, labels: { 'kubernetes.io/hostname': NODE_HOST, 'kubernetes.io/os': 'linux' } },
        // No workload of a test may land here: only the node Pods (which tolerate everything) are bound to it.
        spec: { taints: [{ key: 'mcs-gossip.x-k8s.io/node-process-host', effect: 'NoSchedule' }] },
      },
    })
    .catch(ignoreAlreadyExists);
  const runAt = plan.argv.indexOf('run');
  const args = runAt < 0 ? [] : plan.argv.slice(runAt);
  await core
    .createNamespacedPod({
      namespace: NODE_POD_NAMESPACE,
      body: {
        metadata: { name: NODE_POD_NAME, labels: NODE_POD_LABELS },
        spec: {
          nodeName: NODE_HOST,
          serviceAccountName: 'mcs-gossip',
          automountServiceAccountToken: false,
          // The Node never reports (no kubelet): the node lifecycle controller taints it; the Pod stays.
          tolerations: [{ operator: 'Exists' }],
          containers: [
            {
              name: 'mcs-gossip',
              image: 'mcs-gossip:local-process',
              args,
              ports: [
                { name: 'gossip', containerPort: plan.gossipPort, protocol: 'TCP' },
                { name: 'metrics', containerPort: plan.metricsPort, protocol: 'TCP' },
              ],
            },
          ],
        },
      },
    })
    .catch(ignoreAlreadyExists);
  const pod = await core.readNamespacedPod({ name: NODE_POD_NAME, namespace: NODE_POD_NAMESPACE });
  const now = new Date();
  pod.status = {
    ...pod.status,
    phase: 'Running',
    hostIP: ip,
    hostIPs: [{ ip }],
    podIP: ip,
    podIPs: [{ ip }],
    startTime: now,
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
  };
  await core.replaceNamespacedPodStatus({ name: NODE_POD_NAME, namespace: NODE_POD_NAMESPACE, body: pod });
}
