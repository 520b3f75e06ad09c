// Shared helpers of the gossip integration tests: real libp2p nodes on 127.0.0.1 in this process.
import type { PeerId } from '@libp2p/interface';
import { ClusterSetState } from '../../src/core/index.js';
import type { ServiceKey, ExportedService } from '../../src/core/index.js';
import { createGossipNode, generateIdentityKey, generatePsk, MemoryCluster } from '../../src/gossip/index.js';
import type { GossipNode, GossipNodeInit } from '../../src/gossip/index.js';

export interface TestNode {
  readonly node: GossipNode;
  readonly cluster: MemoryCluster;
  readonly init: GossipNodeInit;
}

/** A connection gater whose blocked set can be changed at run time (to cut and heal partitions). */
export class Partition {
  readonly blocked = new Set<string>();
  gaterFor(self: () => PeerId | undefined): NonNullable<GossipNodeInit['connectionGater']> {
    const deny = (peer: PeerId): boolean => {
      const me = self()?.toString();
      return me !== undefined && this.blocked.has(`${me}|${peer.toString()}`);
    };
    return {
      denyDialPeer: deny,
      denyInboundEncryptedConnection: deny,
      denyOutboundEncryptedConnection: deny,
    };
  }
  /** Blocks traffic between every node of `a` and every node of `b` and closes their connections. */
  async cut(a: readonly TestNode[], b: readonly TestNode[]): Promise<void> {
    for (const x of a)
      for (const y of b) {
        this.blocked.add(`${x.node.peerId.toString()}|${y.node.peerId.toString()}`);
        this.blocked.add(`${y.node.peerId.toString()}|${x.node.peerId.toString()}`);
      }
    for (const x of a) for (const y of b) await x.node.libp2p.hangUp(y.node.peerId).catch(() => undefined);
  }
  heal(): void {
    this.blocked.clear();
  }
}

export interface MeshOptions {
  readonly psk?: Uint8Array;
  readonly clusterSetName?: string;
  readonly partition?: Partition;
  readonly overrides?: Partial<GossipNodeInit>;
}

export const FAST: Partial<GossipNodeInit> = {
  heartbeatIntervalMs: 1000,
  syncIntervalMs: 3000,
  redialBaseMs: 200,
  redialMaxMs: 2000,
};

export async function startNode(
  clusterId: string,
  bootstrap: readonly string[],
  options: MeshOptions = {},
  privateKey?: GossipNodeInit['privateKey'],
): Promise<TestNode> {
  const holder: { node?: GossipNode } = {};
  const init: GossipNodeInit = {
    clusterId,
    clusterSetName: options.clusterSetName ?? 'test',
    privateKey: privateKey ?? (await generateIdentityKey()),
    psk: options.psk,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    state: new ClusterSetState(),
    ...FAST,
    ...(options.partition === undefined
      ? {}
      : { connectionGater: options.partition.gaterFor(() => holder.node?.peerId) }),
    ...options.overrides,
  };
  const node = createGossipNode(init);
  holder.node = node;
  await node.start();
  return { node, cluster: new MemoryCluster(node), init };
}

export const addrOf = (n: TestNode): string => n.node.libp2p.getMultiaddrs()[0]!.toString();

/** Starts `count` nodes; each bootstraps to node 0 and to one random earlier node. */
export async function startMesh(count: number, options: MeshOptions = {}): Promise<TestNode[]> {
  const psk = options.psk ?? generatePsk();
  const nodes: TestNode[] = [];
  for (let i = 0; i < count; i++) {
    const boot = new Set<string>();
    if (i > 0) boot.add(addrOf(nodes[0]!));
    if (i > 1) boot.add(addrOf(nodes[1 + Math.floor(Math.random() * (i - 1))]!));
    nodes.push(await startNode(`cluster-${i}`, [...boot], { ...options, psk }));
  }
  return nodes;
}

export async function stopAll(nodes: readonly TestNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.node.stop()));
}

/** Polls `cond` every 50 ms until true; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A comparable fingerprint of a node's records: per origin, the count and the hash of (key, version, content). */
export function fingerprint(n: TestNode): string {
  return (
    n.node.state
      .digest()
      // Origins known only by a heartbeat hold no records: they do not make states differ.
      .filter((d) => d.count > 0)
      .map((d) => `${d.origin}:${d.count}:${d.hash}`)
      .join(',')
  );
}

export function converged(nodes: readonly TestNode[]): boolean {
  const first = fingerprint(nodes[0]!);
  return nodes.every((n) => fingerprint(n) === first);
}

export type Desired = Map<ServiceKey, ExportedService>;
