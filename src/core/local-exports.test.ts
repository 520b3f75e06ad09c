import { describe, expect, it } from 'vitest';
import { ClusterSetState } from './cluster-set-state.js';
import { withTransitionTimes } from './conditions.js';
import type { ExportRecord } from './export-record.js';
import { HlcClock } from './hlc.js';
import { exportRecordsFromObjects, localExports } from './local-exports.js';
import { planOwnRecords } from './own-records.js';
import { endpointSlice, exported, namespace, service, serviceExport } from './test-support/fixtures.js';

const NS = 'demo';

function objects(extra: { services?: unknown[]; slices?: unknown[]; exports?: unknown[] } = {}) {
  return {
    namespaces: [namespace(NS)],
    services: (extra.services ?? [service(NS, 'web')]) as ReturnType<typeof service>[],
    serviceExports: (extra.exports ?? [serviceExport(NS, 'web', '2026-01-01T00:00:00Z')]) as ReturnType<
      typeof serviceExport
    >[],
    endpointSlices: (extra.slices ?? []) as ReturnType<typeof endpointSlice>[],
  };
}

describe('localExports', () => {
  it('normalises EndpointSlices: grouped by address type and ports, sorted, deduplicated preferring ready', () => {
    const a = endpointSlice(NS, 'web', 'web-1', 'IPv4', ['10.0.0.3', '10.0.0.1']);
    const b = endpointSlice(NS, 'web', 'web-2', 'IPv4', ['10.0.0.2']);
    const notReady = {
      ...endpointSlice(NS, 'web', 'web-3', 'IPv4', ['10.0.0.1']),
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: false } }],
    };
    const other = endpointSlice(NS, 'other', 'other-1', 'IPv4', ['10.9.9.9']);
    const imported = {
      ...endpointSlice(NS, 'web', 'derived-x', 'IPv4', ['10.8.8.8']),
      metadata: {
        name: 'derived-x',
        namespace: NS,
        labels: { 'kubernetes.io/service-name': 'web', 'multicluster.kubernetes.io/service-name': 'web' },
      },
    };
    const one = localExports(objects({ slices: [a, b, notReady, other, imported] }));
    const two = localExports(objects({ slices: [imported, other, notReady, b, a] }));
    expect(one).toEqual(two);
    const groups = one.desired.get(`${NS}/web`)!.endpointGroups;
    expect(groups).toHaveLength(1);
    expect(groups[0]!.endpoints.map((e) => e.addresses[0])).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    expect(groups[0]!.endpoints[0]!.conditions.ready).toBe(true);
  });

  it('copies defaulted values exactly and maps types', () => {
    const svc = service(NS, 'web', {
      type: 'LoadBalancer',
      ports: [{ name: 'h', port: 80, appProtocol: 'http' }],
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } },
      trafficDistribution: 'PreferClose',
    });
    const s = localExports(objects({ services: [svc] })).desired.get(`${NS}/web`)!;
    expect(s.type).toBe('ClusterSetIP');
    expect(s.ports).toEqual([{ name: 'h', protocol: 'TCP', port: 80, appProtocol: 'http' }]);
    expect(s.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 30 } });
    expect(s.trafficDistribution).toBe('PreferClose');
    expect(s.exportCreatedMs).toBe(Date.parse('2026-01-01T00:00:00Z'));
  });

  it('ignores ServiceExports being deleted', () => {
    const se = serviceExport(NS, 'web', '2026-01-01T00:00:00Z');
    const deleting = { ...se, metadata: { ...se.metadata, deletionTimestamp: '2026-01-02T00:00:00Z' } };
    expect(localExports(objects({ exports: [deleting] })).exports).toEqual([]);
  });

  it('stamps every valid export as a record of the cluster', () => {
    const { records } = exportRecordsFromObjects('a', objects(), { wallMs: 7, logical: 0 });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      origin: 'a',
      namespace: NS,
      name: 'web',
      removed: false,
      version: { wallMs: 7 },
    });
  });
});

describe('planOwnRecords', () => {
  it('publishes new and changed exports, tombstones gone ones, and nothing when nothing changed', () => {
    const clock = new HlcClock();
    let now = 1_000;
    const stamp = () => clock.tick(now++);
    const state = new ClusterSetState();
    const first = planOwnRecords(
      'a',
      state.recordsOf('a'),
      new Map([
        ['n/x', exported()],
        ['n/y', exported()],
      ]),
      stamp,
    );
    expect(first.map((r) => [r.name, r.removed])).toEqual([
      ['x', false],
      ['y', false],
    ]);
    state.merge(first);
    expect(
      planOwnRecords(
        'a',
        state.recordsOf('a'),
        new Map([
          ['n/x', exported()],
          ['n/y', exported()],
        ]),
        stamp,
      ),
    ).toEqual([]);
    const changed = planOwnRecords(
      'a',
      state.recordsOf('a'),
      new Map([['n/x', exported({ sessionAffinity: 'ClientIP' })]]),
      stamp,
    );
    expect(changed.map((r) => [r.name, r.removed])).toEqual([
      ['x', false],
      ['y', true],
    ]);
    state.merge(changed);
    expect(state.record('a', 'n/y')?.removed).toBe(true);
  });

  it('after a restart, tombstones exports learned back from peers that no longer exist', () => {
    const old: ExportRecord = {
      origin: 'a',
      namespace: 'n',
      name: 'gone',
      version: { wallMs: 5_000, logical: 3 },
      removed: false,
      service: exported(),
    };
    const state = new ClusterSetState();
    state.merge([old]); // handed back by anti-entropy
    const clock = new HlcClock();
    clock.seed(state.digest().find((d) => d.origin === 'a')!.maxVersion);
    const plan = planOwnRecords('a', state.recordsOf('a'), new Map(), () => clock.tick(10)); // wall clock behind
    expect(plan).toHaveLength(1);
    expect(state.merge(plan).applied).toEqual(plan);
    expect(state.record('a', 'n/gone')?.removed).toBe(true);
  });
});

describe('withTransitionTimes', () => {
  it('keeps lastTransitionTime when status and reason are unchanged, stamps `now` otherwise', () => {
    const previous = [
      { type: 'Valid', status: 'True' as const, reason: 'Valid', message: 'old', lastTransitionTime: 'T0' },
      { type: 'Conflict', status: 'False' as const, reason: 'NoConflicts', message: '', lastTransitionTime: 'T0' },
    ];
    const next = withTransitionTimes(
      [
        { type: 'Valid', status: 'True', reason: 'Valid', message: 'new' },
        { type: 'Conflict', status: 'True', reason: 'PortConflict', message: 'm' },
        { type: 'Ready', status: 'True', reason: 'Exported', message: '' },
      ],
      previous,
      'T1',
    );
    expect(next.map((c) => [c.type, c.message, c.lastTransitionTime])).toEqual([
      ['Valid', 'new', 'T0'],
      ['Conflict', 'm', 'T1'],
      ['Ready', '', 'T1'],
    ]);
  });
});
