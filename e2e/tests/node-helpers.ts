// The mcs-gossip nodes of a local ClusterSet, as tests reach them: the process record, its HTTP endpoint, readiness.
import type { ClusterSetState, ComponentState } from '../harness/clusterset.js';
import { isAlive, tail } from '../harness/process.js';
import { eventually } from '../harness/wait.js';

/** The cluster's mcs-gossip node as the harness started it (pid, PeerId, listen address, health URL). */
export function nodeOf(harness: ClusterSetState, cluster: string): ComponentState {
  const n = harness.clusters.find((x) => x.name === cluster)?.components.find((p) => p.name === 'mcs-gossip');
  if (n === undefined) throw new Error(`no mcs-gossip node in ${cluster}`);
  return n;
}

/** GET `path` of the node's HTTP endpoint (/readyz, /status, /metrics, …). */
export async function nodeHttp(
  harness: ClusterSetState,
  cluster: string,
  path: string,
): Promise<{ code: number; body: string }> {
  const res = await fetch(new URL(path, nodeOf(harness, cluster).health));
  return { code: res.status, body: await res.text() };
}

/** Waits until the node is ready and holds nothing back (no import kept as it is until its origins sync). */
export function nodeReady(harness: ClusterSetState, cluster: string, timeoutMs = 60_000): Promise<true> {
  return eventually(
    `${cluster} node ready`,
    async () => {
      const n = nodeOf(harness, cluster);
      if (!isAlive(n)) throw new Error(`node exited:\n${await tail(n.log, 20)}`);
      const r = await nodeHttp(harness, cluster, '/readyz');
      return r.code === 200 && !r.body.includes('holding') ? true : undefined;
    },
    timeoutMs,
  );
}
