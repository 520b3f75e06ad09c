// The node's metrics and log format on a two-cluster local ClusterSet with real `mcs-gossip run` processes.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, startComponent, stopComponent, up, type ClusterSetState as Harness } from '../harness/clusterset.js';
import { nodeHttp, nodeOf, nodeReady } from './node-helpers.js';
import { admin, deployWeb, ensureNamespace, eventually, exportService } from './kube-helpers.js';

const CLUSTERS = ['cluster-1', 'cluster-2'] as const;

/** The value of one series (`name{labels}` exactly as exposed, or a bare name), undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('metrics and logs of mcs-gossip run', () => {
  let dir: string;
  let harness: Harness;
  const metrics = async (c: string) => (await nodeHttp(harness, c, '/metrics')).body;
  const ready = (c: string) => nodeReady(harness, c);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-metrics-'));
    harness = await up({
      dir,
      clusters: CLUSTERS.length,
      nodes: true,
      extraArgs: { 'mcs-gossip': ['--endpoint-ttl=5s', '--heartbeat-interval=1s', '--sync-interval=5s'] },
      onProgress: () => {},
    });
    for (const c of CLUSTERS) {
      await ensureNamespace(admin(harness, c).core, 'web');
      await ready(c);
    }
  });

  afterAll(async () => {
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  });

  it('exposes every metric of the node', async () => {
    const text = await eventually('cluster-2 alive in cluster-1', async () => {
      const t = await metrics('cluster-1');
      return sample(t, 'mcs_gossip_cluster_alive{cluster="cluster-2"}') === 1 ? t : undefined;
    });
    expect(text).toMatch(/^mcs_gossip_build_info\{version="[^"]+",node_version="v24\.[^"]+"\} 1$/m);
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'mcs_gossip_cluster_heartbeat_age_seconds{cluster="cluster-2"}',
      'mcs_gossip_cluster_records{cluster="cluster-2"}',
      'mcs_gossip_cluster_last_unheard_timestamp_seconds{cluster="cluster-2"}',
      'mcs_gossip_exports{valid="true"}',
      'mcs_gossip_exports{valid="false"}',
      'mcs_gossip_imports',
      'mcs_gossip_conflicts',
      'mcs_gossip_mesh_peers',
      'mcs_gossip_topic_subscribers',
      'mcs_gossip_pubsub_peers',
    ])
      expect(sample(text, name), name).toBeTypeOf('number');
    // Only remote clusters, once each.
    expect(text).not.toContain('mcs_gossip_cluster_alive{cluster="cluster-1"}');
    expect(sample(text, 'mcs_gossip_cluster_last_unheard_timestamp_seconds{cluster="cluster-2"}')).toBe(0);
    expect(sample(text, 'mcs_gossip_topic_subscribers')).toBe(1);
    expect(sample(text, 'mcs_gossip_cluster_heartbeat_age_seconds{cluster="cluster-2"}')).toBeLessThan(5);
    // Gossipsub's own metrics, and no peer refused for its version.
    expect(sample(text, 'gossipsub_rpc_recv_message_total')).toBeGreaterThan(0);
    expect(sample(text, 'gossipsub_msg_received_prevalidation_total{topic="clusterset"}')).toBeGreaterThan(0);
    expect(sample(text, 'gossipsub_peers_per_protocol_count{protocol="/meshsub/1.2.0"}')).toBe(1);
    expect(text).toContain('# TYPE mcs_gossip_incompatible_peers gauge');
    expect(text).not.toMatch(/^mcs_gossip_incompatible_peers\{/m);
  });

  it('counts exports, imports and the records held of each cluster', async () => {
    const before = await metrics('cluster-1');
    expect(sample(before, 'mcs_gossip_exports{valid="true"}')).toBe(0);
    expect(sample(before, 'mcs_gossip_imports')).toBe(0);
    const one = admin(harness, 'cluster-1');
    await deployWeb(one, 'web', 'web', 1);
    await exportService(one, 'web', 'web');
    await exportService(one, 'web', 'missing'); // no Service: Valid False
    await eventually('export counts in cluster-1', async () => {
      const t = await metrics('cluster-1');
      return sample(t, 'mcs_gossip_exports{valid="true"}') === 1 &&
        sample(t, 'mcs_gossip_exports{valid="false"}') === 1 &&
        sample(t, 'mcs_gossip_imports') === 1 &&
        sample(t, 'mcs_gossip_conflicts') === 0
        ? true
        : undefined;
    });
    await eventually('cluster-1 counted in cluster-2', async () => {
      const t = await metrics('cluster-2');
      return sample(t, 'mcs_gossip_imports') === 1 &&
        sample(t, 'mcs_gossip_cluster_records{cluster="cluster-1"}') === 1 &&
        sample(t, 'mcs_gossip_exports{valid="true"}') === 0
        ? true
        : undefined;
    });
  });

  it('reports a stopped cluster as unheard after the TTL, and alive again when it returns', async () => {
    const alive = async () => sample(await metrics('cluster-1'), 'mcs_gossip_cluster_alive{cluster="cluster-2"}');
    expect(await alive()).toBe(1);
    const stoppedAt = Date.now() / 1000;
    await stopComponent(harness, 'cluster-2', 'mcs-gossip');
    await eventually('cluster-2 unheard in cluster-1', async () => ((await alive()) === 0 ? true : undefined), 30_000);
    const t = await metrics('cluster-1');
    const unheard = sample(t, 'mcs_gossip_cluster_last_unheard_timestamp_seconds{cluster="cluster-2"}') ?? 0;
    expect(unheard).toBeGreaterThan(stoppedAt);
    expect(unheard).toBeLessThanOrEqual(Date.now() / 1000);
    expect(sample(t, 'mcs_gossip_cluster_heartbeat_age_seconds{cluster="cluster-2"}')).toBeGreaterThan(5);
    await startComponent(harness, 'cluster-2', 'mcs-gossip');
    await ready('cluster-2');
    await eventually('cluster-2 alive again in cluster-1', async () => ((await alive()) === 1 ? true : undefined));
    // The moment it went unheard is kept.
    expect(
      sample(await metrics('cluster-1'), 'mcs_gossip_cluster_last_unheard_timestamp_seconds{cluster="cluster-2"}'),
    ).toBe(unheard);
  });

  it('logs JSON lines with a string level, an ISO time and the cluster', async () => {
    const lines = (await readFile(nodeOf(harness, 'cluster-1').log, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level?: unknown; time?: unknown; cluster?: unknown; msg?: unknown });
    const joined = lines.find((l) => l.msg === 'joined the ClusterSet');
    expect(joined).toMatchObject({ level: 'info', cluster: 'cluster-1' });
    expect(joined?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (const l of lines) {
      expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(l.level);
      expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    // Once the identity is known, every line names the cluster (once: JSON.parse would hide a duplicate key).
    const from = lines.indexOf(joined!);
    for (const l of lines.slice(from)) expect(l.cluster).toBe('cluster-1');
    const raw = await readFile(nodeOf(harness, 'cluster-1').log, 'utf8');
    expect(raw).not.toMatch(/"cluster":"cluster-1".*"cluster":"cluster-1"/);
  });
});
