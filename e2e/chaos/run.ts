// `npm run chaos [-- --short] [--scenario NAME]`: fault injection on a local three-cluster ClusterSet with real nodes,
// judged by the oracle. Run as root: the run re-executes itself in a network namespace of its own (netns.ts), where
// iptables rules (faults.ts) cut or thin the gossip between node addresses without touching the host.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { down, up, type ClusterSetState } from '../harness/clusterset.js';
import { repoRoot } from '../harness/paths.js';
import { changedIps, ChaosContext } from './context.js';
import { run as exec } from './exec.js';
import { Firewall } from './faults.js';
import { createNamespace, deleteNamespace, ensureIptables, namespaceName, NETNS_ENV, reexecInside } from './netns.js';
import { ipsOf, lostExports, type ExpectedState } from './oracle.js';
import { passed, textReport, updateDoc, writeJson, type RunReport, type ScenarioResult } from './report.js';
import { NOT_YET, Recorder, SCENARIOS, type Scenario } from './scenarios.js';
import { Workload } from './workload.js';

const USAGE = `Usage: npm run chaos -- [--short] [--scenario NAME]… [--list]

Starts a three-cluster ClusterSet with one mcs-gossip node each in a network namespace of its own, seeds a workload,
then runs each fault scenario: inject, change both sides, heal, wait until every cluster holds exactly what the
oracle expects. Prints a table, writes <dir>/chaos-results.json and (when every scenario ran) the chaos section of
docs/reliability.md. Exit 0 when every scenario passed, 1 otherwise, 2 on bad usage. Needs root.

  --short          short fault durations (15 s instead of 60 s)
  --scenario NAME  run only this scenario (repeatable); see --list
  --list           list the scenarios and exit
  -h, --help       this help`;

const log = (line: string) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

const NODE_ARGS = ['--endpoint-ttl=6s', '--heartbeat-interval=1s', '--sync-interval=5s', '--log-level=info'];

interface Options {
  readonly short: boolean;
  readonly scenarios: readonly Scenario[];
  readonly all: boolean;
}

class UsageError extends Error {}

function parse(argv: readonly string[]): Options | 'help' | 'list' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        short: { type: 'boolean' },
        scenario: { type: 'string', multiple: true },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return 'help';
  if (values.list === true) return 'list';
  const names = values.scenario ?? [];
  for (const n of names)
    if (!SCENARIOS.some((s) => s.name === n))
      throw new UsageError(`--scenario ${n}: no such scenario (${SCENARIOS.map((s) => s.name).join(', ')})`);
  return {
    short: values.short === true,
    scenarios: names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name)),
    all: names.length === 0,
  };
}

// ---- outside: the namespace

async function outside(argv: readonly string[]): Promise<number> {
  // Until the inner run takes over, a signal only marks the run as interrupted, so the namespace is always deleted.
  let interrupted = false;
  const mark = () => {
    interrupted = true;
  };
  process.on('SIGINT', mark);
  process.on('SIGTERM', mark);
  await ensureIptables(log);
  // libfaketime, for the clock-skew scenario (the nodes it restarts preload it).
  const ft = await exec('bash', [join(repoRoot, 'e2e', 'tools', 'debian.sh'), 'faketime'], {
    allowFail: true,
    timeoutMs: 300_000,
  });
  if (ft.stdout.trim() !== '') log(ft.stdout.trim());
  if (ft.code !== 0) log(`could not install faketime (clock-skew will fail): ${ft.stderr.trim()}`);
  const ns = namespaceName();
  await createNamespace(ns);
  log(`network namespace ${ns} created; running inside it`);
  try {
    if (interrupted) return 130;
    return await reexecInside({ namespace: ns, args: [join('e2e', 'chaos', 'run.ts'), ...argv], cwd: repoRoot, log });
  } finally {
    await deleteNamespace(ns, log);
    log(`network namespace ${ns} deleted`);
    process.off('SIGINT', mark);
    process.off('SIGTERM', mark);
  }
}

// ---- inside: the ClusterSet and the scenarios

function objectsOf(expected: ExpectedState | undefined): number {
  let n = 0;
  for (const c of expected?.clusters ?? []) {
    const r = c.resolution;
    const derived = r.serviceImports.filter((si) => si.spec.type === 'ClusterSetIP').length;
    n += r.serviceImports.length + derived + r.endpointSlices.length + r.exportConditions.length;
  }
  return n;
}

/** Node addresses must be the sources of gossip connections, or address rules would not cut one node off. */
async function checkDialSources(harness: ClusterSetState): Promise<string[]> {
  const nodes = harness.clusters.flatMap((c) => c.components.filter((p) => p.name === 'mcs-gossip'));
  const listen = new Map<string, string>();
  for (const n of nodes) {
    const m = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(n.listen ?? '');
    if (m?.[1] !== undefined && m[2] !== undefined) listen.set(`${m[1]}:${m[2]}`, m[1]);
  }
  const hosts = new Set(listen.values());
  const r = await exec('ss', ['-Htn', 'state', 'established']);
  const bad: string[] = [];
  let gossip = 0;
  for (const line of r.stdout.split('\n')) {
    const ends = line.split(/\s+/).filter((t) => /^[\d.]+:\d+$/.test(t));
    const [local, peer] = ends;
    if (local === undefined || peer === undefined || !listen.has(peer)) continue;
    gossip++;
    const from = local.slice(0, local.lastIndexOf(':'));
    if (!hosts.has(from)) bad.push(`${local} -> ${peer}`);
  }
  if (gossip === 0) bad.push('no established gossip connection found');
  return bad;
}

async function commitOf(): Promise<string> {
  const git = (args: string[]) =>
    new Promise<string>((resolve) =>
      execFile('git', args, { cwd: repoRoot, timeout: 10_000 }, (err, out) => resolve(err === null ? out.trim() : '')),
    );
  const sha = (await git(['rev-parse', '--short', 'HEAD'])) || 'unknown';
  const dirty = (await git(['status', '--porcelain', '--untracked-files=no'])) !== '';
  return dirty ? `${sha} (with uncommitted changes)` : sha;
}

async function runScenario(ctx: ChaosContext, s: Scenario): Promise<ScenarioResult> {
  const settleTimeout = ctx.options.settleTimeoutMs;
  log(`== ${s.name}: ${s.title}`);
  const t0 = Date.now();
  const rec = new Recorder(log);
  for (const c of await ctx.reviveControlPlane()) rec.note(`${c} was not running before the scenario: started`);
  for (const c of await ctx.reviveNodes()) rec.note(`node of ${c} was not running before the scenario: restarted`);
  await ctx.fw.heal();
  const pre = await ctx.converge(settleTimeout);
  if (!pre.ok) rec.note(`started from a ClusterSet with ${pre.differences.length} differences (not converged)`);
  const before = pre.truth ?? (await ctx.truth());
  const crashesBefore = ctx.crashes.length;
  const startMs = Date.now();
  let error: string | undefined;
  try {
    await s.run(ctx, rec);
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    error = (err as Error).message.split('\n')[0];
    log(`  ERROR ${error}`);
  } finally {
    await ctx.fw.heal();
  }
  const healedAt = rec.healedAt ?? Date.now();
  ctx.checkNodes();
  const settle = await ctx.converge(settleTimeout, undefined, healedAt);
  ctx.checkNodes();
  log(
    settle.ok
      ? `  settled ${settle.ms} ms after the heal`
      : `  NOT settled ${settle.ms} ms after the heal: ${settle.differences.length} differences${settle.error === undefined ? '' : ` (${settle.error})`}`,
  );
  const after = settle.truth;
  const lost = after === undefined ? [] : lostExports(before, after);
  const changed = after === undefined ? [] : changedIps(rec.ipsBaseline ?? ipsOf(before), ipsOf(after));
  const crashes = ctx.crashes.slice(crashesBefore);
  const apiWrites = await ctx.nodeWrites(startMs).catch(() => undefined);
  const partial: Omit<ScenarioResult, 'pass'> = {
    name: s.name,
    title: s.title,
    faults: rec.faults,
    changes: rec.changes,
    diffsAtHeal: rec.diffsAtHeal,
    settleMs: settle.ok ? settle.ms : undefined,
    objects: objectsOf(settle.expected),
    differences: settle.differences,
    lost,
    changedIps: changed,
    orphans: settle.differences.filter((d) => d.what === 'orphan').length,
    crashes,
    apiWrites,
    checks: rec.checks,
    notes: rec.notes,
    ...(error === undefined ? {} : { error }),
    durationMs: Date.now() - t0,
  };
  const pass = passed(partial);
  const result: ScenarioResult = pass
    ? { ...partial, pass }
    : { ...partial, pass, nodeLog: await ctx.nodeLogLines(startMs) };
  log(`  ${pass ? 'pass' : 'FAIL'} (${Math.round(result.durationMs / 1000)} s)`);
  return result;
}

async function inside(options: Options, namespace: string): Promise<number> {
  const ac = new AbortController();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping after cleanup`);
    ac.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The run must end by itself: a hard cap well above the expected length (about 12 min short, 25 min full).
  const capMs = (options.short ? 40 : 80) * 60_000;
  const cap = setTimeout(() => ac.abort(new Error(`the run exceeded ${capMs / 60_000} min`)), capMs);
  const fw = await Firewall.open(namespace);
  const dir = await mkdtemp(join(tmpdir(), 'mcs-chaos-'));
  const results: ScenarioResult[] = [];
  let aborted: string | undefined;
  let harness: ClusterSetState | undefined;
  let ctx: ChaosContext | undefined;
  try {
    log(`ClusterSet in ${dir}`);
    harness = await up({
      dir,
      clusters: 3,
      nodes: true,
      extraArgs: { 'mcs-gossip': NODE_ARGS },
      timeoutMs: 300_000,
      signal: ac.signal,
      onProgress: (l) => log(`  ${l}`),
    });
    const work = new Workload(harness, log);
    ctx = new ChaosContext(harness, fw, work, {
      short: options.short,
      settleTimeoutMs: options.short ? 90_000 : 180_000,
      signal: ac.signal,
      log,
    });
    await work.seed();
    const seeded = await ctx.converge(180_000);
    if (!seeded.ok) {
      for (const d of seeded.differences.slice(0, 20))
        log(`  ${d.cluster} ${d.kind} ${d.namespace}/${d.name} ${d.what}: ${d.detail}`);
      throw new Error(`the seeded workload did not converge (${seeded.differences.length} differences)`);
    }
    log(`seeded workload converged in ${seeded.ms} ms (${objectsOf(seeded.expected)} expected objects)`);
    const bad = await checkDialSources(harness);
    if (bad.length > 0)
      throw new Error(`gossip connections not from node addresses, address rules would not cut: ${bad.join(', ')}`);
    ctx.startMonitor();
    for (const s of options.scenarios) {
      results.push(await runScenario(ctx, s));
    }
  } catch (err) {
    aborted = ac.signal.aborted ? String((ac.signal.reason as Error).message) : (err as Error).message;
    log(`run stopped: ${aborted}`);
  } finally {
    clearTimeout(cap);
    ctx?.stopMonitor();
    await fw.close().catch((err: unknown) => log(`iptables cleanup failed: ${(err as Error).message}`));
    if (harness !== undefined) {
      log('stopping the ClusterSet');
      await down(dir).catch((err: unknown) => log(`down failed: ${(err as Error).message}`));
    }
  }
  const report: RunReport = {
    date: new Date().toISOString(),
    commit: await commitOf(),
    mode: options.short ? 'short' : 'full',
    dir,
    scenarios: results,
    notYet: NOT_YET,
    ...(aborted === undefined ? {} : { aborted }),
  };
  process.stdout.write(`\n${textReport(report)}\n\n`);
  const json = join(dir, 'chaos-results.json');
  await writeJson(json, report);
  log(`results: ${json}; node logs: ${dir}/cluster-<i>/logs/mcs-gossip.log`);
  if (options.all && results.length > 0) {
    await updateDoc(join(repoRoot, 'docs', 'reliability.md'), report);
    log('docs/reliability.md: chaos section rewritten');
  } else if (results.length > 0) {
    log('docs/reliability.md left as it is (only a full selection of scenarios rewrites it)');
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const ok = aborted === undefined && results.length === options.scenarios.length && results.every((r) => r.pass);
  return ok ? 0 : stopping ? 130 : 1;
}

async function main(argv: readonly string[]): Promise<number> {
  let options;
  try {
    options = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options === 'list') {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(18)} ${s.title}\n`);
    for (const n of NOT_YET) process.stdout.write(`${'(not yet)'.padEnd(18)} ${n}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('npm run chaos needs root (network namespaces and iptables)\n');
    return 2;
  }
  const namespace = process.env[NETNS_ENV];
  return namespace === undefined || namespace === '' ? outside(argv) : inside(options, namespace);
}

process.exitCode = await main(process.argv.slice(2));
