// mcs-gossip nodes for the local ClusterSet: one `mcs-gossip run` process per cluster on its own loopback address
// (cluster i on 127.0.0.(i+1)), one ClusterSet key for all, one identity key each, every node bootstrapped to the
// others with their PeerIds pinned to their cluster ids.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { generateIdentityKey, encodeIdentityKey, generatePsk, writeSecretFile } from '../../src/gossip/keys.js';
import { writeNodeKubeConfig } from './node-identity.js';
import { freePorts } from './ports.js';
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
  const clusterSetKey = join(dir, 'clusterset.key');
  await writeSecretFile(clusterSetKey, generatePsk(), { force: true });
  const partial = await Promise.all(
    clusters.map(async (c) => {
      const host = `127.0.0.${c.index + 1}`;
      const [gossipPort, metricsPort] = (await freePorts(2, host)) as [number, number];
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
    const argv = [
      process.execPath,
      '--import',
      'tsx',
      join(repoRoot, 'src', 'cli', 'main.ts'),
      'run',
      `--kubeconfig=${p.kubeconfig}`,
      `--context=${p.c.name}`,
      `--identity-key=${p.identityKey}`,
      `--clusterset-key=${clusterSetKey}`,
      `--listen=${p.listen}`,
      `--metrics-addr=${p.host}:${p.metricsPort}`,
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
