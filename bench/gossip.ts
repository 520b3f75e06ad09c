// `npm run bench -- gossip --nodes N --services S --endpoints E [--json]`: a ClusterSet of N real libp2p nodes on
// 127.0.0.1 in this one process, each exporting S services of E endpoints from an in-memory cluster. Measures
// single-update reach-all latency, full-state bootstrap of a new node, repair bytes after a partition, idle traffic,
// CPU per update and memory. One process on a small machine: every node's CPU is serialised on one event loop, so
// latencies are upper bounds of what separate machines see.
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import type { PeerId } from '@libp2p/interface';
import { ClusterSetState, serviceKey } from '../src/core/index.js';
import type { ExportedService, ServiceKey } from '../src/core/index.js';
import {
  createGossipNode,
  generateIdentityKey,
  generatePsk,
  MemoryCluster,
  syntheticService,
} from '../src/gossip/index.js';
import type { GossipNode, GossipNodeInit } from '../src/gossip/index.js';

interface BenchNode {
  readonly node: GossipNode;
  readonly cluster: MemoryCluster;
}

export interface GossipBenchResult {
  nodes: number;
  services: number;
  endpoints: number;
  /** Whether the initial load issued every service alone (one signature each) instead of all at once. */
  oneByOne: boolean;
  records: number;
  converged: boolean;
  loadMs: number;
  reachAllMs: { p50: number; p99: number; max: number; samples: number };
  bootstrapMs: number;
  bootstrapRecords: number;
  repairBytes: number;
  repairRecordBytes: number;
  fullStateBytes: number;
  repairRatio: number;
  idleBytesPerSecPerNode: number;
  cpuMsPerUpdatePerNode: number;
  idleCpuMsPerSecPerNode: number;
  rssMbPerNode: number;
}

// ---- traffic accounting: every byte any node writes to a TCP socket (all nodes live in this process)
let socketBytes = 0;
const originalWrite = Socket.prototype.write;
function countSocketBytes(): void {
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
    if (chunk instanceof Uint8Array) socketBytes += chunk.byteLength;
    else if (typeof chunk === 'string') socketBytes += Buffer.byteLength(chunk);
    return (originalWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof Socket.prototype.write;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
  return performance.now() - start;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const fingerprint = (n: GossipNode): string =>
  n.state
    .digest()
    .filter((d) => d.count > 0)
    .map((d) => `${d.origin}:${d.count}:${d.hash}`)
    .join(',');

function allConverged(nodes: readonly BenchNode[]): boolean {
  const first = fingerprint(nodes[0]!.node);
  return nodes.every((n) => fingerprint(n.node) === first);
}

/** Denies connections between the two sides of a cut; mutable at run time. */
class Cut {
  readonly sideB = new Set<string>();
  active = false;
  gater(self: () => PeerId | undefined): NonNullable<GossipNodeInit['connectionGater']> {
    const deny = (peer: PeerId): boolean => {
      if (!this.active) return false;
      const me = self()?.toString();
      return me !== undefined && this.sideB.has(me) !== this.sideB.has(peer.toString());
    };
    return { denyDialPeer: deny, denyInboundEncryptedConnection: deny, denyOutboundEncryptedConnection: deny };
  }
}

/**
 * Nodes keep dialling peers learned from heartbeats until they have enough, and every new connection costs a Noise
 * handshake and a sync: measure once the connection graph has stopped changing and the event loop is idle again.
 */
async function settle(nodes: readonly BenchNode[], log: (line: string) => void): Promise<void> {
  log('waiting for the connection graph to settle');
  let conns = -1;
  for (let i = 0; i < 40; i++) {
    const now = nodes.reduce((s, n) => s + n.node.libp2p.getConnections().length, 0);
    const t0 = performance.now();
    await sleep(3000);
    const lag = performance.now() - t0 - 3000;
    if (now === conns && lag < 50) break;
    conns = now;
  }
}

/** A node's start-up traffic (three signed heartbeats on the topic at 10 s intervals, first syncs) ends within this. */
const STARTUP_MS = 35_000;

function desiredFor(nodeIndex: number, services: number, endpoints: number): Map<ServiceKey, ExportedService> {
  const m = new Map<ServiceKey, ExportedService>();
  for (let s = 0; s < services; s++)
    m.set(serviceKey('bench', `svc-${s}`), syntheticService(nodeIndex * 10_000 + s, endpoints));
  return m;
}

export async function runGossipBench(options: {
  nodes: number;
  services: number;
  endpoints: number;
  updates: number;
  idleSeconds: number;
  /** Issue the initial exports one service at a time (one signature per record, the worst case for a bootstrap). */
  oneByOne?: boolean;
  log: (line: string) => void;
}): Promise<GossipBenchResult> {
  const { nodes: count, services, endpoints, log } = options;
  countSocketBytes();
  const psk = generatePsk();
  const cut = new Cut();
  const rssBefore = process.memoryUsage().rss;
  const nodes: BenchNode[] = [];
  const addrs: string[] = [];
  let lastStartAt = performance.now();
  const start = async (clusterId: string, bootstrap: string[]): Promise<BenchNode> => {
    lastStartAt = performance.now();
    const holder: { node?: GossipNode } = {};
    const node = createGossipNode({
      clusterId,
      clusterSetName: 'bench',
      privateKey: await generateIdentityKey(),
      psk,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap,
      state: new ClusterSetState(),
      connectionGater: cut.gater(() => holder.node?.peerId),
    });
    holder.node = node;
    await node.start();
    return { node, cluster: new MemoryCluster(node) };
  };

  try {
    return await measure();
  } finally {
    await Promise.all(nodes.map((n) => n.node.stop().catch(() => undefined)));
    Socket.prototype.write = originalWrite;
  }

  async function measure(): Promise<GossipBenchResult> {
    log(`starting ${count} nodes`);
    for (let i = 0; i < count; i++) {
      const boot = new Set<string>();
      for (let k = 0; k < Math.min(i, 3); k++) boot.add(addrs[Math.floor(Math.random() * i)]!);
      const n = await start(`c${i}`, [...boot]);
      nodes.push(n);
      addrs.push(n.node.libp2p.getMultiaddrs()[0]!.toString());
    }
    await waitFor(
      () => nodes.every((n) => n.node.libp2p.services.pubsub.getSubscribers(n.node.topic).length > 0),
      // 100 nodes on one loop take minutes to finish their handshakes
      300_000,
      'every node to see a subscriber',
    );
    await settle(nodes, log);

    // ---- initial load: every node exports S services
    const records = count * services;
    log(`loading ${records} records`);
    const loadStart = performance.now();
    for (const [i, n] of nodes.entries()) {
      const desired = desiredFor(i, services, endpoints);
      if (options.oneByOne !== true) n.cluster.replaceAll(desired);
      else for (const [key, svc] of desired) n.cluster.upsert('bench', key.slice('bench/'.length), svc);
    }
    await waitFor(() => nodes.every((n) => n.node.state.size === records) && allConverged(nodes), 600_000, 'load');
    const loadMs = performance.now() - loadStart;
    await sleep(1000);

    // ---- idle traffic, in steady state: after the start-up of the last node (its first signed heartbeats on the topic,
    // its first syncs) is over
    await settle(nodes, log);
    const sinceLastStart = performance.now() - lastStartAt;
    if (sinceLastStart < STARTUP_MS) {
      log(`waiting ${Math.round((STARTUP_MS - sinceLastStart) / 1000)} s for start-up traffic to end`);
      await sleep(STARTUP_MS - sinceLastStart);
    }
    log(`measuring idle traffic for ${options.idleSeconds} s`);
    const idle0 = socketBytes;
    const idleT0 = performance.now();
    // CPU = time the (one) event loop was busy: process.cpuUsage() would add V8's and libuv's helper threads.
    const idleCpu0 = performance.eventLoopUtilization();
    await sleep(options.idleSeconds * 1000);
    const idleSeconds = (performance.now() - idleT0) / 1000;
    const idleCpuMsPerSec = performance.eventLoopUtilization(idleCpu0).active / idleSeconds;
    const idleBytesPerSecPerNode = (socketBytes - idle0) / idleSeconds / count;
    const rssMbPerNode = (process.memoryUsage().rss - rssBefore) / count / 1024 / 1024;

    // ---- single-update reach-all latency and CPU per update
    log(`measuring ${options.updates} single updates`);
    const latencies: number[] = [];
    const cpu0 = performance.eventLoopUtilization();
    const updatesT0 = performance.now();
    for (let u = 0; u < options.updates; u++) {
      const origin = nodes[Math.floor(Math.random() * count)]!;
      const name = `svc-${Math.floor(Math.random() * services)}`;
      const t0 = performance.now();
      origin.cluster.upsert('bench', name, syntheticService(1_000_000 + u, endpoints));
      const version = origin.node.state.record(origin.node.clusterId, serviceKey('bench', name))!.version;
      await waitFor(
        () =>
          nodes.every((n) => {
            const r = n.node.state.record(origin.node.clusterId, serviceKey('bench', name));
            return r !== undefined && r.version.wallMs === version.wallMs && r.version.logical === version.logical;
          }),
        30_000,
        'update to reach all',
      );
      latencies.push(performance.now() - t0);
      await sleep(50);
    }
    const cpuMs = performance.eventLoopUtilization(cpu0).active;
    // What the updates cost beyond the idle background (heartbeats, gossipsub, pings) measured just before.
    const updatesSeconds = (performance.now() - updatesT0) / 1000;
    const cpuMsPerUpdatePerNode = Math.max(0, (cpuMs - idleCpuMsPerSec * updatesSeconds) / options.updates / count);
    latencies.sort((a, b) => a - b);

    // ---- full-state bootstrap of a new node
    log('bootstrapping a new node');
    const bootT0 = performance.now();
    const late = await start('late', [addrs[Math.floor(Math.random() * count)]!]);
    await waitFor(() => late.node.state.size >= records, 120_000, 'bootstrap');
    const bootstrapMs = performance.now() - bootT0;
    nodes.push(late);

    // ---- partition 30 % of the nodes, change 1 % of the records on both sides, heal
    log('partition and repair');
    // Side B: a connected 30 % of the nodes (breadth-first over the connection graph), so each side stays meshed.
    const byPeer = new Map(nodes.map((n) => [n.node.peerId.toString(), n]));
    const sideB: BenchNode[] = [];
    const queue = [nodes[Math.floor(Math.random() * count)]!];
    const seen = new Set<BenchNode>(queue);
    while (queue.length > 0 && sideB.length < Math.max(1, Math.floor(count * 0.3))) {
      const n = queue.shift()!;
      if (n === late) continue;
      sideB.push(n);
      for (const p of n.node.libp2p.getPeers()) {
        const m = byPeer.get(p.toString());
        if (m !== undefined && !seen.has(m)) {
          seen.add(m);
          queue.push(m);
        }
      }
    }
    const sideA = nodes.filter((n) => !sideB.includes(n));
    for (const n of sideB) cut.sideB.add(n.node.peerId.toString());
    cut.active = true;
    for (const a of sideA) for (const b of sideB) await a.node.libp2p.hangUp(b.node.peerId).catch(() => undefined);
    await sleep(500);
    const changes = Math.max(2, Math.round(records * 0.01));
    for (let c = 0; c < changes; c++) {
      const side = c % 2 === 0 ? sideA : sideB;
      const origin = side[Math.floor(Math.random() * Math.min(side.length, count))]!;
      if (origin === late) continue;
      origin.cluster.upsert(
        'bench',
        `svc-${Math.floor(Math.random() * services)}`,
        syntheticService(2_000_000 + c, endpoints),
      );
    }
    // A node of side A whose peers were all in side B must first find peers of its own side (learned addresses).
    try {
      await waitFor(() => allConverged(sideA) && allConverged(sideB), 90_000, 'each side to converge');
    } catch {
      log('warning: a side did not converge on its own within 90 s (isolated nodes); healing anyway');
    }
    await sleep(6000); // outlast gossipsub's message cache: only anti-entropy can repair now
    const frames0 = nodes.reduce((s, n) => s + n.node.metrics.syncBytesIn, 0);
    const recs0 = nodes.reduce((s, n) => s + n.node.metrics.syncRecordBytesIn, 0);
    cut.active = false;
    await waitFor(() => allConverged(nodes), 120_000, 'repair');
    const repairBytes = (nodes.reduce((s, n) => s + n.node.metrics.syncBytesIn, 0) - frames0) / nodes.length;
    const repairRecordBytes = (nodes.reduce((s, n) => s + n.node.metrics.syncRecordBytesIn, 0) - recs0) / nodes.length;
    const state0 = nodes[0]!.node.state;
    const fullStateBytes = state0
      .origins()
      .flatMap((o) => state0.recordsOf(o))
      .reduce((s, r) => s + (r.proof?.length ?? 0), 0);

    await sleep(500);
    const converged = allConverged(nodes);
    log('stopping');
    const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
    return {
      nodes: count,
      services,
      endpoints,
      oneByOne: options.oneByOne === true,
      records,
      converged,
      loadMs: round(loadMs, 0),
      reachAllMs: {
        p50: round(percentile(latencies, 50)),
        p99: round(percentile(latencies, 99)),
        max: round(latencies.at(-1) ?? 0),
        samples: latencies.length,
      },
      bootstrapMs: round(bootstrapMs, 0),
      bootstrapRecords: late.node.state.size,
      repairBytes: round(repairBytes, 0),
      repairRecordBytes: round(repairRecordBytes, 0),
      fullStateBytes,
      repairRatio: round(repairBytes / fullStateBytes, 4),
      idleBytesPerSecPerNode: round(idleBytesPerSecPerNode, 0),
      cpuMsPerUpdatePerNode: round(cpuMsPerUpdatePerNode, 3),
      idleCpuMsPerSecPerNode: round(idleCpuMsPerSec / count, 2),
      rssMbPerNode: round(rssMbPerNode, 2),
    };
  }
}

function table(r: GossipBenchResult): string {
  const rows: [string, string][] = [
    [
      'nodes / services per node / endpoints',
      `${r.nodes} / ${r.services} / ${r.endpoints}${r.oneByOne ? ' (exported one by one)' : ''}`,
    ],
    ['records (full state)', `${r.records} (${(r.fullStateBytes / 1024).toFixed(0)} KiB signed)`],
    ['initial load converged in', `${r.loadMs} ms`],
    [
      'reach-all latency p50 / p99 / max',
      `${r.reachAllMs.p50} / ${r.reachAllMs.p99} / ${r.reachAllMs.max} ms (${r.reachAllMs.samples} updates)`,
    ],
    ['full-state bootstrap of a new node', `${r.bootstrapMs} ms (${r.bootstrapRecords} records)`],
    [
      'repair after partition (1 % changed)',
      `${r.repairBytes} B/node (records ${r.repairRecordBytes} B) = ${(r.repairRatio * 100).toFixed(2)} % of full state`,
    ],
    ['idle traffic', `${r.idleBytesPerSecPerNode} B/s per node`],
    ['CPU per update per node', `${r.cpuMsPerUpdatePerNode} ms (idle: ${r.idleCpuMsPerSecPerNode} ms/s per node)`],
    ['RSS per node', `${r.rssMbPerNode} MB`],
    ['converged at the end', String(r.converged)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

export async function run(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      nodes: { type: 'string', default: '10' },
      services: { type: 'string', default: '10' },
      endpoints: { type: 'string', default: '10' },
      updates: { type: 'string', default: '30' },
      // A whole number of connection-monitor ping rounds (every 60 s, all connections at once, ~570 B each): a window
      // of 20 s caught one round or none, and the figure jumped by a factor of 2–3 between runs.
      'idle-seconds': { type: 'string', default: '60' },
      'one-by-one': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return n;
  };
  let result: GossipBenchResult;
  try {
    result = await runGossipBench({
      nodes: int('nodes', values.nodes, 2),
      services: int('services', values.services, 1),
      endpoints: int('endpoints', values.endpoints, 1),
      updates: int('updates', values.updates, 1),
      idleSeconds: int('idle-seconds', values['idle-seconds'], 1),
      oneByOne: values['one-by-one'] === true,
      log: values.json === true ? () => undefined : (line) => process.stderr.write(`# ${line}\n`),
    });
  } catch (err) {
    process.stderr.write(`bench gossip: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  }
  process.stdout.write(values.json === true ? JSON.stringify(result) + '\n' : table(result) + '\n');
  // libp2p keeps a few timers alive after stop; a benchmark is done when it has printed.
  process.exit(0);
}
