// The chaos scenarios. Each injects one fault, makes changes on both sides while it lasts, and heals it; the runner
// (run.ts) then waits until the oracle shows no difference and measures what the fault cost (lost exports, changed
// ClusterSetIPs, orphans, crashes). Scenario-specific checks (an import held, endpoints withdrawn) go to the Recorder.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { serviceKey, type ServiceKey } from '../../src/core/index.js';
import { LIVENESS_PROTOCOL } from '../../src/gossip/constants.js';
import { EnvelopeSigner, signRecord } from '../../src/gossip/envelope.js';
import { createGossipLibp2p, SYNC_PROTOCOL, topicFor } from '../../src/gossip/index.js';
import { encodeIdentityKey, generateIdentityKey, loadPsk, writeSecretFile } from '../../src/gossip/keys.js';
import { SyncFrame, TopicMessage } from '../../src/gossip/wire.js';
import { ignoreAlreadyExists } from '../harness/api-errors.js';
import { FaultProxy } from '../harness/fault-proxy.js';
import { repoRoot } from '../harness/paths.js';
import { freePorts } from '../harness/ports.js';
import { isAlive, startDetached, stopProcess, tail, type StartedProcess } from '../harness/process.js';
import { SA_NAME } from '../tests/kube-helpers.js';
import { notHeld, summarize, type ChaosContext, type IpView } from './context.js';
import { ipsOf, type GroundTruth } from './oracle.js';
import { fuzz } from './fuzzer.js';
import { describeChanges, NAMESPACE, Workload, type Changes } from './workload.js';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What a scenario did, kept as it goes: a scenario that fails half-way still reports what it injected. */
export class Recorder {
  readonly faults: string[] = [];
  readonly changes: string[] = [];
  readonly checks: Check[] = [];
  readonly notes: string[] = [];
  /** When the fault ended: settle time counts from here. */
  healedAt: number | undefined;
  /** Differences from the oracle just before the heal: shows the fault had an effect. */
  diffsAtHeal: number | undefined;
  /** Compare ClusterSetIPs against this view instead of the snapshot taken before the scenario. */
  ipsBaseline: IpView | undefined;

  constructor(private readonly log: (line: string) => void) {}

  fault(text: string): void {
    this.faults.push(text);
    this.log(`  fault: ${text}`);
  }

  change(c: Changes): void {
    this.changes.push(describeChanges(c));
  }

  check(name: string, ok: boolean, detail: string): void {
    this.checks.push({ name, ok, detail });
    this.log(`  check ${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  }

  note(text: string): void {
    this.notes.push(text);
    this.log(`  note: ${text}`);
  }

  healed(): void {
    this.healedAt = Date.now();
    this.log('  healed');
  }
}

export interface Scenario {
  readonly name: string;
  readonly title: string;
  run(ctx: ChaosContext, rec: Recorder): Promise<void>;
}

/** Scenarios the brief names that are not written yet (listed in the output). */
export const NOT_YET: readonly string[] = [];

const C1 = 'cluster-1';
const C2 = 'cluster-2';
const C3 = 'cluster-3';
const ALL = [C1, C2, C3];

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

async function sleepUntil(ctx: ChaosContext, at: number): Promise<void> {
  const left = at - Date.now();
  if (left > 0) await ctx.sleep(left);
}

/** Counts the differences the fault caused, heals the network and marks the end of the fault. */
async function heal(ctx: ChaosContext, rec: Recorder): Promise<void> {
  rec.diffsAtHeal = await ctx.differencesNow();
  rec.note(`${await ctx.fw.dropped()} packets dropped by the fault's rules`);
  await ctx.fw.heal();
  rec.healed();
}

async function partitionText(ctx: ChaosContext, a: readonly string[], b: readonly string[]): Promise<string> {
  const rules = await ctx.fw.rules();
  return `{${a.join(',')}} / {${b.join(',')}}: DROP ${ctx.hosts(a).join(',')} <-> ${ctx.hosts(b).join(',')} (${rules.length} rules)`;
}

/** Per cluster, the keys of its imports that name `origin` among their source clusters. */
function importsFrom(truth: GroundTruth, origin: string, clusters: readonly string[]): IpView {
  const all = ipsOf(truth);
  return new Map(
    truth.clusters
      .filter((c) => clusters.includes(c.name))
      .map((c) => {
        const keys = new Set(
          c.serviceImports
            .filter((si) => (si.status?.clusters ?? []).some((x) => x.cluster === origin))
            .map((si) => serviceKey(si.metadata.namespace ?? '', si.metadata.name ?? '')),
        );
        const ips = all.get(c.name) ?? new Map<ServiceKey, readonly string[]>();
        return [c.name, new Map([...ips].filter(([k]) => keys.has(k)))];
      }),
  );
}

/** Polls `base` against the clusters' imports until `until`; returns every violation seen (deduplicated). */
async function watchHeld(
  ctx: ChaosContext,
  base: IpView,
  until: number,
  ignore: () => ReadonlySet<ServiceKey> = () => new Set(),
): Promise<{ violations: string[]; reads: number }> {
  const seen = new Set<string>();
  let reads = 0;
  while (Date.now() < until) {
    try {
      for (const v of notHeld(base, await ctx.ips([...base.keys()]), ignore())) seen.add(v);
      reads++;
    } catch (err) {
      if (ctx.signal.aborted) throw err;
    }
    await ctx.sleep(Math.max(0, Math.min(2000, until - Date.now())));
  }
  return { violations: [...seen], reads };
}

async function nodeHttp(ctx: ChaosContext, cluster: string, path: string): Promise<string> {
  try {
    const res = await fetch(new URL(path, ctx.node(cluster).health), { signal: AbortSignal.timeout(3000) });
    return `${res.status} ${(await res.text()).trim().replace(/\s+/g, ' ').slice(0, 200)}`;
  } catch (err) {
    return `no answer (${(err as Error).message})`;
  }
}

const partition: Scenario = {
  name: 'partition',
  title: 'partition {cluster-1,cluster-2} / {cluster-3}',
  async run(ctx, rec) {
    const d = ctx.dur(60_000, 15_000);
    const a = [C1, C2];
    const b = [C3];
    await ctx.fw.partition(ctx.hosts(a), ctx.hosts(b));
    const t0 = Date.now();
    rec.fault(`partition ${await partitionText(ctx, a, b)} for ${seconds(d)}`);
    await ctx.sleep(2000);
    rec.change(await ctx.work.changes(C1, 'p'));
    rec.change(await ctx.work.changes(C3, 'p'));
    await sleepUntil(ctx, t0 + d);
    await heal(ctx, rec);
  },
};

const loss: Scenario = {
  name: 'loss',
  title: '20 % packet loss between all nodes, with endpoint churn',
  async run(ctx, rec) {
    const d = ctx.dur(60_000, 15_000);
    await ctx.fw.loss(ctx.hosts(ALL), 0.2);
    const t0 = Date.now();
    rec.fault(`20 % random loss each way between ${ctx.hosts(ALL).join(', ')} for ${seconds(d)}`);
    let scalings = 0;
    for (let i = 0; Date.now() < t0 + d - 1000; i++) {
      const cluster = ALL[i % ALL.length] ?? C1;
      // Endpoint churn: a scaling every 2 s, round the clusters; export changes on two of them along the way.
      rec.change(await ctx.work.changes(cluster, `l${i}`, { add: i === 1 || i === 5, remove: i === 1 || i === 5 }));
      scalings++;
      await sleepUntil(ctx, t0 + (i + 1) * 2000);
    }
    rec.note(`${scalings} scalings during the loss`);
    await sleepUntil(ctx, t0 + d);
    await heal(ctx, rec);
  },
};

const kill9: Scenario = {
  name: 'kill9-burst',
  title: 'kill -9 of the node of cluster-2 during a burst of 10 exports, then restart',
  async run(ctx, rec) {
    const victim = C2;
    const names: string[] = [];
    let killed = false;
    try {
      for (let k = 0; k < 10; k++) {
        const name = `${Workload.prefix(victim)}-k${k}`;
        await ctx.work.addExport(victim, name);
        names.push(name);
        if (k === 2) {
          await ctx.killNode(victim);
          killed = true;
          rec.fault(`kill -9 of the node of ${victim} after export 3 of a burst of 10 in ${victim}`);
          rec.change(await ctx.work.changes(C1, 'k'));
        }
      }
      rec.changes.push(`${victim}: burst of 10 exports ${names[0]}..${names.at(-1)}`);
      await ctx.sleep(2000);
    } finally {
      if (killed) {
        rec.diffsAtHeal = await ctx.differencesNow();
        const t = Date.now();
        await ctx.startNode(victim);
        rec.note(`node of ${victim} restarted, serving /healthz after ${Date.now() - t} ms`);
      }
    }
    rec.healed();
  },
};

const restartIsolated: Scenario = {
  name: 'restart-isolated',
  title: 'restart of the node of cluster-3 while it can reach no peer',
  async run(ctx, rec) {
    const victim = C3;
    const others = [C1, C2];
    const d = 20_000;
    await ctx.fw.partition(ctx.hosts([victim]), ctx.hosts(others));
    const t0 = Date.now();
    rec.fault(
      `all gossip to/from ${ctx.host(victim)} dropped for ${seconds(d)} (${(await ctx.fw.rules()).length} rules)`,
    );
    const base = await ctx.ips([victim]);
    await ctx.restartNode(victim);
    rec.fault(`node of ${victim} restarted inside the isolation`);
    // The isolated side adds but does not remove: its own removal would rightly change its own import.
    rec.change(await ctx.work.changes(victim, 'i', { remove: false }));
    rec.change(await ctx.work.changes(C1, 'i'));
    rec.note(`/readyz of ${victim} while isolated: ${await nodeHttp(ctx, victim, '/readyz')}`);
    const held = await watchHeld(ctx, base, t0 + d);
    const count = base.get(victim)?.size ?? 0;
    rec.check(
      `${victim} holds its imports while isolated`,
      held.violations.length === 0,
      held.violations.length === 0
        ? `${count} imports and their ClusterSetIPs unchanged over ${held.reads} reads`
        : held.violations.slice(0, 5).join('; '),
    );
    await heal(ctx, rec);
  },
};

const restartRbac: Scenario = {
  name: 'restart-rbac',
  title: 'restart of the node of cluster-1 while its ServiceExports cannot be listed',
  async run(ctx, rec) {
    const victim = C1;
    const others = [C2, C3];
    const d = 20_000;
    const rbac = ctx.work.admin(victim).rbac;
    const role = await ctx.timed(rbac.readClusterRole({ name: SA_NAME }), 20_000, 'read ClusterRole');
    const without: k8s.V1ClusterRole = {
      ...role,
      rules: (role.rules ?? [])
        .map((r) => ({ ...r, resources: (r.resources ?? []).filter((x) => x !== 'serviceexports') }))
        .filter((r) => r.resources.length > 0),
    };
    const base = importsFrom(await ctx.truth(), victim, others);
    await ctx.timed(rbac.replaceClusterRole({ name: SA_NAME, body: without }), 20_000, 'replace ClusterRole');
    const t0 = Date.now();
    const removed = new Set<ServiceKey>();
    try {
      rec.fault(`ClusterRole ${SA_NAME} of ${victim} without serviceexports for ${seconds(d)}`);
      await ctx.restartNode(victim);
      rec.fault(`node of ${victim} restarted while it cannot list ServiceExports`);
      for (const cluster of [victim, C2]) {
        const c = await ctx.work.changes(cluster, 'rb');
        rec.change(c);
        // An export removed at its origin rightly goes away elsewhere once the node sees the removal.
        for (const name of c.removed) removed.add(serviceKey(NAMESPACE, name));
      }
      rec.note(`/readyz of ${victim} without the permission: ${await nodeHttp(ctx, victim, '/readyz')}`);
      const held = await watchHeld(ctx, base, t0 + d, () => removed);
      const count = [...base.values()].reduce((n, m) => n + m.size, 0);
      rec.check(
        `imports of ${victim}'s exports stay in ${others.join(', ')}`,
        held.violations.length === 0,
        held.violations.length === 0
          ? `${count} imports unchanged over ${held.reads} reads`
          : held.violations.slice(0, 5).join('; '),
      );
    } finally {
      rec.diffsAtHeal = await ctx.differencesNow();
      const current = await ctx.timed(rbac.readClusterRole({ name: SA_NAME }), 20_000, 'read ClusterRole');
      await ctx.timed(
        rbac.replaceClusterRole({
          name: SA_NAME,
          body: { ...role, metadata: { ...role.metadata, resourceVersion: current.metadata?.resourceVersion } },
        }),
        20_000,
        'restore ClusterRole',
      );
    }
    rec.healed();
  },
};

/** Waits until the cluster's API server answers a list again (after its own or its etcd's restart). */
async function apiAnswers(ctx: ChaosContext, cluster: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() < t0 + timeoutMs) {
    try {
      await ctx.timed(ctx.work.admin(cluster).core.listNamespace(), 5000, 'list namespaces');
      return Date.now() - t0;
    } catch {
      await ctx.sleep(500);
    }
  }
  throw new Error(`the API server of ${cluster} did not answer within ${timeoutMs} ms`);
}

function controlPlaneRestart(name: string, cluster: string, component: 'kube-apiserver' | 'etcd'): Scenario {
  const others = ALL.filter((c) => c !== cluster);
  return {
    name,
    title: `restart of the ${component} of ${cluster}`,
    async run(ctx, rec) {
      const d = ctx.dur(20_000, 8_000);
      await ctx.stopControlPlane(cluster, component);
      const t0 = Date.now();
      let started = false;
      try {
        rec.fault(`${component} of ${cluster} stopped for ${seconds(d)}, then started again`);
        // The stopped side cannot change anything while its API is down: the others change now, it right after.
        for (const c of others) rec.change(await ctx.work.changes(c, component === 'etcd' ? 'et' : 'ap'));
        await sleepUntil(ctx, t0 + d);
        await ctx.startControlPlane(cluster, component);
        started = true;
        rec.note(`API of ${cluster} answering ${await apiAnswers(ctx, cluster, 60_000)} ms after the start`);
      } finally {
        if (!started) await ctx.startControlPlane(cluster, component).catch(() => undefined);
      }
      rec.change(await ctx.work.changes(cluster, component === 'etcd' ? 'et' : 'ap'));
      // Differences before this point cannot be read: the stopped cluster's API does not answer.
      rec.healed();
    },
  };
}

const ttlPartition: Scenario = {
  name: 'ttl-partition',
  title: 'cluster-3 cut off longer than the endpoint TTL: withdrawn, then restored with the same ClusterSetIPs',
  async run(ctx, rec) {
    const d = ctx.dur(30_000, 20_000);
    const a = [C1, C2];
    const b = [C3];
    await ctx.fw.partition(ctx.hosts(a), ctx.hosts(b));
    const t0 = Date.now();
    rec.fault(`partition ${await partitionText(ctx, a, b)} for ${seconds(d)} (endpoint TTL 6 s)`);
    // Scalings only until the withdrawal is seen: an export added or removed now cannot cross the partition, and
    // the oracle's withdrawn view would rightly miss it.
    rec.change(await ctx.work.changes(C1, 't0', { add: false, remove: false }));
    rec.change(await ctx.work.changes(C3, 't0', { add: false, remove: false }));
    const withdrawn = new Map<string, readonly string[]>([
      [C1, [C3]],
      [C2, [C3]],
      [C3, [C1, C2]],
    ]);
    const seen = await ctx.converge(Math.max(1000, d - 2000), withdrawn, t0);
    rec.check(
      'endpoints withdrawn across the partition',
      seen.ok,
      seen.ok
        ? `cluster-3's endpoints gone from cluster-1/2 (and theirs from cluster-3) ${seen.ms} ms after the cut`
        : `not within ${seen.ms} ms: ${seen.differences.length} differences, e.g. ${seen.differences
            .slice(0, 3)
            .map((x) => `${x.cluster} ${x.kind} ${x.namespace}/${x.name} ${x.what}: ${x.detail}`)
            .join('; ')}`,
    );
    if (seen.ok) {
      rec.change(await ctx.work.changes(C1, 't', { scale: false }));
      rec.change(await ctx.work.changes(C3, 't', { scale: false }));
    }
    await sleepUntil(ctx, t0 + d);
    await heal(ctx, rec);
  },
};

function run(args: readonly string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...args], { cwd: repoRoot, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

const leaveRejoin: Scenario = {
  name: 'leave-rejoin',
  title: 'cluster-2 leaves the ClusterSet (mcs-gossip leave), then rejoins',
  async run(ctx, rec) {
    const victim = C2;
    const away = ctx.dur(20_000, 5_000);
    const cli = join(repoRoot, 'src', 'cli', 'main.ts');
    const custom = ctx.work.admin(victim).custom;
    const rejoin = async () => {
      await ctx.timed(
        custom
          .createClusterCustomObject({
            group: 'about.k8s.io',
            version: 'v1beta1',
            plural: 'clusterproperties',
            body: {
              apiVersion: 'about.k8s.io/v1beta1',
              kind: 'ClusterProperty',
              metadata: { name: 'clusterset.k8s.io' },
              spec: { value: ctx.harness.clusterSetName },
            },
          })
          .catch(ignoreAlreadyExists),
        20_000,
        'create ClusterProperty',
      );
    };
    let left = false;
    try {
      const t0 = Date.now();
      const r = await run(
        ['--import', 'tsx', cli, 'leave', `--kubeconfig=${ctx.kubeconfig(victim)}`, '--wait=30s'],
        60_000,
      );
      left = true;
      rec.fault(`${victim} ran mcs-gossip leave (exit ${r.code})`);
      rec.check('leave confirmed by the node', r.code === 0, `${Date.now() - t0} ms: ${r.out.split('\n').at(-1)}`);
      // The documented contract of a leave: every export of the cluster withdrawn from every other cluster.
      const others = await ctx.converge(ctx.options.settleTimeoutMs, undefined, t0, (d) => d.cluster !== victim);
      rec.check(
        `${victim}'s exports withdrawn from the other clusters`,
        others.ok,
        others.ok
          ? `0 differences outside ${victim} ${others.ms} ms after the leave`
          : `${others.differences.length} differences after ${others.ms} ms: ${summarize(others.differences)}; e.g. ${others.differences
              .slice(0, 3)
              .map((x) => `${x.cluster} ${x.kind} ${x.namespace}/${x.name} ${x.what}: ${x.detail}`)
              .join('; ')}`,
      );
      // The oracle also expects a cluster without a ClusterSet to hold none of our objects; give its node a few
      // seconds more, then read once.
      await ctx.sleep(ctx.dur(10_000, 5_000));
      const inside = await ctx.converge(1, undefined, Date.now(), (d) => d.cluster === victim);
      rec.check(
        `${victim}, out of the ClusterSet, holds none of our objects (oracle)`,
        inside.ok,
        inside.ok ? 'none left' : `${inside.differences.length} left: ${summarize(inside.differences)}`,
      );
      // The others' imports of this cluster's exports went with the leave and are rightly re-created (new
      // ClusterSetIPs) on rejoin: ClusterSetIPs are compared from this state on.
      const truth = inside.truth ?? others.truth;
      if (truth !== undefined) rec.ipsBaseline = ipsOf(truth);
      rec.change(await ctx.work.changes(C1, 'v'));
      rec.change(await ctx.work.changes(victim, 'v'));
      await ctx.sleep(away);
    } finally {
      if (left) {
        rec.diffsAtHeal = await ctx.differencesNow();
        await rejoin();
        rec.fault(`${victim} rejoined (ClusterProperty clusterset.k8s.io=${ctx.harness.clusterSetName} re-created)`);
      }
    }
    rec.healed();
  },
};

// ---- node endpoints

interface StatusView {
  readonly leader?: boolean;
  readonly withdrawnOrigins?: readonly string[];
  readonly gossip?: { readonly origins?: readonly { readonly origin: string; readonly peerId?: string }[] };
}

async function statusOf(ctx: ChaosContext, cluster: string, base?: string): Promise<StatusView | undefined> {
  try {
    return JSON.parse(await ctx.nodeGet(cluster, '/status', base)) as StatusView;
  } catch {
    return undefined;
  }
}

/** The sum of a Prometheus counter's samples in a `/metrics` text, over the samples whose labels pass `which`. */
export function metricSum(text: string, name: string, which: (labels: string) => boolean = () => true): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name || !which(m[2] ?? '')) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

async function metricsOf(ctx: ChaosContext, cluster: string): Promise<string> {
  return ctx.nodeGet(cluster, '/metrics').catch(() => '');
}

/**
 * Samples every node's `/status` each `everyMs` until stopped: the origins any of them reported withdrawn (while every
 * node is up, none should be).
 */
function sampleWithdrawn(ctx: ChaosContext, clusters: readonly string[], everyMs = 1000) {
  const seen = new Map<string, number>();
  let reads = 0;
  let unanswered = 0;
  let on = true;
  const done = (async () => {
    for (let i = 0; on && i < 100_000; i++) {
      for (const c of clusters) {
        const st = await statusOf(ctx, c);
        if (st === undefined) {
          unanswered++;
          continue;
        }
        reads++;
        for (const o of st.withdrawnOrigins ?? [])
          seen.set(`${c} withdrew ${o}`, (seen.get(`${c} withdrew ${o}`) ?? 0) + 1);
      }
      await sleepFor(everyMs);
    }
  })();
  return {
    async stop() {
      on = false;
      await done;
      return { withdrawn: [...seen].map(([k, n]) => `${k} (${n} reads)`), reads, unanswered };
    },
  };
}

/** Polls `/readyz` until 200 (a restarted node may hold imports for a while); the ms it took, undefined if never. */
async function readyWithin(ctx: ChaosContext, cluster: string, timeoutMs: number): Promise<number | undefined> {
  const t0 = Date.now();
  while (Date.now() < t0 + timeoutMs) {
    try {
      const res = await fetch(new URL('/readyz', ctx.node(cluster).health), { signal: AbortSignal.timeout(3000) });
      if (res.ok) return Date.now() - t0;
    } catch {
      /* not yet */
    }
    await ctx.sleep(500);
  }
  return undefined;
}

function sleepFor(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- clock skew

const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

const skewed = (offset: string): Record<string, string> => ({
  LD_PRELOAD: FAKETIME_LIB,
  FAKETIME: offset,
  FAKETIME_DONT_FAKE_MONOTONIC: '1',
});

const clockSkew: Scenario = {
  name: 'clock-skew',
  title: 'clocks of cluster-2 5 s ahead and of cluster-3 5 s behind (libfaketime), with changes on both',
  async run(ctx, rec) {
    const d = ctx.dur(60_000, 15_000);
    const ahead = C2;
    const behind = C3;
    let skewedUp = false;
    try {
      await ctx.restartNode(ahead, skewed('+5s'));
      await ctx.restartNode(behind, skewed('-5s'));
      skewedUp = true;
      rec.fault(`node of ${ahead} restarted with FAKETIME=+5s, node of ${behind} with FAKETIME=-5s (${FAKETIME_LIB})`);
      for (const c of [ahead, behind]) {
        const ms = await readyWithin(ctx, c, 60_000);
        rec.note(`${c} ready ${ms === undefined ? 'never (60 s)' : `${ms} ms`} after its skewed start`);
      }
      const t0 = Date.now();
      const sampler = sampleWithdrawn(ctx, ALL);
      let samples;
      const removed: string[] = [];
      try {
        rec.change(await ctx.work.changes(ahead, 'sk'));
        const c = await ctx.work.changes(behind, 'sk');
        rec.change(c);
        removed.push(...c.removed);
        // Converged while skewed: the behind cluster's removal and the others' changes are seen everywhere.
        const seen = await ctx.converge(Math.max(d, 30_000), undefined, Date.now());
        rec.check(
          'converged while the clocks are off',
          seen.ok,
          seen.ok
            ? `0 differences ${seen.ms} ms after the changes`
            : `${seen.differences.length} differences: ${summarize(seen.differences)}`,
        );
        await sleepUntil(ctx, t0 + d);
        // Several syncs later the removal has not come back (the oracle would see the import from cluster-3 again).
        const truth = await ctx.truth();
        const back = truth.clusters.flatMap((x) =>
          x.serviceImports
            .filter((si) => removed.includes(si.metadata.name ?? ''))
            .filter((si) => (si.status?.clusters ?? []).some((s) => s.cluster === behind))
            .map((si) => `${x.name} ${si.metadata.namespace}/${si.metadata.name}`),
        );
        rec.check(
          `a removal made by ${behind} (clock behind) sticks`,
          removed.length > 0 && back.length === 0,
          removed.length === 0
            ? `${behind} had no export to remove`
            : back.length === 0
              ? `${removed.join(', ')} imported from ${behind} nowhere, ${seconds(Date.now() - t0)} after the removal`
              : `back: ${back.join('; ')}`,
        );
      } finally {
        samples = await sampler.stop();
      }
      rec.check(
        'no origin withdrawn on any node while all are up',
        samples.withdrawn.length === 0,
        samples.withdrawn.length === 0
          ? `${samples.reads} /status reads (every node, every 1 s), none with withdrawnOrigins${samples.unanswered > 0 ? `; ${samples.unanswered} unanswered` : ''}`
          : samples.withdrawn.slice(0, 6).join('; '),
      );
      rec.diffsAtHeal = await ctx.differencesNow();
    } finally {
      if (skewedUp || !isAlive(ctx.node(ahead)) || !isAlive(ctx.node(behind))) {
        for (const c of [ahead, behind]) await ctx.restartNode(c);
        rec.fault(`nodes of ${ahead} and ${behind} restarted without skew`);
      }
    }
    rec.healed();
  },
};

// ---- identity-key rotation

const argValue = (argv: readonly string[], flag: string) =>
  argv.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3);

const keyRotation: Scenario = {
  name: 'key-rotation',
  title: 'cluster-3 rotates its identity key (--previous-identity-key), the others follow without a restart',
  async run(ctx, rec) {
    const victim = C3;
    const others = [C1, C2];
    const node = ctx.node(victim);
    const oldFile = argValue(node.argv, 'identity-key');
    const oldPeer = node.peerId;
    if (oldFile === undefined || oldPeer === undefined)
      throw new Error(`${victim}: no --identity-key or PeerId recorded`);
    const key = await generateIdentityKey();
    const newPeer = peerIdFromPrivateKey(key).toString();
    const newFile = join(dirname(oldFile), `identity-${Date.now()}.key`);
    await writeSecretFile(newFile, encodeIdentityKey(key));
    const pids = new Map(others.map((c) => [c, ctx.node(c).pid]));
    const conflicts = async () =>
      new Map(
        await Promise.all(
          others.map(
            async (c) => [c, metricSum(await metricsOf(ctx, c), 'mcs_gossip_binding_conflicts_total')] as const,
          ),
        ),
      );
    const before = await conflicts();
    const argv = [
      ...node.argv.filter((a) => !a.startsWith('--identity-key=') && !a.startsWith('--previous-identity-key=')),
      `--identity-key=${newFile}`,
      `--previous-identity-key=${oldFile}`,
    ];
    await ctx.stopNode(victim);
    ctx.setNodeCommand(victim, argv, newPeer);
    try {
      await ctx.startNode(victim);
    } catch (err) {
      // Back to the old key, so the ClusterSet goes on as it was.
      ctx.setNodeCommand(victim, node.argv, oldPeer);
      await ctx.reviveNodes();
      throw err;
    }
    const t0 = Date.now();
    rec.fault(
      `node of ${victim} restarted with a new identity key: PeerId ${oldPeer} → ${newPeer}, old key as --previous-identity-key`,
    );
    rec.change(await ctx.work.changes(victim, 'kr'));
    rec.change(await ctx.work.changes(C1, 'kr'));
    // The others' pins (their --bootstrap entries name the old PeerId) move with the rotation, without a restart.
    const followed = new Map<string, number>();
    const deadline = t0 + ctx.dur(90_000, 45_000);
    while (followed.size < others.length && Date.now() < deadline) {
      for (const c of others) {
        if (followed.has(c)) continue;
        const st = await statusOf(ctx, c);
        if (st?.gossip?.origins?.find((o) => o.origin === victim)?.peerId === newPeer) followed.set(c, Date.now() - t0);
      }
      await ctx.sleep(500);
    }
    const restarted = others.filter((c) => ctx.node(c).pid !== pids.get(c));
    rec.check(
      `${others.join(', ')} show ${victim} with its new PeerId, not restarted`,
      followed.size === others.length && restarted.length === 0,
      `${others.map((c) => `${c}: ${followed.has(c) ? `${followed.get(c)} ms` : 'never'}`).join(', ')}${restarted.length > 0 ? `; restarted: ${restarted.join(', ')}` : ''}`,
    );
    rec.healedAt = t0;
    const seen = await ctx.converge(ctx.options.settleTimeoutMs, undefined, t0);
    const after = await conflicts();
    const grew = others.filter((c) => (after.get(c) ?? 0) > (before.get(c) ?? 0));
    rec.check(
      `mcs_gossip_binding_conflicts_total does not grow on ${others.join(', ')}`,
      grew.length === 0,
      others.map((c) => `${c}: ${before.get(c) ?? 0} → ${after.get(c) ?? 0}`).join(', ') +
        (seen.ok ? `, read once converged (${seen.ms} ms)` : ', read before convergence'),
    );
    // As an operator would after the rotation (docs/reliability.md): the others' bootstrap entries name the new
    // PeerId, so a later restart of theirs pins the rotated key. The rotated node keeps --previous-identity-key.
    for (const c of others) {
      const n = ctx.node(c);
      ctx.setNodeCommand(
        c,
        n.argv.map((a) => (a.startsWith(`${victim}=`) ? a.replace(`/p2p/${oldPeer}`, `/p2p/${newPeer}`) : a)),
      );
    }
    rec.note(`${others.join(', ')}: bootstrap pins of ${victim} updated to ${newPeer} for their next start`);
    rec.diffsAtHeal = seen.differences.length;
  },
};

// ---- hostile peer

const hostilePeer: Scenario = {
  name: 'hostile-peer',
  title:
    'a rogue peer with the ClusterSet key floods cluster-1: junk, forged cluster-1 records, replays, silent streams',
  async run(ctx, rec) {
    const d = ctx.dur(60_000, 15_000);
    const target = C1;
    const topic = topicFor(ctx.harness.clusterSetName);
    const psk = await loadPsk(join(ctx.harness.dir, 'clusterset.key'));
    const key = await generateIdentityKey();
    const signer = new EnvelopeSigner(key);
    const rogue = await createGossipLibp2p({ privateKey: key, psk, topic, listen: ['/ip4/127.0.0.1/tcp/0'] });
    const silent: Stream[] = [];
    const heard: Uint8Array[] = [];
    const forge = (name: string, i: number) =>
      signRecord(signer, {
        origin: target,
        namespace: NAMESPACE,
        name,
        version: { wallMs: Date.now() + 3_600_000 + i, logical: 0 },
        removed: true,
      }).proof!;
    const metric0 = await metricsOf(ctx, target);
    const refusals = (text: string) => ({
      rejected: metricSum(text, 'mcs_gossip_topic_messages_total', (l) => !l.includes('result="accept"')),
      conflicts: metricSum(text, 'mcs_gossip_binding_conflicts_total'),
    });
    const r0 = refusals(metric0);
    let sampler: ReturnType<typeof sampleWithdrawn> | undefined;
    let published = 0;
    let forged = 0;
    let replayed = 0;
    let streams = 0;
    try {
      // Pulled from by the target: forged records of the target's own id, then DONE.
      await rogue.handle(SYNC_PROTOCOL, async (stream: Stream) => {
        const lp = lpStream(stream);
        await lp.read({ signal: AbortSignal.timeout(5000) }).catch(() => undefined);
        const frame = (type: SyncFrame.Type, envelopes: Uint8Array[]) =>
          SyncFrame.encode({ type, version: 1, digests: [], envelopes: wire(envelopes), buckets: [], pullMe: false });
        await lp
          .write(frame(SyncFrame.Type.RECORDS, [forge(`${Workload.prefix(target)}-a`, 0)]))
          .catch(() => undefined);
        await lp.write(frame(SyncFrame.Type.DONE, [])).catch(() => undefined);
        await stream.close().catch(() => undefined);
      });
      rogue.services.pubsub.addEventListener('message', (evt) => {
        if (heard.length < 200) heard.push(evt.detail.data);
      });
      await rogue.start();
      rogue.services.pubsub.subscribe(topic);
      const addr = `${ctx.node(target).listen}/p2p/${ctx.node(target).peerId}`;
      await rogue.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) });
      const joinBy = Date.now() + 15_000;
      while (rogue.services.pubsub.getSubscribers(topic).length === 0 && Date.now() < joinBy) await ctx.sleep(200);
      rec.fault(
        `rogue ${rogue.peerId.toString()} (ClusterSet key, no cluster id) dialed ${target} at ${addr}; ` +
          `${rogue.services.pubsub.getSubscribers(topic).length} topic peers; flood for ${seconds(d)}`,
      );
      sampler = sampleWithdrawn(ctx, ALL);
      const t0 = Date.now();
      let changed = false;
      for (let i = 0; Date.now() < t0 + d && i < 100_000; i++) {
        for (let j = 0; j < 10; j++) {
          await rogue.services.pubsub.publish(topic, randomBytes(64 + ((i * 10 + j) % 400))).catch(() => undefined);
          published++;
        }
        // Forged: a removal of the target's export, signed by the rogue's key and claiming the target's id.
        const f = TopicMessage.encode({ version: 1, envelopes: wire([forge(`${Workload.prefix(target)}-a`, i)]) });
        await rogue.services.pubsub.publish(topic, f).catch(() => undefined);
        forged++;
        // Replayed: genuine topic messages heard from the mesh, published again by the rogue (not their signer).
        const old = heard[i % Math.max(1, heard.length)];
        if (old !== undefined) {
          await rogue.services.pubsub.publish(topic, old).catch(() => undefined);
          replayed++;
        }
        if (i % 5 === 0) {
          for (const protocol of [SYNC_PROTOCOL, LIVENESS_PROTOCOL]) {
            // Opened, never written.
            const s = await rogue
              .dialProtocol(peerIdFromString(ctx.node(target).peerId ?? ''), protocol, {
                signal: AbortSignal.timeout(1000),
              })
              .catch(() => undefined);
            if (s !== undefined) {
              silent.push(s);
              streams++;
            }
          }
        }
        if (!changed && Date.now() > t0 + 2000) {
          changed = true;
          rec.change(await ctx.work.changes(target, 'hp'));
          rec.change(await ctx.work.changes(C2, 'hp'));
        }
        await ctx.sleep(100);
      }
      rec.note(
        `rogue sent ${published} junk and ${forged} forged topic messages, replayed ${replayed} heard ones, opened ${streams} silent streams`,
      );
      rec.diffsAtHeal = await ctx.differencesNow();
    } finally {
      for (const s of silent) s.abort(new Error('flood over'));
      await Promise.resolve(rogue.stop()).catch(() => undefined);
      const samples = await sampler?.stop();
      if (samples !== undefined)
        rec.check(
          'no origin withdrawn on any node during the flood',
          samples.withdrawn.length === 0,
          samples.withdrawn.length === 0
            ? `${samples.reads} /status reads, none with withdrawnOrigins${samples.unanswered > 0 ? `; ${samples.unanswered} unanswered` : ''}`
            : samples.withdrawn.slice(0, 6).join('; '),
        );
    }
    rec.healed();
    const r1 = refusals(await metricsOf(ctx, target));
    rec.check(
      `${target}'s node counted refusals`,
      r1.rejected > r0.rejected || r1.conflicts > r0.conflicts,
      `mcs_gossip_topic_messages_total not accepted ${r0.rejected} → ${r1.rejected}, mcs_gossip_binding_conflicts_total ${r0.conflicts} → ${r1.conflicts}`,
    );
  },
};

/** The generated codecs type their byte fields as plain ArrayBuffer views. */
const wire = (xs: readonly Uint8Array[]) => xs as Uint8Array<ArrayBuffer>[];

// ---- fuzzer

const fuzzer: Scenario = {
  name: 'fuzzer',
  title: 'the decoder fuzzer in-process while the ClusterSet changes: nothing escapes, its node state unchanged',
  async run(ctx, rec) {
    const count = ctx.options.short ? 100_000 : 300_000;
    const seed = Date.now() % 0xffffffff;
    rec.fault(`fuzz of ${count} random and mutated messages (seed ${seed}) against an in-process node`);
    // Changes first: the nodes (other processes) propagate them while the fuzzer holds this process's CPU.
    rec.change(await ctx.work.changes(C1, 'fz'));
    rec.change(await ctx.work.changes(C3, 'fz'));
    const r = await fuzz({ count, seed });
    rec.check(
      'no exception escaped, state unchanged',
      r.escaped.length === 0 && r.stateUnchanged,
      `${r.tried} messages in ${r.ms} ms (${Object.entries(r.targets)
        .map(([t, c]) => `${t} ${c.tried}/${c.accepted} accepted`)
        .join(
          ', ',
        )}); escaped ${r.escaped.length}${r.escaped.length > 0 ? ` (${r.escaped.slice(0, 3).join('; ')})` : ''}; state unchanged: ${r.stateUnchanged}`,
    );
    rec.healed();
  },
};

// ---- leader failover

interface Replica {
  readonly name: string;
  readonly proc: StartedProcess;
  readonly base: string;
}

const leaderFailover: Scenario = {
  name: 'leader-failover',
  title: "two --leader-elect replicas of cluster-1's node; the leader's API hangs: step-down, then takeover",
  async run(ctx, rec) {
    const d = ctx.dur(60_000, 15_000);
    const cluster = C1;
    const others = [C2, C3];
    const node = ctx.node(cluster);
    const kubeconfig = argValue(node.argv, 'kubeconfig');
    const listen = argValue(node.argv, 'listen');
    if (kubeconfig === undefined || listen === undefined) throw new Error(`${cluster}: no --kubeconfig or --listen`);
    const host = ctx.host(cluster);
    const base = importsFrom(await ctx.truth(), cluster, others);
    const replicas: Replica[] = [];
    let proxy: FaultProxy | undefined;
    const leaderOf = async (r: Replica) => (await statusOf(ctx, cluster, r.base))?.leader;
    const waitFor = async (what: string, fn: () => Promise<boolean>, ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        if (await fn()) return;
        for (const r of replicas)
          if (!isAlive(r.proc))
            throw new Error(`${r.name} exited: ${(await tail(r.proc.log, 5)).replace(/\n/g, ' | ')}`);
        await ctx.sleep(200);
      }
      throw new Error(`${what}: not within ${ms} ms`);
    };
    await ctx.stopNode(cluster);
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromString(await readFile(kubeconfig, 'utf8'));
      const server = new URL(kc.getCurrentCluster()?.server ?? '');
      proxy = await FaultProxy.start(server.hostname, Number(server.port));
      const hung = join(dirname(kubeconfig), 'hung.kubeconfig');
      kc.clusters = kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${proxy?.port ?? 0}` }));
      await writeFile(hung, kc.exportConfig());
      const [gossipB, metricsA, metricsB] = (await freePorts(3, host)) as [number, number, number];
      const args = node.argv.filter((x) => !x.startsWith('--kubeconfig=') && !x.startsWith('--metrics-addr='));
      const start = (name: string, config: string, metrics: number, port?: number): Replica => {
        const argv = [
          ...args
            .slice(1)
            .map((x) => (port !== undefined && x.startsWith('--listen=') ? `--listen=/ip4/${host}/tcp/${port}` : x)),
          `--kubeconfig=${config}`,
          `--metrics-addr=${host}:${metrics}`,
          '--leader-elect',
          '--lease-namespace=mcs-gossip-system',
          `--lease-identity=${name}`,
          '--lease-duration=6s',
          '--lease-renew-deadline=4s',
          '--lease-retry-period=1s',
        ];
        const proc = startDetached(args[0] ?? process.execPath, argv, join(dirname(node.log), `${name}.log`), repoRoot);
        const r = { name, proc, base: `http://${host}:${metrics}/` };
        replicas.push(r);
        return r;
      };
      const first = start('replica-a', hung, metricsA);
      await waitFor('replica-a leads', async () => (await leaderOf(first)) === true, 60_000);
      const second = start('replica-b', kubeconfig, metricsB, gossipB);
      await waitFor('replica-b is a standby', async () => (await leaderOf(second)) === false, 60_000);
      rec.fault(
        `node of ${cluster} replaced by replica-a (leader, its API through a proxy, gossip ${listen}) and replica-b (standby, gossip port ${gossipB}), one PeerId`,
      );
      let both = 0;
      let samples = 0;
      let stepDownAt: number | undefined;
      let takeOverAt: number | undefined;
      let sampling = true;
      const sampler = (async () => {
        for (let i = 0; sampling && i < 100_000; i++) {
          const [x, y] = await Promise.all([leaderOf(first), leaderOf(second)]);
          samples++;
          if (x === true && y === true) both++;
          if (x === false && stepDownAt === undefined) stepDownAt = Date.now();
          if (y === true && takeOverAt === undefined) takeOverAt = Date.now();
          await sleepFor(100);
        }
      })();
      const removed = new Set<ServiceKey>();
      let held: { violations: string[]; reads: number } = { violations: [], reads: 0 };
      let hungAt = Date.now();
      try {
        proxy.hang();
        hungAt = Date.now();
        rec.fault(`API of replica-a hung (the proxy holds every byte) for ${seconds(d)}`);
        for (const c of [cluster, C2]) {
          const ch = await ctx.work.changes(c, 'lf');
          rec.change(ch);
          if (c === cluster) for (const name of ch.removed) removed.add(serviceKey(NAMESPACE, name));
        }
        held = await watchHeld(ctx, base, hungAt + d, () => removed);
        await waitFor('replica-b takes over', async () => (await leaderOf(second)) === true, 30_000);
      } finally {
        sampling = false;
        await sampler;
      }
      rec.check(
        'never two leaders',
        both === 0,
        `${both} of ${samples} samples (every 100 ms) with both replicas leader`,
      );
      rec.check(
        'the hung leader steps down before the standby takes over',
        stepDownAt !== undefined && takeOverAt !== undefined && stepDownAt < takeOverAt,
        `step-down ${stepDownAt === undefined ? 'never' : `${stepDownAt - hungAt} ms`}, takeover ${takeOverAt === undefined ? 'never' : `${takeOverAt - hungAt} ms`} after the hang (renew deadline 4 s, lease 6 s)`,
      );
      const count = [...base.values()].reduce((n, m) => n + m.size, 0);
      rec.check(
        `imports of ${cluster}'s exports stay in ${others.join(', ')} with their ClusterSetIPs`,
        held.violations.length === 0,
        held.violations.length === 0
          ? `${count} imports unchanged over ${held.reads} reads`
          : held.violations.slice(0, 5).join('; '),
      );
      const converged = await ctx.converge(ctx.options.settleTimeoutMs);
      rec.check(
        'converged under the new leader',
        converged.ok,
        converged.ok
          ? `0 differences after ${converged.ms} ms`
          : `${converged.differences.length}: ${summarize(converged.differences)}`,
      );
      rec.diffsAtHeal = converged.differences.length;
    } finally {
      proxy?.resume();
      for (const r of replicas) await stopProcess(r.proc).catch(() => undefined);
      await proxy?.stop().catch(() => undefined);
      await ctx.startNode(cluster);
      rec.fault(`replicas stopped, the node of ${cluster} started again`);
    }
    rec.healed();
  },
};

export const SCENARIOS: readonly Scenario[] = [
  partition,
  loss,
  kill9,
  restartIsolated,
  restartRbac,
  controlPlaneRestart('apiserver-restart', C2, 'kube-apiserver'),
  controlPlaneRestart('etcd-restart', C3, 'etcd'),
  ttlPartition,
  leaveRejoin,
  clockSkew,
  keyRotation,
  hostilePeer,
  fuzzer,
  leaderFailover,
];
