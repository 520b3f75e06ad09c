// `mcs-gossip status` and `diagnose` (the kubectl plugin `kubectl mcs`) run as subprocesses against a real
// 3-cluster ClusterSet: each node's /status is read through its API server's pod proxy (the harness registers each
// node process as a Pod at this machine's address), exports and imports straight from each API.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
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
import { machineAddress } from '../harness/nodes.js';
import { nodeReady } from './node-helpers.js';
import { admin, deployWeb, ensureNamespace, eventually, exportService } from './kube-helpers.js';
import type { StatusDocument } from '../../src/cli/fleet/status-view.js';

const CLUSTERS = ['cluster-1', 'cluster-2', 'cluster-3'] as const;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(machineAddress() === undefined)('mcs-gossip status and diagnose on a 3-cluster ClusterSet', () => {
  let dir: string;
  let harness: Harness;

  const cliArgs = (args: string[]) => [
    '--import',
    'tsx',
    join(repoRoot, 'src', 'cli', 'kubectl-mcs.ts'),
    ...args,
    `--kubeconfig=${harness.kubeconfig}`,
  ];
  const cliEnv = () => ({ ...process.env, KUBECONFIG: '' });
  /** The CLI as a subprocess (through the kubectl plugin's entry point), against the harness kubeconfig. */
  const cli = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        cliArgs(args),
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
