import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../usage-error.js';
import { createServer, type Socket } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { apiGet, bounded, selectNodePods } from './collect.js';
import {
  checkCidrs,
  checkConflicts,
  checkCoreDns,
  checkExportsHaveServices,
  checkIdentity,
  checkNamespaces,
  checkNode,
  checkPeers,
  checkReads,
  checkTtl,
  checkVersions,
  cidrsOverlap,
  exitCodeOf,
  formatCheck,
  parseCidr,
  runChecks,
  type DiagnoseContext,
} from './checks.js';
import { loadContexts, parseFleetFlags } from './flags.js';
import { READ_RESOURCE, type ContextReport, type NodeStatusView, type OriginView, type ReadTarget } from './model.js';
import { agreementProblems, formatAge, renderStatus, statusDocument } from './status-view.js';
import { table } from './table.js';

const IDS = ['cluster-1', 'cluster-2', 'cluster-3'];

function nodeStatus(id: string, over: Partial<NodeStatusView> = {}, origins?: OriginView[]): NodeStatusView {
  return {
    readiness: { ready: true, reason: 'synced' },
    identity: { clusterId: id, clusterSetName: 'set' },
    leader: true,
    version: '0.2.0',
    gossip: {
      peerId: `12D3KooW${id}xxxxxxxxxxxxxxxx`,
      origins: origins ?? IDS.map((o) => ({ origin: o, alive: true, heartbeatAgeMs: 1200, version: '0.2.0' })),
    },
    ...over,
  };
}

function report(
  id: string,
  over: Partial<ContextReport> = {},
  status: NodeStatusView | null = nodeStatus(id),
): ContextReport {
  const node = {
    namespace: 'mcs-gossip-system',
    pod: 'mcs-gossip-0',
    port: 9464,
    podIP: '10.0.0.1',
    args: ['run'],
    ...(status === null ? { error: 'unreachable: HTTP 503: connection refused' } : { status }),
  };
  return {
    context: id,
    clusterId: id,
    clusterSetName: 'set',
    pods: [node],
    node,
    exports: [],
    imports: [],
    namespaces: ['default', 'web'],
    readErrors: [],
    ...over,
  };
}

const imp = (namespace: string, name: string, clusters: string[], ports = ['http:80/TCP']) => ({
  namespace,
  name,
  type: 'ClusterSetIP',
  ips: ['10.101.0.9'],
  ports,
  clusters,
  conditions: [],
});
const exp = (namespace: string, name: string, conflict = false) => ({
  namespace,
  name,
  conditions: [
    { type: 'Valid', status: 'True' },
    { type: 'Ready', status: 'True' },
    { type: 'Conflict', status: conflict ? 'True' : 'False', reason: 'PortConflict', message: 'port 80 differs' },
  ],
});

describe('table', () => {
  it('aligns columns to the widest cell, two spaces apart, without trailing spaces', () => {
    expect(
      table([
        ['A', 'LONG HEADER', 'C'],
        ['wide cell', 'x', ''],
      ]),
    ).toBe('A          LONG HEADER  C\nwide cell  x');
  });
  it('formats ages like kubectl', () => {
    expect([formatAge(undefined), formatAge(450), formatAge(12_400), formatAge(184_000), formatAge(7_500_000)]).toEqual(
      ['-', '450ms', '12s', '3m4s', '2h5m'],
    );
  });
});

describe('agreement', () => {
  it('agrees when every node is ready, sees every cluster alive and imports alike', () => {
    const reports = IDS.map((id) =>
      report(id, {
        exports: id === 'cluster-1' ? [exp('web', 'web')] : [],
        imports: [imp('web', 'web', ['cluster-1'])],
      }),
    );
    expect(agreementProblems(reports)).toEqual([]);
    const text = renderStatus(statusDocument(reports));
    expect(text).toMatch(/^CONTEXT\s+CLUSTER\s+CLUSTERSET\s+VERSION\s+PEERID\s+LEADER\s+READY\s+REASON$/m);
    expect(text).toMatch(/^cluster-2\s+cluster-2\s+set\s+0\.2\.0\s+12D3KooW…xxxxxx\s+yes\s+True\s+synced$/m);
    expect(text).toMatch(/^cluster-1\s+cluster-3\s+yes\s+1s\s+0\.2\.0/m);
    expect(text).toMatch(
      /^web\/web\s+cluster-1\s+yes\s+True\s+True\s+False\s+ClusterSetIP\s+10\.101\.0\.9\s+http:80\/TCP\s+cluster-1$/m,
    );
    expect(text).toContain('All 3 contexts agree.');
  });

  it('names an unreachable node, a cluster seen dead and an import that is missing or differs', () => {
    const dead = IDS.map((o) => ({ origin: o, alive: o !== 'cluster-3', heartbeatAgeMs: 40_000 }));
    const reports = [
      report(
        'cluster-1',
        { exports: [exp('web', 'web')], imports: [imp('web', 'web', ['cluster-1'])] },
        nodeStatus('cluster-1', {}, dead),
      ),
      report('cluster-2', { imports: [imp('web', 'web', ['cluster-1'], ['http:81/TCP'])] }),
      report('cluster-3', { imports: [] }, null),
    ];
    const problems = agreementProblems(reports);
    expect(problems).toContain('cluster-1: sees cluster-3 not alive');
    expect(problems).toContain(
      'cluster-3: node mcs-gossip-system/mcs-gossip-0 unreachable: HTTP 503: connection refused',
    );
    expect(problems).toContain('cluster-3: no ServiceImport web/web');
    expect(problems.find((p) => p.startsWith('ServiceImport web/web differs'))).toContain('http:81/TCP');
    const doc = statusDocument(reports);
    expect(doc.agreed).toBe(false);
    expect(doc.clusters[2]).toMatchObject({ reachable: false, clusterId: 'cluster-3' });
    expect(renderStatus(doc)).toMatch(
      /^cluster-3\s+cluster-3\s+set\s+-\s+-\s+-\s+Unreachable\s+unreachable: HTTP 503/m,
    );
  });

  it('lets a subset of the contexts agree, but not nodes that see different clusters alive', () => {
    expect(agreementProblems([report('cluster-2')])).toEqual([]);
    const without3 = IDS.map((o) => ({ origin: o, alive: o !== 'cluster-3' }));
    expect(
      agreementProblems([report('cluster-1'), report('cluster-2', {}, nodeStatus('cluster-2', {}, without3))]),
    ).toEqual([
      'the nodes see different clusters alive: cluster-1: cluster-1, cluster-2, cluster-3; cluster-2: cluster-1, cluster-2',
    ]);
  });

  it('expects no import where the namespace is missing, nor of an invalid export', () => {
    const reports = [
      report('cluster-1', {
        exports: [
          exp('web', 'web'),
          { namespace: 'web', name: 'nosvc', conditions: [{ type: 'Valid', status: 'False' }] },
        ],
        imports: [imp('web', 'web', ['cluster-1'])],
      }),
      report('cluster-2', { namespaces: ['default'] }),
      report('cluster-3', { imports: [imp('web', 'web', ['cluster-1'])] }),
    ];
    expect(agreementProblems(reports)).toEqual([]);
    expect(renderStatus(statusDocument(reports))).toMatch(/^web\/web\s+cluster-2\s+no \(namespace missing\)/m);
  });
});

const forbidden = (what: ReadTarget, verb = 'list') => ({
  what,
  resource: READ_RESOURCE[what],
  message: `HTTP 403 Forbidden: ${what} is forbidden: User "sre" cannot ${verb} resource "${what}"`,
});

describe('read errors', () => {
  it('status: a forbidden list is named under the table, in JSON, and is not agreement', () => {
    const reports = [
      report('cluster-1', { exports: [exp('web', 'web')], imports: [imp('web', 'web', ['cluster-1'])] }),
      // cluster-2 may not list ServiceExports nor ServiceImports: it has none as far as the CLI knows.
      report('cluster-2', { readErrors: [forbidden('serviceexports'), forbidden('serviceimports')] }),
      report('cluster-3', { imports: [imp('web', 'web', ['cluster-1'])] }),
    ];
    const doc = statusDocument(reports);
    expect(doc.agreed).toBe(false);
    expect(doc.problems).toEqual([
      'cluster-2: ServiceExports unreadable: HTTP 403 Forbidden: serviceexports is forbidden: User "sre" cannot list resource "serviceexports"',
      'cluster-2: ServiceImports unreadable: HTTP 403 Forbidden: serviceimports is forbidden: User "sre" cannot list resource "serviceimports"',
    ]);
    expect(doc.clusters[1]!.readErrors).toEqual([
      { resource: 'ServiceExports', message: expect.stringContaining('HTTP 403 Forbidden') },
      { resource: 'ServiceImports', message: expect.stringContaining('HTTP 403 Forbidden') },
    ]);
    expect(doc.clusters[0]!.readErrors).toEqual([]);
    const text = renderStatus(doc);
    expect(text).toMatch(/^cluster-2: ServiceExports unreadable: HTTP 403 Forbidden: serviceexports is forbidden/m);
    expect(text).toMatch(/^web\/web\s+cluster-2\s+unreadable\s+-\s+-\s+-\s+unreadable\s/m);
    expect(text).not.toContain('agree.');
  });

  it('status: the API server answering nothing is said once; unreadable node pods are the reason', () => {
    const down = report('cluster-1', {
      apiError: 'list Namespaces: no answer within 8000 ms',
      pods: [],
      node: undefined,
      readErrors: [forbidden('pods'), forbidden('namespaces')],
    });
    const pods = report('cluster-2', { pods: [], node: undefined, readErrors: [forbidden('pods')] });
    const doc = statusDocument([down, pods]);
    expect(doc.clusters[0]!.readErrors).toEqual([]);
    expect(doc.clusters[1]!.reason).toMatch(/^node pods unreadable: HTTP 403 Forbidden/);
    expect(doc.problems).toEqual([
      'cluster-1: API server unreachable (list Namespaces: no answer within 8000 ms)',
      expect.stringMatching(/^cluster-2: node pods unreadable: HTTP 403/),
    ]);
  });

  it('diagnose: one WARN per read error, identity FAILs, and dependent checks say unreadable, not missing', () => {
    const diag = (r: ContextReport): DiagnoseContext => ({
      report: r,
      services: ['web/web'],
      corefile: null,
      corednsAccess: { list: true, watch: true },
      podCidrs: [`10.20${r.context.slice(-1)}.0.0/24`],
      serviceCidrs: [`10.10${r.context.slice(-1)}.0.0/16`],
    });
    const reports = [
      report('cluster-1', { exports: [exp('web', 'web')] }),
      report('cluster-2', { namespaces: undefined, readErrors: [forbidden('namespaces')] }),
      report('cluster-3', {
        clusterId: undefined,
        exports: [],
        readErrors: [forbidden('clusterid', 'get'), forbidden('serviceexports')],
      }),
    ];
    const results = runChecks(reports.map(diag)).map(formatCheck);
    expect(results.filter((l) => l.startsWith('FAIL identity'))).toEqual([
      expect.stringMatching(
        /^FAIL identity: context cluster-3: ClusterProperty cluster\.clusterset\.k8s\.io unreadable: HTTP 403 Forbidden: .* — the CLI needs get on clusterproperties/,
      ),
    ]);
    expect(results.join('\n')).not.toMatch(/ClusterIdMissing|is missing/);
    expect(checkReads(reports).map(formatCheck)).toEqual([
      expect.stringMatching(
        /^WARN access: cluster-2: Namespaces unreadable: HTTP 403 .*: not checked there — the CLI needs list namespaces/,
      ),
      expect.stringMatching(/^WARN access: cluster-3: ServiceExports unreadable: HTTP 403 .*: not checked there — /),
    ]);
    expect(results).toContain(
      'PASS export-service: every ServiceExport has its Service (ServiceExports unreadable in cluster-3: not checked there)',
    );
    expect(results).toContain(
      'PASS namespace: every exported namespace exists in every cluster (ServiceExports unreadable in cluster-3: not checked there) (Namespaces unreadable in cluster-2: not checked there)',
    );
    expect(results).toContain(
      'PASS conflict: no ServiceExport in conflict (ServiceExports unreadable in cluster-3: not checked there)',
    );
    // Unreadable everywhere: no PASS at all for what depends on it.
    const none = [report('cluster-1', { readErrors: [forbidden('serviceexports')] })];
    expect(checkExportsHaveServices(none.map(diag))).toEqual([]);
    expect(checkConflicts(none)).toEqual([]);
    expect(checkNamespaces(none)).toEqual([]);
    // Unreadable node pods: the node check cannot tell (a WARN naming the read), not "no node pod".
    expect(
      formatCheck(checkNode(report('cluster-1', { pods: [], node: undefined, readErrors: [forbidden('pods')] }))),
    ).toMatch(/^WARN node: cluster-1: cannot tell: Pods \(node pods\) unreadable: HTTP 403 .* -n NS/);
  });
});

describe('node pods', () => {
  const pod = (name: string, over: { phase?: string; port?: string; deleting?: boolean } = {}): k8s.V1Pod => ({
    metadata: {
      namespace: 'mcs-gossip-system',
      name,
      ...(over.deleting === true ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec: {
      containers: [
        {
          name: 'c',
          args: ['run', '--endpoint-ttl=5s'],
          ports: [{ name: over.port ?? 'metrics', containerPort: 9464 }],
        },
      ],
    },
    status: { phase: over.phase ?? 'Running', podIP: '10.0.0.5' },
  });

  it('takes Running pods with a metrics port that are not being deleted, and says why it skipped the others', () => {
    const { pods, skipped } = selectNodePods([
      pod('mcs-gossip-b'),
      pod('mcs-gossip-test-connection', { port: 'http', phase: 'Succeeded' }),
      pod('mcs-gossip-old', { phase: 'Failed' }),
      pod('mcs-gossip-gone', { deleting: true }),
      pod('mcs-gossip-a'),
    ]);
    expect(pods).toEqual([
      {
        namespace: 'mcs-gossip-system',
        pod: 'mcs-gossip-a',
        port: 9464,
        podIP: '10.0.0.5',
        args: ['run', '--endpoint-ttl=5s'],
      },
      {
        namespace: 'mcs-gossip-system',
        pod: 'mcs-gossip-b',
        port: 9464,
        podIP: '10.0.0.5',
        args: ['run', '--endpoint-ttl=5s'],
      },
    ]);
    expect(skipped).toEqual([
      'mcs-gossip-system/mcs-gossip-gone (being deleted)',
      'mcs-gossip-system/mcs-gossip-old (Failed)',
      'mcs-gossip-system/mcs-gossip-test-connection (no container port named "metrics")',
    ]);
  });

  it('says "no running node pod" when none is left', () => {
    const { pods, skipped } = selectNodePods([pod('mcs-gossip-0', { phase: 'Pending' })]);
    expect(pods).toEqual([]);
    const r = report('cluster-1', { pods: [], node: undefined, skippedPods: skipped });
    expect(formatCheck(checkNode(r))).toMatch(
      /^FAIL node: cluster-1: no running node pod \(found mcs-gossip-system\/mcs-gossip-0 \(Pending\)\) — /,
    );
    expect(statusDocument([r]).clusters[0]!.reason).toBe(
      'no running node pod (found mcs-gossip-system/mcs-gossip-0 (Pending))',
    );
  });
});

describe('bounded requests', () => {
  it('aborts the request when the time is up, and rejects even if it ignores the signal', async () => {
    let signal: AbortSignal | undefined;
    const started = Date.now();
    await expect(
      bounded('list X', 50, (s) => {
        signal = s;
        return new Promise<never>(() => {});
      }),
    ).rejects.toThrow('list X: no answer within 50 ms');
    expect(signal?.aborted).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(bounded('x', 1000, () => Promise.resolve(7))).resolves.toBe(7);
  });

  it('apiGet destroys its socket to an API server that never answers', async () => {
    const sockets: Socket[] = [];
    const closed: Promise<void>[] = [];
    const server = createServer((s) => {
      s.resume(); // read, so the client's close is seen
      sockets.push(s);
      closed.push(new Promise((r) => s.on('close', () => r())));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = server.address() as { port: number };
      const kc = new k8s.KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: 'u', token: 't' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      await expect(apiGet(kc, '/status', 100)).rejects.toThrow(`GET 127.0.0.1:${port}: no answer within 100 ms`);
      expect(sockets.length).toBe(1);
      await Promise.all(closed);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe('diagnose checks', () => {
  const diag = (r: ContextReport, over: Partial<DiagnoseContext> = {}): DiagnoseContext => ({
    report: r,
    services: ['web/web'],
    corefile: '.:53 {\n  kubernetes cluster.local clusterset.local {\n    multicluster clusterset.local\n  }\n}\n',
    corednsAccess: { list: true, watch: true },
    podCidrs: [`10.20${r.context.slice(-1)}.0.0/24`],
    serviceCidrs: [`10.10${r.context.slice(-1)}.0.0/16`],
    ...over,
  });

  it('identity: invalid, duplicate ids and differing ClusterSets fail', () => {
    expect(checkIdentity(IDS.map((id) => report(id)))).toEqual([
      expect.objectContaining({ level: 'PASS', finding: expect.stringContaining('cluster-1, cluster-2, cluster-3') }),
    ]);
    const bad = checkIdentity([
      report('a', { clusterId: 'Bad_Id' }),
      report('b', { clusterId: 'same' }),
      report('c', { clusterId: 'same', clusterSetName: 'other' }),
    ]);
    expect(bad.map(formatCheck)).toEqual([
      expect.stringMatching(
        /^FAIL identity: context a: cluster id .*"Bad_Id" is not a DNS label.* — create the ClusterProperties/,
      ),
      'FAIL identity: cluster id same is used by contexts b, c — give every cluster its own cluster.clusterset.k8s.io',
      expect.stringMatching(/^FAIL identity: ClusterSet names differ: set \(b\), other \(c\)/),
    ]);
  });

  it('node and peers: an unreachable node fails, and the others see it not alive', () => {
    const dead = IDS.map((o) => ({ origin: o, alive: o !== 'cluster-3', heartbeatAgeMs: 41_000 }));
    const reports = [
      report('cluster-1', {}, nodeStatus('cluster-1', {}, dead)),
      report('cluster-2'),
      report('cluster-3', {}, null),
    ];
    expect(checkNode(reports[2]!)).toMatchObject({
      level: 'FAIL',
      finding: expect.stringContaining('cluster-3: node pod mcs-gossip-system/mcs-gossip-0 unreachable'),
    });
    expect(checkNode(reports[1]!).level).toBe('PASS');
    const peers = checkPeers(reports);
    expect(formatCheck(peers[0]!)).toMatch(/^FAIL peers: cluster-1 sees cluster-3 \(unheard for 41s\) not alive — /);
    expect(peers[1]!.level).toBe('PASS');
    expect(peers[2]!.level).toBe('WARN');
    expect(checkNode(report('x', { pods: [], node: undefined })).level).toBe('FAIL');
  });

  it('versions: same major, minors at most one apart; a missing version counts as older than 0.2', () => {
    const at = (v: string | undefined) =>
      IDS.map((id) => report(id, {}, nodeStatus(id, { version: id === 'cluster-3' ? v : '0.2.0' }, [])));
    const levels = (rs: ContextReport[]) => checkVersions(rs).map((x) => x.level);
    expect(levels(at('0.2.0'))).toEqual(['PASS']);
    expect(levels(at('0.3.1'))).toEqual(['WARN']);
    expect(checkVersions(at(undefined))).toEqual([
      expect.objectContaining({ level: 'WARN', finding: expect.stringContaining('cluster-3 <0.2') }),
    ]);
    expect(levels(at('0.4.0'))).toEqual(['FAIL']);
    expect(checkVersions(at('1.2.0'))).toEqual([
      expect.objectContaining({
        level: 'FAIL',
        finding: expect.stringContaining('cluster-3 runs version 1.2.0, cluster-1 0.2.0: peers must share the major'),
      }),
    ]);
  });

  it('versions: only alive clusters that did not leave count; a development build is checked by wire only', () => {
    // cluster-9 left, cluster-8 is dead and only held: their old versions do not count.
    const origins: OriginView[] = [
      ...IDS.map((o) => ({ origin: o, alive: true, version: '0.3.0' })),
      { origin: 'cluster-9', alive: false, left: true, version: '0.1.0' },
      { origin: 'cluster-8', alive: false, version: '0.1.5' },
    ];
    const fleet = IDS.map((id) => report(id, {}, nodeStatus(id, { version: '0.3.0' }, origins)));
    expect(checkVersions(fleet).map(formatCheck)).toEqual(['PASS versions: every cluster runs 0.3.0']);
    // A development build (`unknown`, not semver) among releases: compatible, by wire.
    const wire = { version: 2, min: 1 };
    const dev = IDS.map((id) =>
      report(id, {}, nodeStatus(id, { version: id === 'cluster-2' ? 'unknown' : '0.3.0', wire }, [])),
    );
    expect(checkVersions(dev).map((x) => x.level)).toEqual(['WARN']);
    // …but not across wire versions.
    const old = IDS.map((id) =>
      report(
        id,
        {},
        nodeStatus(id, { version: 'unknown', wire: id === 'cluster-2' ? { version: 3, min: 3 } : wire }, []),
      ),
    );
    expect(checkVersions(old)).toEqual([
      expect.objectContaining({ level: 'FAIL', finding: expect.stringContaining('speaks wire version 3') }),
    ]);
  });

  it('versions: a peer a node refuses is a FAIL with its message', () => {
    const refused = nodeStatus('cluster-1', {
      incompatiblePeers: [
        {
          peerId: '12D3KooWxyz',
          clusterId: 'cluster-7',
          version: '0.9.0',
          wire: 2,
          reason: 'SoftwareVersion',
          message: 'runs version 0.9.0, this node 0.2.0: peers must share the major version',
        },
      ],
    });
    const results = checkVersions([report('cluster-1', {}, refused), report('cluster-2')]);
    expect(results.map(formatCheck)).toEqual([
      expect.stringMatching(
        /^FAIL versions: cluster-1 refuses peer cluster-7 \(version 0\.9\.0\): runs version 0\.9\.0, this node 0\.2\.0: peers must share the major version — upgrade/,
      ),
    ]);
  });

  it('exports without a Service, missing namespaces and conflicts', () => {
    const reports = [
      report('cluster-1', { exports: [exp('web', 'web'), exp('web', 'ghost')] }),
      report('cluster-2', { exports: [exp('web', 'web', true)] }),
      report('cluster-3', { namespaces: ['default'] }),
    ];
    expect(checkExportsHaveServices(reports.map((r) => diag(r))).map(formatCheck)).toEqual([
      'FAIL export-service: cluster-1: ServiceExport web/ghost has no Service — create Service web/ghost in cluster-1, or delete the ServiceExport',
    ]);
    expect(checkNamespaces(reports).map(formatCheck)).toEqual([
      'WARN namespace: cluster-3: namespace web is missing, so web/ghost, web/web (exported by cluster-1, cluster-2) is not imported there — kubectl --context cluster-3 create namespace web (if cluster-3 should import it)',
    ]);
    expect(checkConflicts(reports).map(formatCheck)).toEqual([
      expect.stringMatching(
        /^WARN conflict: cluster-2: ServiceExport web\/web in conflict \(PortConflict\): port 80 differs — /,
      ),
    ]);
    expect(checkConflicts([report('cluster-1', { exports: [exp('web', 'web')] })])[0]!.level).toBe('PASS');
  });

  it('CoreDNS: the multicluster line and RBAC', () => {
    const r = report('cluster-1');
    expect(checkCoreDns(diag(r)).map((x) => x.level)).toEqual(['PASS', 'PASS']);
    expect(
      checkCoreDns(diag(r, { corefile: null, corednsAccess: { list: false, watch: false } })).map((x) => x.level),
    ).toEqual(['WARN', 'WARN']);
    const noMc = checkCoreDns(
      diag(r, { corefile: '.:53 {\n  kubernetes cluster.local\n}\n', corednsAccess: { list: true, watch: false } }),
    );
    expect(noMc.map(formatCheck)).toEqual([
      expect.stringMatching(/^FAIL coredns: cluster-1: the Corefile has no `multicluster clusterset.local`/),
      expect.stringMatching(
        /^FAIL coredns-rbac: cluster-1: CoreDNS \(kube-system\/coredns\) may not watch ServiceImports/,
      ),
    ]);
  });

  it('CIDRs: overlap within a family, across clusters only', () => {
    const a = parseCidr('10.1.0.0/16')!;
    expect(cidrsOverlap(a, parseCidr('10.1.200.0/24')!)).toBe(true);
    expect(cidrsOverlap(a, parseCidr('10.2.0.0/16')!)).toBe(false);
    expect(cidrsOverlap(parseCidr('fd00::/64')!, parseCidr('fd00:0:0:0:1::/80')!)).toBe(true);
    expect(cidrsOverlap(parseCidr('fd00::/64')!, parseCidr('fd00:0:0:1::/64')!)).toBe(false);
    expect(cidrsOverlap(parseCidr('0.0.0.0/0')!, parseCidr('::/0')!)).toBe(false);
    expect(parseCidr('10.1.0.0')).toBeUndefined();
    expect(parseCidr('10.1.0.0/33')).toBeUndefined();
    const ok = checkCidrs(IDS.map((id) => diag(report(id))));
    expect(ok.map((x) => x.level)).toEqual(['PASS']);
    const clash = checkCidrs([
      diag(report('cluster-1')),
      diag(report('cluster-2'), { podCidrs: ['10.101.5.0/24'] }),
      diag(report('cluster-3'), { serviceCidrs: undefined, serviceCidrError: 'HTTP 404' }),
    ]);
    expect(clash.map(formatCheck)).toEqual([
      expect.stringMatching(/^WARN cidrs: cluster-3: service CIDRs unknown/),
      expect.stringMatching(
        /^FAIL cidrs: cluster-2 pod CIDR 10\.101\.5\.0\/24 overlaps cluster-1 service CIDR 10\.101\.0\.0\/16: in cluster-1, /,
      ),
    ]);
  });

  it('CIDRs: pod-vs-pod fails, service-vs-service only warns, and missing data gives no PASS', () => {
    // Every default kubeadm cluster has 10.96.0.0/12: harmless for mcs-gossip, a WARN, and still the PASS.
    const kubeadm = checkCidrs(IDS.map((id) => diag(report(id), { serviceCidrs: ['10.96.0.0/12'] })));
    expect(kubeadm.map((x) => x.level)).toEqual(['WARN', 'PASS']);
    expect(kubeadm[0]!.finding).toContain('harmless for mcs-gossip');
    expect(exitCodeOf(kubeadm)).toBe(1);
    const pods = checkCidrs([
      diag(report('cluster-1'), { podCidrs: ['10.244.0.0/16'] }),
      diag(report('cluster-2'), { podCidrs: ['10.244.1.0/24'] }),
    ]);
    expect(pods.map(formatCheck)).toEqual([
      expect.stringMatching(
        /^FAIL cidrs: cluster-1 pod CIDR 10\.244\.0\.0\/16 overlaps cluster-2 pod CIDR 10\.244\.1\.0\/24/,
      ),
    ]);
    // Pod and service CIDRs of one cluster may overlap each other: only across clusters counts.
    expect(checkCidrs([diag(report('cluster-1'), { podCidrs: ['10.101.0.0/24'] })]).map((x) => x.level)).toEqual([
      'PASS',
    ]);
    const missing = checkCidrs([
      diag(report('cluster-1'), { podCidrs: undefined, nodesError: 'HTTP 403 Forbidden: nodes is forbidden' }),
      diag(report('cluster-2'), { podCidrs: [] }),
    ]);
    expect(missing.map(formatCheck)).toEqual([
      'WARN cidrs: cluster-1: cannot list Nodes: pod CIDRs unknown (HTTP 403 Forbidden: nodes is forbidden) — the CLI needs list nodes',
      expect.stringMatching(/^WARN cidrs: cluster-2: no Node has spec\.podCIDRs/),
    ]);
  });

  it('TTL vs heartbeat: from /status config, else the pod args, else the defaults', () => {
    expect(
      checkTtl(report('c', {}, nodeStatus('c', { config: { endpointTtlMs: 5000, heartbeatIntervalMs: 1000 } }))).level,
    ).toBe('PASS');
    expect(
      checkTtl(report('c', {}, nodeStatus('c', { config: { endpointTtlMs: 5000, heartbeatIntervalMs: 2000 } }))).level,
    ).toBe('FAIL');
    const withArgs = (args: string[]) => {
      const r = report('c', {}, nodeStatus('c'));
      const node = { ...r.node!, args };
      return checkTtl({ ...r, node, pods: [node] });
    };
    expect(withArgs(['run', '--endpoint-ttl=5s', '--heartbeat-interval', '2s'])).toMatchObject({
      level: 'FAIL',
      finding: expect.stringContaining('endpoint TTL 5s, heartbeat 2s'),
    });
    expect(withArgs(['run'])).toMatchObject({ level: 'PASS', finding: expect.stringContaining('(defaults)') });
    expect(withArgs(['run', '--endpoint-ttl=soon']).level).toBe('WARN');
  });

  it('exit codes: 0 pass, 1 warn, 3 fail', () => {
    const p = { level: 'PASS', check: 'x', finding: '', fix: '' } as const;
    expect(exitCodeOf([p])).toBe(0);
    expect(exitCodeOf([p, { ...p, level: 'WARN' }])).toBe(1);
    expect(
      exitCodeOf([
        { ...p, level: 'FAIL' },
        { ...p, level: 'WARN' },
      ]),
    ).toBe(3);
  });
});

describe('flags', () => {
  const usage = (argv: string[], withWait = true) => {
    try {
      parseFleetFlags(argv, withWait);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      const m = (err as Error).message;
      expect(m).not.toContain('\n');
      return m;
    }
    return undefined;
  };
  it('refuses bad flags with one line naming the flag', () => {
    expect(usage(['-o', 'xml'])).toBe('--output: "xml" is not one of table, json, yaml');
    expect(usage(['--context', 'a', '--all-contexts'])).toBe('--context and --all-contexts exclude each other');
    expect(usage(['--wait', '--timeout', 'soon'])).toContain('--timeout');
    expect(usage(['--timeout', '1m'])).toBe('--timeout needs --wait');
    expect(usage(['--wait'], false)).toContain('--wait');
    expect(usage(['--bogus'])).toContain('--bogus');
    expect(usage(['-n', 'Not_A_Namespace'])).toContain('--namespace');
    expect(usage(['stray'])).toContain('stray');
  });
  it('parses repeatable contexts and defaults', () => {
    expect(
      parseFleetFlags(['--context', 'a', '--context=b', '-o', 'json', '--wait', '--timeout', '30s'], true),
    ).toEqual({
      contexts: ['a', 'b'],
      allContexts: false,
      output: 'json',
      wait: true,
      timeoutMs: 30_000,
    });
  });
  it('names a missing kubeconfig and an unknown context', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-flags-'));
    const file = join(dir, 'config');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: a',
        'clusters: [{name: a, cluster: {server: "https://127.0.0.1:1"}}, {name: b, cluster: {server: "https://127.0.0.1:2"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: a, context: {cluster: a, user: u}}, {name: b, context: {cluster: b, user: u}}]',
      ].join('\n'),
    );
    const load = (argv: string[]) => loadContexts(parseFleetFlags(argv, false), {});
    expect(() => load(['--kubeconfig', join(dir, 'nope')])).toThrow(
      `--kubeconfig: ${join(dir, 'nope')} does not exist`,
    );
    expect(() => load(['--kubeconfig', file, '--context', 'c'])).toThrow('--context: no context "c" in the kubeconfig');
    expect(load(['--kubeconfig', file]).map((t) => t.context)).toEqual(['a']);
    const all = load(['--kubeconfig', file, '--all-contexts']);
    expect(all.map((t) => [t.context, t.kubeConfig.getCurrentCluster()?.server])).toEqual([
      ['a', 'https://127.0.0.1:1'],
      ['b', 'https://127.0.0.1:2'],
    ]);
  });
});
