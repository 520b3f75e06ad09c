// The chaos scenarios. Each injects one fault, makes changes on both sides while it lasts, and heals it; the runner
// (run.ts) then waits until the oracle shows no difference and measures what the fault cost (lost exports, changed
// ClusterSetIPs, orphans, crashes). Scenario-specific checks (an import held, endpoints withdrawn) go to the Recorder.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { serviceKey, type ServiceKey } from '../../src/core/index.js';
import { ignoreAlreadyExists } from '../harness/api-errors.js';
import { repoRoot } from '../harness/paths.js';
import { SA_NAME } from '../tests/kube-helpers.js';
import { notHeld, summarize, type ChaosContext, type IpView } from './context.js';
import { ipsOf, type GroundTruth } from './oracle.js';
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
export const NOT_YET: readonly string[] = [
  'leader failover with 2 replicas',
  'clock skew',
  'identity-key rotation',
  'hostile peer',
  'fuzzer (as a chaos scenario; the decoder fuzzer is `npm run fuzz`)',
];

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
];
