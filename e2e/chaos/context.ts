// What a scenario works with: the running ClusterSet, the firewall, the workload, node control that tells a planned
// stop from a crash, and the oracle (wait until every cluster holds exactly what it must).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { ServiceKey } from '../../src/core/index.js';
import {
  startComponent,
  stopComponent,
  type ClusterSetState,
  type ComponentName,
  type ComponentState,
} from '../harness/clusterset.js';
import { isAlive, tail } from '../harness/process.js';
import { auditWrites, SA_USER } from '../tests/kube-helpers.js';
import type { Firewall } from './faults.js';
import {
  diffState,
  expectedState,
  ipsOf,
  readGroundTruth,
  type Difference,
  type ExpectedState,
  type GroundTruth,
} from './oracle.js';
import { withTimeout, type Workload } from './workload.js';

const PINO_LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export interface Crash {
  readonly cluster: string;
  readonly pid: number;
  readonly at: string;
  /** The last lines of the node's log when the exit was noticed. */
  readonly logTail: string;
}

export interface Convergence {
  /** True once a read showed 0 differences. */
  readonly ok: boolean;
  /** From the start of the wait to the read that showed 0 differences (or to the deadline). */
  readonly ms: number;
  /** The last read's differences (empty when ok). */
  readonly differences: readonly Difference[];
  /** The last successful read, if any. */
  readonly truth: GroundTruth | undefined;
  readonly expected: ExpectedState | undefined;
  /** The last read error, when no read succeeded at the end. */
  readonly error?: string;
}

export interface ContextOptions {
  readonly short: boolean;
  readonly settleTimeoutMs: number;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

/** Per cluster, per key, a ServiceImport's spec.ips. */
export type IpView = ReadonlyMap<string, ReadonlyMap<ServiceKey, readonly string[]>>;

const READ_MS = 10_000;
const POLL_MS = 1_000;

export class ChaosContext {
  /** Clusters whose node a scenario stopped on purpose: their exit is no crash. */
  readonly #plannedDown = new Set<string>();
  /** Processes already reported as crashed (pid:startTicks). */
  readonly #reported = new Set<string>();
  readonly crashes: Crash[] = [];
  #monitor: NodeJS.Timeout | undefined;

  constructor(
    readonly harness: ClusterSetState,
    readonly fw: Firewall,
    readonly work: Workload,
    readonly options: ContextOptions,
  ) {}

  get clusters(): string[] {
    return this.harness.clusters.map((c) => c.name);
  }

  get signal(): AbortSignal {
    return this.options.signal;
  }

  log(line: string): void {
    this.options.log(line);
  }

  /** The long duration, or the short one under --short. */
  dur(longMs: number, shortMs: number): number {
    return this.options.short ? shortMs : longMs;
  }

  /** Sleeps, ending early (with an AbortError) when the run is aborted. */
  async sleep(ms: number): Promise<void> {
    await sleepFor(ms, undefined, { signal: this.options.signal });
  }

  component(cluster: string, name: ComponentName): ComponentState {
    // Read afresh each time: startComponent replaces the record of a restarted process.
    const c = this.harness.clusters.find((x) => x.name === cluster)?.components.find((p) => p.name === name);
    if (c === undefined) throw new Error(`no ${name} in ${cluster}`);
    return c;
  }

  node(cluster: string): ComponentState {
    return this.component(cluster, 'mcs-gossip');
  }

  /** The node's own address (it listens on and dials from it): what firewall rules name. */
  host(cluster: string): string {
    const m = /^\/ip4\/([\d.]+)\//.exec(this.node(cluster).listen ?? '');
    if (m?.[1] === undefined) throw new Error(`${cluster}: no IPv4 listen address for its node`);
    return m[1];
  }

  hosts(clusters: readonly string[]): string[] {
    return clusters.map((c) => this.host(c));
  }

  kubeconfig(cluster: string): string {
    const c = this.harness.clusters.find((x) => x.name === cluster);
    if (c === undefined) throw new Error(`no cluster ${cluster}`);
    return c.kubeconfig;
  }

  // ---- node processes

  /** Records every node that is not running although no scenario stopped it. */
  checkNodes(): void {
    for (const cluster of this.clusters) {
      if (this.#plannedDown.has(cluster)) continue;
      const n = this.node(cluster);
      const id = `${n.pid}:${n.startTicks}`;
      if (isAlive(n) || this.#reported.has(id)) continue;
      this.#reported.add(id);
      const crash = { cluster, pid: n.pid, at: new Date().toISOString(), logTail: '' };
      this.crashes.push(crash);
      this.log(`!! the node of ${cluster} (pid ${n.pid}) exited without being stopped`);
      void tail(n.log, 15).then((t) => Object.assign(crash, { logTail: t }));
    }
  }

  startMonitor(): void {
    this.#monitor ??= setInterval(() => this.checkNodes(), 500);
  }

  stopMonitor(): void {
    if (this.#monitor !== undefined) clearInterval(this.#monitor);
    this.#monitor = undefined;
  }

  /** kill -9 of the node's process group, as a crash of its pod would be; waits until it is gone. */
  async killNode(cluster: string): Promise<void> {
    const n = this.node(cluster);
    this.#plannedDown.add(cluster);
    try {
      process.kill(-n.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    const deadline = Date.now() + 10_000;
    while (isAlive(n) && Date.now() < deadline) await sleepFor(50);
    if (isAlive(n)) throw new Error(`${cluster}: node pid ${n.pid} survived SIGKILL`);
  }

  /** A clean stop (SIGTERM, as a rolling update would). */
  async stopNode(cluster: string): Promise<void> {
    this.#plannedDown.add(cluster);
    await stopComponent(this.harness, cluster, 'mcs-gossip');
  }

  /**
   * Starts the node again with its command line and waits until it serves `/healthz` (it may rightly not be ready:
   * it holds imports until it settles). A node that exits while starting counts as a crash.
   */
  async startNode(cluster: string, env?: Readonly<Record<string, string>>): Promise<void> {
    const healthUrl = new URL('/healthz', this.node(cluster).health).toString();
    try {
      await startComponent(this.harness, cluster, 'mcs-gossip', 60_000, {
        healthUrl,
        ...(env === undefined ? {} : { env }),
      });
    } finally {
      this.#plannedDown.delete(cluster);
    }
  }

  /** Stops the node and starts it again; `env` adds to its environment (e.g. libfaketime's) for this start only. */
  async restartNode(cluster: string, env?: Readonly<Record<string, string>>): Promise<void> {
    await this.stopNode(cluster);
    await this.startNode(cluster, env);
  }

  /**
   * Replaces the recorded command line (and PeerId) of a node that is not running: its next start (by a scenario,
   * or by `reviveNodes`) runs the new one. A key rotation changes `--identity-key`; its peers' pins change with it.
   */
  setNodeCommand(cluster: string, argv: readonly string[], peerId?: string): void {
    const c = this.harness.clusters.find((x) => x.name === cluster);
    const i = c?.components.findIndex((p) => p.name === 'mcs-gossip') ?? -1;
    const p = c?.components[i];
    if (c === undefined || p === undefined) throw new Error(`no mcs-gossip in ${cluster}`);
    c.components[i] = { ...p, argv: [...argv], ...(peerId === undefined ? {} : { peerId }) };
  }

  /** Marks a node as stopped on purpose (its process record no longer runs: a scenario runs replicas instead). */
  plannedDown(cluster: string, down: boolean): void {
    if (down) this.#plannedDown.add(cluster);
    else this.#plannedDown.delete(cluster);
  }

  /** GET a path of the node's HTTP endpoint (`/status`, `/metrics`); throws on no answer within 3 s. */
  async nodeGet(cluster: string, path: string, base = this.node(cluster).health): Promise<string> {
    const res = await fetch(new URL(path, base), { signal: AbortSignal.timeout(3000) });
    if (!res.ok && path !== '/readyz') throw new Error(`${cluster} ${path}: HTTP ${res.status}`);
    return res.text();
  }

  /** Starts every node that is not running (after a crash or a failed scenario); returns the clusters. */
  async reviveNodes(): Promise<string[]> {
    const revived: string[] = [];
    for (const cluster of this.clusters) {
      if (isAlive(this.node(cluster))) continue;
      this.log(`  starting the node of ${cluster} again (it was not running)`);
      this.#plannedDown.add(cluster);
      await this.startNode(cluster).catch((err: unknown) => this.log(`  could not: ${(err as Error).message}`));
      revived.push(cluster);
    }
    return revived;
  }

  /**
   * Starts every control-plane component that is not running, in start order (a scenario that failed half-way, or
   * one that exited on its own): returns what was started.
   */
  async reviveControlPlane(): Promise<string[]> {
    const order: ComponentName[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];
    const revived: string[] = [];
    for (const cluster of this.clusters) {
      for (const name of order) {
        if (isAlive(this.component(cluster, name))) continue;
        this.log(`  starting ${name} of ${cluster} again (it was not running)`);
        await startComponent(this.harness, cluster, name, 90_000).catch((err: unknown) =>
          this.log(`  could not: ${(err as Error).message.split('\n')[0]}`),
        );
        revived.push(`${name} of ${cluster}`);
      }
    }
    return revived;
  }

  /** Stops a control-plane component (kube-apiserver, etcd) of one cluster. */
  async stopControlPlane(cluster: string, name: ComponentName): Promise<void> {
    await stopComponent(this.harness, cluster, name);
  }

  async startControlPlane(cluster: string, name: ComponentName): Promise<void> {
    await startComponent(this.harness, cluster, name, 90_000);
  }

  // ---- the oracle

  async truth(clusters: readonly string[] = this.clusters): Promise<GroundTruth> {
    return readGroundTruth(
      clusters.map((name) => ({ name, kubeconfig: this.kubeconfig(name) })),
      { signal: AbortSignal.any([AbortSignal.timeout(READ_MS), this.signal]) },
    );
  }

  async ips(clusters?: readonly string[]): Promise<IpView> {
    return ipsOf(await this.truth(clusters));
  }

  /**
   * Reads the ClusterSet until it holds exactly what the oracle expects (`withdrawn`: origins whose endpoints each
   * cluster must have withdrawn), or until `timeoutMs`. Read errors (an API server down) count as "not yet".
   * `counts` selects the differences that matter (default: all).
   */
  async converge(
    timeoutMs: number,
    withdrawn?: ReadonlyMap<string, readonly string[]>,
    startMs = Date.now(),
    counts: (d: Difference) => boolean = () => true,
  ): Promise<Convergence> {
    const deadline = startMs + timeoutMs;
    let last: Omit<Convergence, 'ms'> = { ok: false, differences: [], truth: undefined, expected: undefined };
    for (;;) {
      this.signal.throwIfAborted();
      try {
        const truth = await this.truth();
        const expected = expectedState(truth, withdrawn === undefined ? {} : { withdrawn });
        const differences = diffState(expected, truth).filter(counts);
        last = { ok: differences.length === 0, differences, truth, expected };
        if (last.ok) return { ...last, ms: Date.now() - startMs };
      } catch (err) {
        if ((err as Error).name === 'AbortError' && this.signal.aborted) throw err;
        last = { ...last, ok: false, error: (err as Error).message };
      }
      if (Date.now() >= deadline) return { ...last, ms: Date.now() - startMs };
      await this.sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    }
  }

  /** One read of the differences from the oracle (no withdrawn origins); undefined when the read fails. */
  async differencesNow(): Promise<number | undefined> {
    try {
      const truth = await this.truth();
      return diffState(expectedState(truth), truth).length;
    } catch (err) {
      if (this.signal.aborted) throw err;
      return undefined;
    }
  }

  // ---- measures

  /** API writes by the nodes' ServiceAccount since `sinceMs`, summed over every cluster's audit log. */
  async nodeWrites(sinceMs: number): Promise<number> {
    let total = 0;
    for (const c of this.harness.clusters) {
      for (let attempt = 0; ; attempt++) {
        try {
          total += (await auditWrites(c.auditLog, SA_USER, sinceMs)).length;
          break;
        } catch (err) {
          // A line being written as we read it does not parse: read again.
          if (attempt >= 4) throw err;
          await sleepFor(300);
        }
      }
    }
    return total;
  }

  /** Warnings and errors (pino level ≥ 40) of each node's log since `sinceMs`: evidence for a failed scenario. */
  async nodeLogLines(sinceMs: number, max = 12): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const c of this.harness.clusters) {
      const text = await readFile(join(this.harness.dir, c.name, 'logs', 'mcs-gossip.log'), 'utf8').catch(() => '');
      const lines: string[] = [];
      for (const line of text.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          // Levels are labels and times ISO strings (docs/operations.md "Logs"); numbers are pino's defaults.
          const e = JSON.parse(line) as { level?: number | string; time?: number | string; msg?: string };
          const level = typeof e.level === 'string' ? (PINO_LEVELS[e.level] ?? 0) : (e.level ?? 0);
          const time = typeof e.time === 'string' ? Date.parse(e.time) : (e.time ?? 0);
          if (level >= 40 && time >= sinceMs) lines.push(line.length > 400 ? line.slice(0, 400) : line);
        } catch {
          /* a line being written */
        }
      }
      out[c.name] = lines.slice(-max);
    }
    return out;
  }

  /** Wraps a promise with a deadline (see workload.ts). */
  timed<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return withTimeout(p, ms, what);
  }
}

/** Keys of `base` whose ips differ in `after` (both holding the key): `cluster ns/name: a → b`. */
export function changedIps(base: IpView, after: IpView): string[] {
  const out: string[] = [];
  for (const [cluster, keys] of base) {
    const now = after.get(cluster);
    if (now === undefined) continue;
    for (const [key, ips] of keys) {
      const got = now.get(key);
      if (got === undefined) continue;
      const a = [...ips].sort().join(',');
      const b = [...got].sort().join(',');
      if (a !== b) out.push(`${cluster} ${key}: ${a || '-'} → ${b || '-'}`);
    }
  }
  return out;
}

/** Keys of `base` gone from `now`, or holding other ips: what a node must not change while it holds. */
export function notHeld(base: IpView, now: IpView, ignore: ReadonlySet<ServiceKey> = new Set()): string[] {
  const out: string[] = [];
  for (const [cluster, keys] of base) {
    const cur = now.get(cluster);
    if (cur === undefined) continue;
    for (const [key, ips] of keys) {
      if (ignore.has(key)) continue;
      const got = cur.get(key);
      if (got === undefined) out.push(`${cluster} ${key}: import gone`);
      else if ([...ips].sort().join(',') !== [...got].sort().join(','))
        out.push(`${cluster} ${key}: ips ${ips.join(',')} → ${got.join(',')}`);
    }
  }
  return out;
}

/** Differences counted by cluster, what and kind: `cluster-2: 8 orphan ServiceImport, 8 orphan DerivedService`. */
export function summarize(differences: readonly Difference[]): string {
  const counts = new Map<string, Map<string, number>>();
  for (const d of differences) {
    const per = counts.get(d.cluster) ?? new Map<string, number>();
    const k = `${d.what} ${d.kind}`;
    per.set(k, (per.get(k) ?? 0) + 1);
    counts.set(d.cluster, per);
  }
  return [...counts]
    .map(([cluster, per]) => `${cluster}: ${[...per].map(([k, n]) => `${n} ${k}`).join(', ')}`)
    .join('; ');
}
