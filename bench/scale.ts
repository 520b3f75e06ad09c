// `npm run bench -- scale [--nodes 10,50,100,250,500] [--processes N] [--services S] [--endpoints E] [--updates U]
// [--idle-seconds T] [--seeds K] [--bootstrap peers|seeds] [--converge-timeout S] [--quick]`: a simulated
// ClusterSet of real libp2p gossip nodes (default settings, as users run them), each on its own loopback address with
// an in-memory cluster exporting S services, spread round-robin over several worker processes
// (bench/scale-worker.ts) so that no single event loop serialises every node's work. The ClusterSet grows through the
// sizes asked for; each new node bootstraps from K nodes already running (`peers`: random ones, in waves no bigger
// than the ClusterSet already running; `seeds`: the first K nodes, as when every cluster pastes the same peer
// entries). At each size it measures:
// - converge: from the first new node's start until every node holds every record (same digest everywhere);
// - idle: bytes written to TCP sockets, CPU, per node, over T s of steady state (what the bytes are: gossipsub,
//   sync and liveness counters of every node);
// - reach-all: one node's update until every node holds it, U single updates (timestamps taken in the workers on
//   the machine's shared clock: performance.timeOrigin + performance.now());
// - bootstrap: a new node's start until it holds every record;
// - RSS per node: the worker processes' RSS over their nodes (with and without each process's empty baseline).
// Sizes whose memory or idle CPU this machine cannot hold are skipped, with a note.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generatePsk, syntheticService } from '../src/gossip/index.js';
import { barChart, lineChart, percentiles, printTable, writeResults } from './report.js';
import type { Column, Percentiles, Row } from './report.js';
import { firstAddress, hostOf } from './scale-protocol.js';
import type {
  BootstrapReply,
  FromWorker,
  InitReply,
  MeterReply,
  NodeSpec,
  Request,
  StartReply,
  StatusReply,
  ToWorker,
  UpdateReply,
  WatchResult,
} from './scale-protocol.js';

const WORKER = fileURLToPath(new URL('./scale-worker.ts', import.meta.url));
const CLUSTERSET = 'bench-scale';
/** A node's start-up traffic (its first signed heartbeats on the topic, its first syncs) ends within this. */
const STARTUP_MS = 35_000;
const MiB = 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => void process.stderr.write(`# scale: ${line}\n`);
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

/** One worker process and its request/reply bookkeeping. */
class Worker {
  readonly proc: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #watches = new Map<number, (r: WatchResult) => void>();
  #next = 1;
  #exited: string | undefined;
  baselineRss = 0;
  pid = 0;
  nodes = 0;

  constructor(readonly index: number) {
    // process.execArgv carries tsx's loader: the worker runs from its TypeScript source, as this process does.
    this.proc = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (raw: unknown) => {
      const msg = raw as FromWorker;
      if ('watch' in msg) {
        this.#watches.get(msg.watch)?.(msg.result);
        this.#watches.delete(msg.watch);
        return;
      }
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`worker ${this.index}: ${msg.error}`));
      else p.resolve(msg.reply);
    });
    this.proc.on('exit', (code, signal) => {
      this.#exited = signal ?? `exit code ${code}`;
      for (const p of this.#pending.values()) p.reject(new Error(`worker ${this.index} exited (${this.#exited})`));
      this.#pending.clear();
    });
  }

  call<T>(request: Request, timeoutMs = 600_000): Promise<T> {
    if (this.#exited !== undefined) return Promise.reject(new Error(`worker ${this.index} exited (${this.#exited})`));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`worker ${this.index}: no answer to ${request.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, request } satisfies ToWorker);
    });
  }

  /** Places a watch; resolves once it is in place, with the promise of its result. */
  async watch(
    watch: number,
    request: Omit<Extract<Request, { op: 'watch' }>, 'op' | 'watch'>,
  ): Promise<{ result: Promise<WatchResult> }> {
    const result = new Promise<WatchResult>((resolve) => this.#watches.set(watch, resolve));
    await this.call({ op: 'watch', watch, ...request });
    return { result };
  }

  kill(): void {
    if (this.#exited === undefined) this.proc.kill('SIGKILL');
  }
}

interface SimNode {
  readonly id: string;
  readonly index: number;
  readonly worker: Worker;
  readonly addr: string;
  loaded: boolean;
}

export interface ScaleSize {
  nodes: number;
  records: number;
  processes: number;
  converged: boolean;
  convergeMs: number;
  reachAllMs: Percentiles & { readonly failed: number };
  /** Delay of each node receiving an update (every node of every update). */
  perNodeMs: Percentiles;
  bootstrapMs: number;
  bootstrapRecords: number;
  idleSeconds: number;
  idleBytesPerSecPerNode: number;
  idleCpuMsPerSecPerNode: number;
  idleLoopMsPerSecPerNode: number;
  rssMbPerNode: number;
  rssMbPerNodeMarginal: number;
  connectionsPerNode: number;
  /** Per node per second over the idle window: gossipsub, sync and liveness counters, connections opened. */
  idleCounters: Record<string, number>;
}

function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m === null ? Infinity : Number(m[1]) * 1024;
}

export async function run(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      nodes: { type: 'string' },
      processes: { type: 'string' },
      services: { type: 'string', default: '3' },
      endpoints: { type: 'string', default: '10' },
      updates: { type: 'string' },
      // A whole round of connection-monitor pings (every 60 s, all connections at once): see docs/gossip.md.
      'idle-seconds': { type: 'string' },
      seeds: { type: 'string', default: '3' },
      bootstrap: { type: 'string', default: 'peers' },
      'converge-timeout': { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const quick = values.quick === true;
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`scale: --${name} must be an integer ≥ ${min}`);
    return n;
  };
  const sizes = (values.nodes ?? (quick ? '10,30' : '10,50,100,250,500'))
    .split(',')
    .map((s) => int('nodes', s.trim(), 2))
    .sort((a, b) => a - b);
  const services = int('services', values.services, 1);
  const endpoints = int('endpoints', values.endpoints, 1);
  const updates = int('updates', values.updates ?? (quick ? '10' : '30'), 1);
  const idleSeconds = int('idle-seconds', values['idle-seconds'] ?? (quick ? '20' : '60'), 1);
  const seeds = int('seeds', values.seeds, 1);
  const convergeTimeoutS = int('converge-timeout', values['converge-timeout'] ?? (quick ? '120' : '300'), 1);
  const bootstrapMode = values.bootstrap;
  if (bootstrapMode !== 'seeds' && bootstrapMode !== 'peers') throw new Error('scale: --bootstrap seeds|peers');
  // Processes: at least 2 (the machine's cores), and enough that no event loop carries more than ~50 of the first 250
  // nodes (beyond, each process takes more: every process costs its own runtime's memory and CPU).
  const processes = int(
    'processes',
    values.processes ?? String(Math.max(2, Math.ceil(Math.min(sizes.at(-1)!, 250) / 50))),
    1,
  );

  const runT0 = performance.now();
  const config: Record<string, number | string> = {
    services,
    endpoints,
    updates,
    idleSeconds,
    seeds,
    bootstrap: bootstrapMode,
    processes,
    convergeTimeoutSeconds: convergeTimeoutS,
  };
  const workers: Worker[] = [];
  const onSignal = () => {
    for (const w of workers) w.kill();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: ScaleSize[] = [];
  const notes: string[] = [];
  let failure: unknown;
  try {
    log(`${processes} worker processes; sizes ${sizes.join(', ')}; ${services} services × ${endpoints} endpoints each`);
    const psk = Buffer.from(generatePsk()).toString('base64');
    for (let i = 0; i < processes; i++) workers.push(new Worker(i));
    await Promise.all(
      workers.map(async (w) => {
        const r = await w.call<InitReply>(
          { op: 'init', psk, clusterSetName: CLUSTERSET, services, endpoints },
          120_000,
        );
        w.baselineRss = r.rss;
        w.pid = r.pid;
      }),
    );
    const all: SimNode[] = [];
    let lastStartAt = 0;
    let watchId = 0;
    // `seeds`: every node bootstraps from the first K nodes (every cluster pastes the same few peer entries);
    // `peers`: from K random nodes already running (each pastes those of a few clusters of its choice).
    const bootstrapOf = (): string[] => {
      if (bootstrapMode === 'seeds' || all.length <= seeds) return all.slice(0, seeds).map((n) => n.addr);
      const picked = new Set<SimNode>();
      while (picked.size < seeds) picked.add(all[Math.floor(Math.random() * all.length)]!);
      return [...picked].map((n) => n.addr);
    };
    const workerOf = (index: number) => workers[index % workers.length]!;
    const specOf = (index: number, load: boolean): NodeSpec => ({
      id: `c${index}`,
      index,
      host: hostOf(index),
      bootstrap: bootstrapOf(),
      load,
    });
    const startBatch = async (indices: readonly number[]) => {
      const byWorker = new Map<Worker, NodeSpec[]>();
      for (const i of indices) {
        const w = workerOf(i);
        byWorker.set(w, [...(byWorker.get(w) ?? []), specOf(i, true)]);
      }
      lastStartAt = performance.now();
      await Promise.all(
        [...byWorker].map(async ([w, specs]) => {
          const r = await w.call<StartReply>({ op: 'start', nodes: specs });
          for (const a of r.addrs) {
            const index = Number(a.id.slice(1));
            all.push({ id: a.id, index, worker: w, addr: a.addr, loaded: true });
          }
          w.nodes += specs.length;
        }),
      );
      all.sort((a, b) => a.index - b.index);
      lastStartAt = performance.now();
    };
    const status = async () =>
      (await Promise.all(workers.map((w) => w.call<StatusReply>({ op: 'status' })))).flatMap((s) => s.nodes);
    const meter = async () => Promise.all(workers.map((w) => w.call<MeterReply>({ op: 'meter' })));

    for (const [si, target] of sizes.entries()) {
      if (target < all.length) continue;
      // ---- memory: the state every node holds grows with the ClusterSet, so memory grows faster than the nodes
      if (all.length > 0) {
        const rss = (await meter()).reduce((s, m) => s + m.rss, 0);
        const need = rss * (target / all.length) ** 1.5;
        if (need > memAvailable() - 2 * 1024 * MiB) {
          const note = `skipped ${target} nodes: about ${(need / 1024 / MiB).toFixed(1)} GiB needed, ${(memAvailable() / 1024 / MiB).toFixed(1)} GiB available`;
          log(note);
          notes.push(note);
          break;
        }
      }
      // ---- CPU: every node's idle work grows with the ClusterSet (it relays every other node's heartbeats and
      // liveness), so all nodes' idle CPU grows faster than their number. The sizes of issue 11 (up to 250) always run
      // (a saturated machine shows in the figures and is noted); larger ones only if their idle work, extrapolated
      // linearly per node from the last two sizes, fits in the machine.
      const last = results.at(-1);
      const before = results.at(-2);
      if (last !== undefined) {
        const slope =
          before === undefined
            ? 0
            : Math.max(0, (last.idleCpuMsPerSecPerNode - before.idleCpuMsPerSecPerNode) / (last.nodes - before.nodes));
        const need = (last.idleCpuMsPerSecPerNode + slope * (target - last.nodes)) * target;
        const have = cpus().length * 1000;
        const note =
          `${target} nodes: their idle CPU alone would be about ${(need / 1000).toFixed(1)} cores ` +
          `(extrapolated from ${last.idleCpuMsPerSecPerNode} ms/s per node at ${last.nodes} nodes), on a machine of ${cpus().length}`;
        if (need > have && target > 250) {
          log(`skipped ${note}`);
          notes.push(`skipped ${note}`);
          break;
        }
        if (need > 0.7 * have) {
          log(`warning: ${note}`);
          notes.push(`${note}: the machine is saturated, latencies and convergence measure that too`);
        }
      }
      // ---- grow: the first K nodes one at a time (each bootstrapping from those before it), then the others
      log(`growing to ${target} nodes`);
      const growT0 = performance.now();
      for (let i = all.length; i < Math.min(seeds, target); i++) await startBatch([i]);
      // With `peers`, in waves no bigger than the ClusterSet already running (each new node bootstraps from nodes
      // that run, and no node is picked by many of one wave); with `seeds`, all at once (they all dial the seeds).
      while (all.length < target) {
        const wave = bootstrapMode === 'seeds' ? target - all.length : Math.min(target - all.length, all.length);
        await startBatch(Array.from({ length: wave }, (_, k) => all.length + k));
      }
      for (const n of all) if (!n.loaded) throw new Error(`node ${n.id} not loaded`);
      const records = all.length * services;
      log(
        `${all.length} nodes started in ${Math.round((performance.now() - growT0) / 1000)} s; waiting for ${records} records everywhere`,
      );

      // ---- converge: every node holds every record, with one digest
      let converged = false;
      let lastLog = performance.now();
      const deadline = performance.now() + convergeTimeoutS * 1000;
      while (performance.now() < deadline) {
        const st = await status();
        const full = st.filter((s) => s.size === records);
        if (full.length === st.length && new Set(st.map((s) => s.fp)).size === 1) {
          converged = true;
          break;
        }
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now();
          const isolated = st.filter((x) => x.connections === 0).length;
          const short = st
            .filter((x) => x.size < records)
            .sort((a, b) => a.size - b.size)
            .slice(0, 5)
            .map((x) => `${x.id} ${x.size} rec./${x.connections} conns/${x.syncs.ok}+${x.syncs.error}✗ syncs`);
          log(
            `  ${full.length}/${st.length} nodes hold all ${records} records, ${new Set(st.map((x) => x.fp)).size} ` +
              `distinct digests, ${isolated} nodes without any connection; fewest: ${short.join(', ')}`,
          );
        }
        // Each status costs every worker a digest hash per node: poll less often as the ClusterSet grows.
        await sleep(Math.max(500, all.length * 4));
      }
      const convergeMs = performance.now() - growT0;
      log(converged ? `converged in ${round(convergeMs / 1000)} s` : `did not converge within ${convergeTimeoutS} s`);

      // ---- settle: the connection graph stops changing, and the last start-up's traffic is over
      let conns = -1;
      for (let i = 0; i < 20; i++) {
        const now = (await status()).reduce((s, n) => s + n.connections, 0);
        if (now === conns) break;
        conns = now;
        await sleep(3000);
      }
      const sinceStart = performance.now() - lastStartAt;
      if (sinceStart < STARTUP_MS) {
        log(`waiting ${Math.round((STARTUP_MS - sinceStart) / 1000)} s for start-up traffic to end`);
        await sleep(STARTUP_MS - sinceStart);
      }

      // ---- idle
      log(`measuring idle traffic for ${idleSeconds} s`);
      const m0 = await meter();
      await sleep(idleSeconds * 1000);
      const m1 = await meter();
      const n = all.length;
      const dt = (m1[0]!.at - m0[0]!.at) / 1000;
      const sum = (f: (a: MeterReply, b: MeterReply) => number) => m1.reduce((s, b, i) => s + f(m0[i]!, b), 0);
      const idleBytes = sum((a, b) => b.bytes - a.bytes) / dt / n;
      const idleCpu = sum((a, b) => (b.cpuUs - a.cpuUs) / 1000) / dt / n;
      const idleLoop = sum((a, b) => b.loopMs - a.loopMs) / dt / n;
      const holding = m1.map((m, i) => ({ m, w: workers[i]! })).filter((x) => x.m.nodes > 0);
      const rssPerNode = holding.reduce((s, x) => s + x.m.rss, 0) / n / MiB;
      const rssMarginal = holding.reduce((s, x) => s + x.m.rss - x.w.baselineRss, 0) / n / MiB;
      const connectionsPerNode = (await status()).reduce((s, x) => s + x.connections, 0) / n;
      // What the idle bytes are: each counter's rate per node.
      const idleCounters: Record<string, number> = {};
      for (const [i, b] of m1.entries()) {
        for (const [k, v] of Object.entries(b.counters)) {
          const d = v - (m0[i]!.counters[k] ?? 0);
          if (d !== 0) idleCounters[k] = (idleCounters[k] ?? 0) + d;
        }
      }
      for (const k of Object.keys(idleCounters)) idleCounters[k] = round(idleCounters[k]! / dt / n, 2);
      log(
        `  idle per node per second: ${Object.entries(idleCounters)
          .filter(([k]) => k.includes('bytes') || k === 'connections_opened')
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );

      // ---- reach-all: one update at a time, from a random node
      log(`measuring ${updates} single updates`);
      const reach: number[] = [];
      const perNode: number[] = [];
      let failed = 0;
      for (let u = 0; u < updates; u++) {
        const origin = all[Math.floor(Math.random() * all.length)]!;
        const name = `svc-${Math.floor(Math.random() * services)}`;
        const seed = 1_000_000 + si * 10_000 + u;
        const address = firstAddress(syntheticService(seed, endpoints))!;
        const id = ++watchId;
        // Every watch is in place before the update is made.
        const placed = await Promise.all(
          workers.map((w) => w.watch(id, { origin: origin.id, name, address, timeoutMs: 30_000 })),
        );
        const { at } = await origin.worker.call<UpdateReply>({ op: 'update', id: origin.id, name, seed });
        const got = await Promise.all(placed.map((p) => p.result));
        const missing = got.reduce((s, g) => s + g.missing, 0);
        const arrivals = got.flatMap((g) => g.arrivals);
        if (missing > 0) failed++;
        else reach.push(Math.max(...arrivals) - at);
        for (const a of arrivals) if (a >= at) perNode.push(a - at);
        if (failed >= 3) {
          notes.push(`${all.length} nodes: stopped the updates after ${failed} did not reach every node in 30 s`);
          break;
        }
        await sleep(200);
      }
      const reachAll = { ...percentiles(reach), failed };

      // ---- bootstrap: a new node joins (bootstrapping as the others did) and receives every record; it stays
      log('bootstrapping a new node');
      const index = all.length;
      const w = workerOf(index);
      const boot = await w.call<BootstrapReply>({
        op: 'bootstrap',
        node: specOf(index, false),
        records,
        timeoutMs: 120_000,
      });
      w.nodes++;
      lastStartAt = performance.now();
      all.push({ id: `c${index}`, index, worker: w, addr: boot.addr, loaded: true });
      await w.call({ op: 'load', id: `c${index}` });

      const size: ScaleSize = {
        nodes: n,
        records,
        processes: holding.length,
        converged,
        convergeMs: round(convergeMs, 0),
        reachAllMs: {
          ...reachAll,
          p50: round(reachAll.p50),
          p99: round(reachAll.p99),
          max: round(reachAll.max),
        },
        perNodeMs: ((p) => ({ ...p, p50: round(p.p50), p99: round(p.p99), max: round(p.max) }))(percentiles(perNode)),
        bootstrapMs: round(boot.ms, 0),
        bootstrapRecords: boot.records,
        idleSeconds: round(dt),
        idleBytesPerSecPerNode: round(idleBytes, 0),
        idleCpuMsPerSecPerNode: round(idleCpu, 2),
        idleLoopMsPerSecPerNode: round(idleLoop, 2),
        rssMbPerNode: round(rssPerNode),
        rssMbPerNodeMarginal: round(rssMarginal),
        connectionsPerNode: round(connectionsPerNode),
        idleCounters,
      };
      results.push(size);
      // What is measured so far is on disk at once: a run stopped at a larger size keeps the smaller ones.
      await writeResults('scale', { config, sizes: results, notes, partial: true });
      log(
        `${n} nodes: reach-all p50 ${size.reachAllMs.p50} / p99 ${size.reachAllMs.p99} ms, bootstrap ${size.bootstrapMs} ms, ` +
          `idle ${size.idleBytesPerSecPerNode} B/s/node, RSS ${size.rssMbPerNodeMarginal} MB/node`,
      );
      if (!converged) {
        notes.push(`stopped after ${n} nodes: they did not converge`);
        break;
      }
    }
  } catch (err) {
    failure = err;
    notes.push(`stopped by an error: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all(workers.map((w) => w.call({ op: 'stop' }, 30_000).catch(() => undefined)));
    for (const w of workers) w.kill();
  }
  const elapsedSeconds = Math.round((performance.now() - runT0) / 1000);
  log(`done in ${elapsedSeconds} s`);
  await report(results, notes, { ...config, elapsedSeconds });
  if (failure !== undefined) throw failure;
}

async function report(
  results: readonly ScaleSize[],
  notes: readonly string[],
  config: Record<string, number | string>,
): Promise<void> {
  const columns: Column[] = [
    { key: 'nodes', title: 'nodes' },
    { key: 'records', title: 'records' },
    { key: 'processes', title: 'procs' },
    { key: 'converge', title: 'converged in' },
    { key: 'reach', title: 'reach-all p50 / p99 / max' },
    { key: 'perNode', title: 'per node p50 / p99' },
    { key: 'bootstrap', title: 'bootstrap of a new node' },
    { key: 'idle', title: 'idle B/s/node' },
    { key: 'cpu', title: 'idle CPU ms/s/node (all nodes)' },
    { key: 'rss', title: 'RSS MB/node (with process)' },
    { key: 'conns', title: 'conns/node' },
  ];
  const rows: Row[] = results.map((r) => ({
    nodes: r.nodes,
    records: r.records,
    processes: r.processes,
    converge: r.converged ? `${round(r.convergeMs / 1000)} s` : 'no',
    reach: `${r.reachAllMs.p50} / ${r.reachAllMs.p99} / ${r.reachAllMs.max} ms${r.reachAllMs.failed > 0 ? ` (${r.reachAllMs.failed} failed)` : ''}`,
    perNode: `${r.perNodeMs.p50} / ${r.perNodeMs.p99} ms`,
    bootstrap: `${r.bootstrapMs} ms (${r.bootstrapRecords} rec.)`,
    idle: r.idleBytesPerSecPerNode,
    cpu: `${r.idleCpuMsPerSecPerNode} (${round((r.idleCpuMsPerSecPerNode * r.nodes) / 1000, 2)} cores)`,
    rss: `${r.rssMbPerNodeMarginal} (${r.rssMbPerNode})`,
    conns: r.connectionsPerNode,
  }));
  const at250 = results.find((r) => r.nodes >= 250);
  const largest = results.at(-1);
  const targets = [
    `250 nodes converge: ${at250 === undefined ? 'not measured' : at250.converged ? `met (${at250.nodes} nodes, ${round(at250.convergeMs / 1000)} s)` : 'MISSED'}`,
    `reach-all p99 ≤ 1 s at 250 nodes: ${at250 === undefined ? 'not measured' : `${at250.reachAllMs.p99 <= 1000 && at250.reachAllMs.failed === 0 ? 'met' : 'MISSED'} (${at250.reachAllMs.p99} ms over ${at250.reachAllMs.samples} updates${at250.reachAllMs.failed > 0 ? `, ${at250.reachAllMs.failed} never reached everyone` : ''})`}`,
    `idle ≤ 1 KB/s/node: ${
      results.length === 0
        ? 'not measured'
        : results.every((r) => r.idleBytesPerSecPerNode <= 1024)
          ? `met at every size (largest: ${largest!.idleBytesPerSecPerNode} B/s at ${largest!.nodes} nodes)`
          : `MISSED at ${results
              .filter((r) => r.idleBytesPerSecPerNode > 1024)
              .map((r) => `${r.nodes} nodes (${r.idleBytesPerSecPerNode} B/s)`)
              .join(', ')}`
    }`,
  ];
  const title =
    `scale: simulated ClusterSets (real libp2p, one loopback address per node, default settings, ${config.services} services × ` +
    `${config.endpoints} endpoints per node, ${config.processes} worker processes, ${config.bootstrap === 'seeds' ? `every node bootstrapping from the same ${config.seeds} seed nodes` : `each node bootstrapping from ${config.seeds} random earlier nodes`}; ` +
    `idle over ${config.idleSeconds} s, ${config.updates} single updates per size)`;
  const after = ['Targets:', ...targets.map((t) => `- ${t}`), ...notes.map((n) => `- ${n}`), ''].join('\n');
  const text = `${printTable(title, columns, rows)}\n${after}`;
  process.stdout.write(after);
  const points = (f: (r: ScaleSize) => number) => results.map((r) => [r.nodes, f(r)] as const);
  const charts = [
    lineChart({
      title: 'reach-all latency and bootstrap of a new node',
      xLabel: 'nodes',
      yLabel: 'ms',
      series: [
        { label: 'reach-all p50', points: points((r) => r.reachAllMs.p50) },
        { label: 'reach-all p99', points: points((r) => r.reachAllMs.p99) },
        { label: 'bootstrap', points: points((r) => r.bootstrapMs) },
      ],
    }),
    barChart({
      title: 'idle traffic per node',
      unit: 'B/s',
      groups: results.map((r) => ({
        label: `${r.nodes} nodes`,
        values: [{ label: 'idle B/s per node', value: r.idleBytesPerSecPerNode }],
      })),
    }),
    lineChart({
      title: 'RSS per node',
      xLabel: 'nodes',
      yLabel: 'MB',
      series: [
        { label: 'marginal', points: points((r) => r.rssMbPerNodeMarginal) },
        { label: 'with process', points: points((r) => r.rssMbPerNode) },
      ],
    }),
  ];
  await writeResults('scale', { config, sizes: results, targets, notes }, { svg: stack(charts), table: text });
}

/** Several standalone SVG charts one under the other, as one SVG. */
export function stack(charts: readonly string[]): string {
  let y = 0;
  let width = 0;
  const parts: string[] = [];
  for (const c of charts) {
    const w = Number(/width="(\d+)"/.exec(c)?.[1] ?? 720);
    const h = Number(/height="(\d+)"/.exec(c)?.[1] ?? 400);
    parts.push(c.replace('<svg ', `<svg x="0" y="${y}" `));
    y += h;
    width = Math.max(width, w);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}">\n${parts.join('')}</svg>\n`;
}
