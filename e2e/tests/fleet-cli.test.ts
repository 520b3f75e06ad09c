// `mcs-gossip status` and `diagnose` (the kubectl plugin `kubectl mcs`) run as subprocesses against a real
// 3-cluster ClusterSet: each node's /status is read through its API server's pod proxy (the harness registers each
// node process as a Pod at this machine's address), exports and imports straight from each API.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  down,
  repoRoot,
  startComponent,
  stopComponent,
  up,
  type ClusterSetState as Harness,
} from '../harness/clusterset.js';
import { ignoreAlreadyExists } from '../harness/api-errors.js';
import { machineAddress } from '../harness/nodes.js';
import { nodeHttp, nodeReady } from './node-helpers.js';
import type { NodeStatus } from '../../src/node/index.js';
import { admin, deployWeb, ensureNamespace, eventually, exportService } from './kube-helpers.js';
import type { StatusDocument } from '../../src/cli/fleet/status-view.js';

const CLUSTERS = ['cluster-1', 'cluster-2', 'cluster-3'] as const;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('mcs-gossip status and diagnose on a 3-cluster ClusterSet', () => {
  let dir: string;
  let harness: Harness;

  // The compiled kubectl plugin (dist/, as installed), the one `kubectl mcs` runs.
  const cliArgs = (args: string[], kubeconfig = harness.kubeconfig) => [
    join(repoRoot, 'dist', 'cli', 'kubectl-mcs.js'),
    ...args,
    `--kubeconfig=${kubeconfig}`,
  ];
  const cliEnv = () => ({ ...process.env, KUBECONFIG: '' });
  /** The CLI as a subprocess (through the kubectl plugin's entry point), against the harness kubeconfig. */
  const cli = (...args: string[]): Promise<Run> => cliWith(harness.kubeconfig, ...args);
  const cliWith = (kubeconfig: string, ...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        cliArgs(args, kubeconfig),
        { cwd: repoRoot, env: cliEnv(), timeout: 120_000 },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
          resolve({ code, stdout, stderr });
        },
      );
    });
  /** The CLI started in the background: what it wrote to stderr so far, and its end. */
  const cliInBackground = (...args: string[]) => {
    const child = spawn(process.execPath, cliArgs(args), { cwd: repoRoot, env: cliEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<Run>((resolve) =>
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
    );
    return { stderr: () => stderr, done };
  };
  const statusJson = async (...args: string[]) => {
    const r = await cli('status', '--all-contexts', '-o', 'json', ...args);
    return { ...r, doc: JSON.parse(r.stdout) as StatusDocument };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-fleet-'));
    if (machineAddress() === undefined) {
      throw new Error('this machine has no non-loopback IPv4 address: the API server cannot proxy to the nodes');
    }
    harness = await up({
      dir,
      clusters: CLUSTERS.length,
      nodes: true,
      extraArgs: { 'mcs-gossip': ['--endpoint-ttl=5s', '--heartbeat-interval=1s', '--sync-interval=5s'] },
      onProgress: () => {},
    });
    // The namespace web exists in cluster-1 and cluster-2 only.
    await Promise.all(['cluster-1', 'cluster-2'].map((c) => ensureNamespace(admin(harness, c).core, 'web')));
    await Promise.all(CLUSTERS.map((c) => nodeReady(harness, c)));
  });

  afterAll(async () => {
    if (harness !== undefined) await down(dir);
    if (process.env.KEEP_TEST_DIR === undefined) await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  });

  it('shows every cluster ready and alive, in the table and in JSON', async () => {
    const waited = await cli('status', '--all-contexts', '--wait', '--timeout=60s');
    expect(waited.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('waiting: '))).toEqual([]);
    expect(waited.code).toBe(0);
    const t = waited.stdout;
    expect(t).toMatch(/^CONTEXT\s+CLUSTER\s+CLUSTERSET\s+VERSION\s+PEERID\s+LEADER\s+READY\s+REASON$/m);
    for (const c of CLUSTERS) {
      expect(t).toMatch(
        new RegExp(`^${c}\\s+${c}\\s+local-clusterset\\s+\\S+\\s+12D3KooW…\\S+\\s+yes\\s+True\\s`, 'm'),
      );
      for (const seen of CLUSTERS) expect(t).toMatch(new RegExp(`^${c}\\s+${seen}\\s+yes\\s`, 'm'));
    }
    expect(t).toContain('All 3 contexts agree.');
    const { code, doc } = await statusJson();
    expect(code).toBe(0);
    expect(doc.agreed).toBe(true);
    expect(doc.clusters.map((c) => [c.clusterId, c.reachable, c.ready, c.pod])).toEqual(
      CLUSTERS.map((c) => [c, true, true, 'mcs-gossip-system/mcs-gossip-node']),
    );
    for (const c of doc.clusters) {
      expect(c.peerId).toBe(
        harness.clusters.find((x) => x.name === c.clusterId)?.components.find((p) => p.name === 'mcs-gossip')?.peerId,
      );
      expect(c.known.map((k) => [k.clusterId, k.alive])).toEqual(CLUSTERS.map((k) => [k, true]));
    }
    const yaml = await cli('status', '--context', 'cluster-2', '-o', 'yaml');
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(/^agreed: true$/m);
    expect(yaml.stdout).toMatch(/^ {2}- context: cluster-2$/m);
  });

  it('shows a port conflict, and names the cluster missing the namespace', async () => {
    const one = admin(harness, 'cluster-1');
    const two = admin(harness, 'cluster-2');
    await deployWeb(one, 'web', 'web', 1);
    await exportService(one, 'web', 'web');
    // The same name, another port: a PortConflict on both exports.
    await deployWeb(two, 'web', 'web', 1, [{ name: 'http', port: 81, targetPort: 8080 }]);
    await exportService(two, 'web', 'web');
    await exportService(two, 'web', 'no-service');
    const doc = await eventually('the conflict in status', async () => {
      const r = await statusJson();
      const svc = r.doc.services.find((s) => s.name === 'web');
      return svc !== undefined && svc.conflicts.length === 2 && r.doc.agreed ? r.doc : undefined;
    });
    const web = doc.services.find((s) => s.namespace === 'web' && s.name === 'web');
    expect(web?.conflicts.map((c) => [c.clusterId, c.reason])).toEqual([
      ['cluster-1', 'PortConflict'],
      ['cluster-2', 'PortConflict'],
    ]);
    expect(
      web?.clusters.map((c) => [c.clusterId, c.export !== undefined, c.namespaceExists, c.import?.clusters]),
    ).toEqual([
      ['cluster-1', true, true, ['cluster-1', 'cluster-2']],
      ['cluster-2', true, true, ['cluster-1', 'cluster-2']],
      ['cluster-3', false, false, undefined],
    ]);
    const table = await cli('status', '--all-contexts');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^CONFLICTS$/m);
    expect(table.stdout).toMatch(/^web\/web\s+cluster-2\s+PortConflict\s+Conflicting ports/m);
    expect(table.stdout).toMatch(/^web\/web\s+cluster-3\s+no \(namespace missing\)/m);
    // The node of cluster-3 says so itself: /status and a metric.
    const s3 = JSON.parse((await nodeHttp(harness, 'cluster-3', '/status')).body) as NodeStatus;
    expect(s3.namespaceMissing.map((m) => [m.key, [...m.exporters].sort()])).toEqual([
      ['web/web', ['cluster-1', 'cluster-2']],
    ]);
    expect((await nodeHttp(harness, 'cluster-3', '/metrics')).body).toMatch(
      /^mcs_gossip_imports_namespace_missing 1$/m,
    );

    const d = await cli('diagnose', '--all-contexts');
    const lines = d.stdout.trimEnd().split('\n');
    expect(
      lines.every((l) => /^(PASS|WARN|FAIL) [a-z-]+: /.test(l)),
      d.stdout,
    ).toBe(true);
    expect(lines).toContainEqual(
      expect.stringMatching(/^WARN conflict: cluster-2: ServiceExport web\/web in conflict \(PortConflict\): .* — /),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^WARN namespace: cluster-3: namespace web is missing, so web\/no-service, web\/web \(exported by cluster-1, cluster-2\) is not imported there — kubectl --context cluster-3 create namespace web/,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^FAIL export-service: cluster-2: ServiceExport web\/no-service has no Service — /),
    );
    for (const c of CLUSTERS) {
      expect(lines).toContain(`PASS node: ${c}: node mcs-gossip-system/mcs-gossip-node ready (ok (leader))`);
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^PASS ttl: ${c}: endpoint TTL 5s, heartbeat 1s `)),
      );
      // No CoreDNS in the local clusters: it cannot be checked.
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^WARN coredns: ${c}: no ConfigMap kube-system/coredns`)),
      );
    }
    expect(lines).toContainEqual(
      expect.stringMatching(/^PASS identity: cluster-1, cluster-2, cluster-3 in ClusterSet local-clusterset/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^PASS cidrs: no overlap/));
    expect(d.code).toBe(3);
  });

  it('reports a stopped node unreachable and not alive, and --wait returns once it is back', async () => {
    await stopComponent(harness, 'cluster-3', 'mcs-gossip');
    const doc = await eventually(
      'cluster-3 not alive in cluster-1 and cluster-2',
      async () => {
        const r = await statusJson();
        const seen = r.doc.clusters
          .filter((c) => c.clusterId !== 'cluster-3')
          .map((c) => c.known.find((k) => k.clusterId === 'cluster-3')?.alive);
        return r.code === 1 && seen.every((a) => a === false) ? r.doc : undefined;
      },
      30_000,
    );
    expect(doc.clusters.find((c) => c.clusterId === 'cluster-3')).toMatchObject({ reachable: false });
    expect(doc.clusters.find((c) => c.clusterId === 'cluster-3')?.reason).toMatch(
      /^unreachable: HTTP 503: .*connection refused/,
    );
    expect(doc.problems).toContain('cluster-1: sees cluster-3 not alive');
    const table = await cli('status', '--all-contexts');
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(
      /^cluster-3\s+cluster-3\s+local-clusterset\s+-\s+-\s+-\s+Unreachable\s+unreachable: /m,
    );
    expect(table.stdout).toMatch(/^cluster-1\s+cluster-3\s+no\s/m);
    const d = await cli('diagnose', '--all-contexts');
    expect(d.code).toBe(3);
    expect(d.stdout).toMatch(/^FAIL node: cluster-3: node pod mcs-gossip-system\/mcs-gossip-node unreachable: /m);
    expect(d.stdout).toMatch(/^FAIL peers: cluster-1 sees cluster-3 \(unheard for \d+s\) not alive — /m);
    expect(d.stdout).toMatch(/^FAIL peers: cluster-2 sees cluster-3 \(unheard for \d+s\) not alive — /m);
    // A short wait gives up, exit 1, saying what it waited for.
    const short = await cli('status', '--all-contexts', '--wait', '--timeout=1s');
    expect(short.code).toBe(1);
    expect(short.stdout).toMatch(/^Not agreed:$/m);

    const waiting = cliInBackground('status', '--all-contexts', '--wait', '--timeout=90s', '-o', 'json');
    await eventually('status --wait waiting', async () => (waiting.stderr().includes('waiting: ') ? true : undefined));
    expect(waiting.stderr()).toMatch(/^waiting: cluster-1: sees cluster-3 not alive$/m);
    await startComponent(harness, 'cluster-3', 'mcs-gossip');
    const back = await waiting.done;
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect((JSON.parse(back.stdout) as StatusDocument).agreed).toBe(true);
  });

  it('names what a user with only the namespaced Role of docs/status.md may not read, never taking it for none', async () => {
    // The viewer of docs/status.md, part 1 only: pods list and pods/proxy get in the node's namespace.
    const one = admin(harness, 'cluster-1');
    const ns = 'mcs-gossip-system';
    await one.core
      .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'viewer' } } })
      .catch(ignoreAlreadyExists);
    await one.rbac
      .createNamespacedRole({
        namespace: ns,
        body: {
          metadata: { name: 'viewer' },
          rules: [
            { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
            { apiGroups: [''], resources: ['pods/proxy'], verbs: ['get'] },
          ],
        },
      })
      .catch(ignoreAlreadyExists);
    await one.rbac
      .createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: 'viewer' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'viewer' },
          subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
        },
      })
      .catch(ignoreAlreadyExists);
    const token = await one.core.createNamespacedServiceAccountToken({
      name: 'viewer',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const server = one.kc.getCurrentCluster();
    const file = join(dir, 'viewer.kubeconfig');
    await writeFile(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'cluster-1',
        clusters: [
          { name: 'cluster-1', cluster: { server: server?.server, 'certificate-authority-data': server?.caData } },
        ],
        users: [{ name: 'viewer', user: { token: token.status?.token ?? '' } }],
        contexts: [{ name: 'cluster-1', context: { cluster: 'cluster-1', user: 'viewer' } }],
      }),
      { mode: 0o600 },
    );
    const json = await cliWith(file, 'status', '-n', ns, '-o', 'json');
    expect(json.code, json.stdout + json.stderr).toBe(1);
    const doc = JSON.parse(json.stdout) as StatusDocument;
    expect(doc.agreed).toBe(false);
    const row = doc.clusters[0]!;
    expect(row).toMatchObject({ clusterId: 'cluster-1', reachable: true });
    expect(row.readErrors.map((e) => e.resource).sort()).toEqual([
      'ClusterProperty cluster.clusterset.k8s.io',
      'ClusterProperty clusterset.k8s.io',
      'Namespaces',
      'ServiceExports',
      'ServiceImports',
    ]);
    for (const e of row.readErrors) expect(e.message).toMatch(/^HTTP 403 Forbidden: .* is forbidden: /);
    expect(doc.problems).toContainEqual(expect.stringMatching(/^cluster-1: ServiceExports unreadable: HTTP 403 /));
    const table = await cliWith(file, 'status', '-n', ns);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(
      /^cluster-1: ServiceExports unreadable: HTTP 403 Forbidden: serviceexports\.multicluster\.x-k8s\.io is forbidden: /m,
    );
    expect(table.stdout).not.toContain('agree.');
    const d = await cliWith(file, 'diagnose', '-n', ns);
    expect(d.code).toBe(3);
    expect(d.stdout).toMatch(
      /^FAIL identity: context cluster-1: ClusterProperty cluster\.clusterset\.k8s\.io unreadable: HTTP 403 /m,
    );
    expect(d.stdout).toMatch(/^WARN access: cluster-1: ServiceExports unreadable: HTTP 403 .* — /m);
    expect(d.stdout).toMatch(/^WARN access: cluster-1: Namespaces unreadable: HTTP 403 .* — /m);
    expect(d.stdout).not.toMatch(/ClusterIdMissing|is missing|^PASS (export-service|namespace|conflict)/m);
  });

  it('ends soon after a black-holed API server, saying so', async () => {
    // Accepts connections and never answers.
    const sockets: Socket[] = [];
    const hole = createServer((s) => {
      s.resume();
      sockets.push(s);
    });
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = hole.address() as { port: number };
      const file = join(dir, 'black-hole.kubeconfig');
      await writeFile(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          'current-context': 'hole',
          clusters: [
            { name: 'hole', cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } },
          ],
          users: [{ name: 'u', user: { token: 't' } }],
          contexts: [{ name: 'hole', context: { cluster: 'hole', user: 'u' } }],
        }),
      );
      const started = Date.now();
      const r = await cliWith(file, 'status');
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^hole\s+hole\s.*Unreachable\s+API server: .*no answer within 8000 ms$/m);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      for (const s of sockets) s.destroy();
      hole.close();
    }
  });

  it('refuses bad flags with one line and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['status', '-o', 'xml'], /^mcs-gossip status: --output: "xml" is not one of table, json, yaml$/],
      [
        ['status', '--context', 'cluster-9'],
        /^mcs-gossip status: --context: no context "cluster-9" in the kubeconfig$/,
      ],
      [
        ['diagnose', '--all-contexts', '--context', 'cluster-1'],
        /^mcs-gossip diagnose: --context and --all-contexts exclude each other$/,
      ],
      [['diagnose', '--wait'], /^mcs-gossip diagnose: .*--wait/],
      [['status', '--wait', '--timeout', 'forever'], /^mcs-gossip status: --timeout: "forever" is not a duration/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(...args)));
    cases.forEach(([args, message], i) => {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toEqual([expect.stringMatching(message)]);
    });
  });
});
