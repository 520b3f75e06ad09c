import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ConditionData, LocalExport, Resolution } from '../core/index.js';
import type { GossipStatus, OriginStatus } from '../gossip/index.js';
import { NodeMetrics } from './node-metrics.js';

const origin = (o: Partial<OriginStatus> & { origin: string }): OriginStatus => ({
  records: 0,
  maxVersion: { wallMs: 0, logical: 0 } as unknown as OriginStatus['maxVersion'],
  alive: true,
  ...o,
});

const status = (origins: OriginStatus[]): GossipStatus => ({
  clusterId: 'cluster-1',
  clusterSetName: 'set',
  peerId: 'p',
  version: '0.2.0',
  wire: { version: 1, min: 1 },
  incompatiblePeers: [],
  addrs: [],
  peers: [],
  origins,
  settled: [],
});

const cond = (type: string, s: 'True' | 'False'): ConditionData => ({ type, status: s, reason: 'r', message: '' });

function setup(defaultMetrics = false) {
  const registry = new Registry();
  let now = 1_000_000;
  let current: GossipStatus | undefined;
  const live = new Map([
    ['cluster-1', 9],
    ['cluster-2', 2],
  ]);
  const metrics = new NodeMetrics({
    registry,
    defaultMetrics,
    buildInfo: { version: '1.2.3', commit: 'abc' },
    gossipStatus: () => current,
    liveRecords: () => live,
    now: () => now,
  });
  return {
    registry,
    metrics,
    set: (s: GossipStatus | undefined) => (current = s),
    advance: (ms: number) => (now += ms),
    text: () => registry.metrics(),
  };
}

describe('NodeMetrics', () => {
  it('has no per-cluster series for a cluster that left the ClusterSet', async () => {
    const t = setup();
    t.set(status([origin({ origin: 'cluster-2' }), origin({ origin: 'cluster-3', alive: false, left: true })]));
    const text = await t.text();
    expect(text).toContain('mcs_gossip_cluster_alive{cluster="cluster-2"} 1');
    expect(text).not.toContain('cluster="cluster-3"');
  });

  it('reports the build and, once per registry, the default process metrics', async () => {
    const t = setup(true);
    const text = await t.text();
    expect(text).toContain(`mcs_gossip_build_info{version="1.2.3",node_version="${process.version}",commit="abc"} 1`);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_heap_size_used_bytes');
    // Default metrics already on a registry are not registered twice (that would throw).
    const other = new Registry();
    collectDefaultMetrics({ register: other });
    expect(() => new NodeMetrics({ registry: other, gossipStatus: () => undefined })).not.toThrow();
    expect(await other.metrics()).toContain('mcs_gossip_build_info{version="unknown"');
  });

  it('reports each remote cluster at scrape time and drops forgotten ones', async () => {
    const t = setup();
    t.set(
      status([
        origin({ origin: 'cluster-1' }),
        origin({ origin: 'cluster-2', records: 3, heartbeatAgeMs: 1500 }),
        origin({ origin: 'cluster-3', alive: false }),
      ]),
    );
    let text = await t.text();
    expect(text).toContain('mcs_gossip_cluster_alive{cluster="cluster-2"} 1');
    expect(text).toContain('mcs_gossip_cluster_alive{cluster="cluster-3"} 0');
    expect(text).not.toContain('cluster="cluster-1"');
    expect(text).toContain('mcs_gossip_cluster_records{cluster="cluster-2"} 2');
    expect(text).toContain('mcs_gossip_cluster_records{cluster="cluster-3"} 0');
    expect(text).toContain('mcs_gossip_cluster_heartbeat_age_seconds{cluster="cluster-2"} 1.5');
    expect(text).not.toContain('mcs_gossip_cluster_heartbeat_age_seconds{cluster="cluster-3"}');
    expect(text).toContain('mcs_gossip_cluster_last_unheard_timestamp_seconds{cluster="cluster-2"} 0');
    t.set(status([origin({ origin: 'cluster-2', alive: false, heartbeatAgeMs: 6000 })]));
    t.advance(1000);
    text = await t.text();
    expect(text).toContain('mcs_gossip_cluster_alive{cluster="cluster-2"} 0');
    expect(text).toContain('mcs_gossip_cluster_last_unheard_timestamp_seconds{cluster="cluster-2"} 1001');
    expect(text).not.toContain('cluster="cluster-3"');
    t.set(undefined);
    t.advance(1000);
    expect(await t.text()).not.toContain('mcs_gossip_cluster_alive{');
  });

  it('notes a transition seen by a liveness check between scrapes', async () => {
    const t = setup();
    t.metrics.observe(status([origin({ origin: 'cluster-2' })]));
    t.advance(2000);
    t.metrics.observe(status([origin({ origin: 'cluster-2', alive: false })]));
    t.advance(2000);
    t.set(status([origin({ origin: 'cluster-2', alive: true })]));
    const text = await t.text();
    expect(text).toContain('mcs_gossip_cluster_alive{cluster="cluster-2"} 1');
    expect(text).toContain('mcs_gossip_cluster_last_unheard_timestamp_seconds{cluster="cluster-2"} 1002');
  });

  it('counts exports by validity, imports and conflicts of the last resolution', async () => {
    const t = setup();
    let text = await t.text();
    expect(text).toContain('mcs_gossip_exports{valid="true"} 0');
    expect(text).toContain('mcs_gossip_imports 0');
    const exports: LocalExport[] = [
      { namespace: 'a', name: 'x', valid: cond('Valid', 'True') },
      { namespace: 'a', name: 'y', valid: cond('Valid', 'True') },
      { namespace: 'a', name: 'z', valid: cond('Valid', 'False') },
    ];
    const resolution = {
      serviceImports: ['p', 'q', 'r', 's'].map((name) => ({ metadata: { namespace: 'a', name } })),
      endpointSlices: [],
      exportConditions: [
        { namespace: 'a', name: 'x', conditions: [cond('Ready', 'True'), cond('Conflict', 'True')] },
        { namespace: 'a', name: 'y', conditions: [cond('Conflict', 'False')] },
        { namespace: 'b', name: 'other', conditions: [cond('Conflict', 'True')] },
      ],
      unimportable: [],
    } as unknown as Resolution;
    t.metrics.resolved(resolution, exports);
    text = await t.text();
    expect(text).toContain('mcs_gossip_exports{valid="true"} 2');
    expect(text).toContain('mcs_gossip_exports{valid="false"} 1');
    expect(text).toContain('mcs_gossip_imports 4');
    expect(text).toContain('mcs_gossip_conflicts 1');
    // A per-key pass changes only the keys it resolved: a/p no longer imported, a/y now in conflict.
    t.metrics.resolvedKeys(
      new Map([
        ['a/p', { endpointSlices: [], unimportable: [] }],
        [
          'a/y',
          {
            serviceImport: { metadata: { namespace: 'a', name: 'y' } },
            endpointSlices: [],
            unimportable: [],
            exportConditions: [cond('Conflict', 'True')],
          },
        ],
      ]) as unknown as Parameters<typeof t.metrics.resolvedKeys>[0],
      exports,
    );
    text = await t.text();
    expect(text).toContain('mcs_gossip_imports 4');
    expect(text).toContain('mcs_gossip_conflicts 2');
  });
});
