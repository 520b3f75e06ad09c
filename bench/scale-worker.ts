// A worker process of `npm run bench -- scale` (bench/scale.ts forks several): it runs some of the simulated
// ClusterSet's nodes — real libp2p gossip nodes on 127.0.0.1, each with an in-memory cluster, default settings —
// and answers the parent's requests over the IPC channel (bench/scale-protocol.ts). Every figure it reports is of
// this process alone: bytes its nodes wrote to TCP sockets, its CPU, its RSS.
import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import { ClusterSetState, serviceKey } from '../src/core/index.js';
import type { ExportRecord, ServiceKey } from '../src/core/index.js';
import { createGossipNode, generateIdentityKey, MemoryCluster, syntheticService } from '../src/gossip/index.js';
import type { GossipNode } from '../src/gossip/index.js';
import { firstAddress, METERED, NAMESPACE, now, servicesOf } from './scale-protocol.js';
import type {
  BootstrapReply,
  FromWorker,
  InitReply,
  MeterReply,
  NodeSpec,
  NodeStatus,
  Request,
  StartReply,
  StatusReply,
  ToWorker,
  UpdateReply,
  WatchResult,
} from './scale-protocol.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Every byte this process's nodes write to TCP sockets. The IPC channel to the parent writes to its pipe directly,
// not through net.Socket.prototype.write, so it is not counted.
let socketBytes = 0;
const originalWrite = Socket.prototype.write;
Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
  if (chunk instanceof Uint8Array) socketBytes += chunk.byteLength;
  else if (typeof chunk === 'string') socketBytes += Buffer.byteLength(chunk);
  return (originalWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
} as typeof Socket.prototype.write;

interface Member {
  readonly spec: NodeSpec;
  readonly node: GossipNode;
  readonly cluster: MemoryCluster;
}

interface Watch {
  readonly origin: string;
  readonly key: ServiceKey;
  readonly address: string;
  readonly pending: Set<string>;
  readonly arrivals: number[];
  readonly done: () => void;
}

let config: { psk: Uint8Array; clusterSetName: string; services: number; endpoints: number } | undefined;
const members = new Map<string, Member>();
let connectionsOpened = 0;
const watches = new Set<Watch>();

function configured(): NonNullable<typeof config> {
  if (config === undefined) throw new Error('worker not initialised');
  return config;
}

function send(msg: FromWorker): void {
  process.send?.(msg);
}

/** A node merged records of other origins: the moment it first holds a watched content is its arrival. */
function onRecords(id: string, records: readonly ExportRecord[]): void {
  if (watches.size === 0) return;
  const at = now();
  for (const w of watches) {
    if (!w.pending.has(id)) continue;
    for (const r of records) {
      if (r.origin === w.origin && r.namespace === NAMESPACE && serviceKey(r.namespace, r.name) === w.key) {
        if (firstAddress(r.service) !== w.address) continue;
        w.pending.delete(id);
        w.arrivals.push(at);
        if (w.pending.size === 0) w.done();
        break;
      }
    }
  }
}

async function startNode(spec: NodeSpec): Promise<Member> {
  const c = configured();
  const node = createGossipNode({
    clusterId: spec.id,
    clusterSetName: c.clusterSetName,
    privateKey: await generateIdentityKey(),
    psk: c.psk,
    listen: [`/ip4/${spec.host}/tcp/0`],
    bootstrap: [...spec.bootstrap],
    state: new ClusterSetState(),
  });
  node.on('state:change', (evt) => onRecords(spec.id, evt.detail.records));
  await node.start();
  node.libp2p.addEventListener('peer:connect', () => connectionsOpened++);
  const m: Member = { spec, node, cluster: new MemoryCluster(node) };
  members.set(spec.id, m);
  if (spec.load) m.cluster.replaceAll(servicesOf(spec.index, c.services, c.endpoints));
  return m;
}

const addrOf = (m: Member): string => m.node.libp2p.getMultiaddrs()[0]!.toString();

function fingerprint(n: GossipNode): string {
  const text = n.state
    .digest()
    .filter((d) => d.count > 0)
    .map((d) => `${d.origin}:${d.count}:${d.hash}`)
    .join(',');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** The node's completed and failed client sync sessions (its metrics). */
async function clientSyncs(n: GossipNode): Promise<NodeStatus['syncs']> {
  const out = { ok: 0, error: 0 };
  for (const v of (await n.metrics.syncSessions.get()).values) {
    if (v.labels.role !== 'client') continue;
    if (v.labels.result === 'ok') out.ok += v.value;
    else out.error += v.value;
  }
  return out;
}

function member(id: string): Member {
  const m = members.get(id);
  if (m === undefined) throw new Error(`no node ${id} in worker ${process.pid}`);
  return m;
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'init': {
      config = {
        psk: Buffer.from(req.psk, 'base64'),
        clusterSetName: req.clusterSetName,
        services: req.services,
        endpoints: req.endpoints,
      };
      await generateIdentityKey(); // loads the crypto modules before the baseline is taken
      await sleep(200);
      return { pid: process.pid, rss: process.memoryUsage().rss } satisfies InitReply;
    }
    case 'start': {
      const addrs: { id: string; addr: string }[] = [];
      for (const spec of req.nodes) addrs.push({ id: spec.id, addr: addrOf(await startNode(spec)) });
      return { addrs } satisfies StartReply;
    }
    case 'load': {
      const c = configured();
      const m = member(req.id);
      m.cluster.replaceAll(servicesOf(m.spec.index, c.services, c.endpoints));
      return {};
    }
    case 'status': {
      const nodes: NodeStatus[] = await Promise.all(
        [...members.values()].map(async (m) => ({
          id: m.spec.id,
          size: m.node.state.size,
          fp: fingerprint(m.node),
          connections: m.node.libp2p.getConnections().length,
          syncs: await clientSyncs(m.node),
        })),
      );
      return { nodes } satisfies StatusReply;
    }
    case 'meter': {
      const counters: Record<string, number> = { connections_opened: connectionsOpened };
      for (const m of members.values()) {
        for (const metric of await m.node.metrics.registry.getMetricsAsJSON()) {
          if (!METERED.includes(metric.name)) continue;
          for (const v of (metric as { values?: { value: number; labels: Record<string, unknown> }[] }).values ?? []) {
            const labels = Object.entries(v.labels)
              .filter(([k]) => k !== 'topic')
              .map(([k, x]) => `${k}="${String(x)}"`)
              .join(',');
            const k = labels === '' ? metric.name : `${metric.name}{${labels}}`;
            counters[k] = (counters[k] ?? 0) + v.value;
          }
        }
      }
      const cpu = process.cpuUsage();
      return {
        at: now(),
        bytes: socketBytes,
        cpuUs: cpu.user + cpu.system,
        loopMs: performance.eventLoopUtilization().active,
        rss: process.memoryUsage().rss,
        nodes: members.size,
        counters,
      } satisfies MeterReply;
    }
    case 'watch': {
      const key = serviceKey(NAMESPACE, req.name);
      const pending = new Set<string>();
      const arrivals: number[] = [];
      const at = now();
      for (const m of members.values()) {
        // The origin holds its update at once (and hears no state:change for its own records): not waited for.
        if (m.spec.id === req.origin) continue;
        if (firstAddress(m.node.state.record(req.origin, key)?.service) === req.address) arrivals.push(at);
        else pending.add(m.spec.id);
      }
      const finish = () =>
        send({ watch: req.watch, result: { arrivals, missing: pending.size } satisfies WatchResult });
      if (pending.size === 0) {
        setImmediate(finish);
        return {};
      }
      let timer: NodeJS.Timeout | undefined = undefined;
      const w: Watch = {
        origin: req.origin,
        key,
        address: req.address,
        pending,
        arrivals,
        done: () => {
          clearTimeout(timer);
          watches.delete(w);
          finish();
        },
      };
      timer = setTimeout(w.done, req.timeoutMs);
      watches.add(w);
      return {};
    }
    case 'update': {
      const c = configured();
      const m = member(req.id);
      const svc = syntheticService(req.seed, c.endpoints);
      const at = now();
      m.cluster.upsert(NAMESPACE, req.name, svc);
      return { at } satisfies UpdateReply;
    }
    case 'bootstrap': {
      const t0 = now();
      const m = await startNode(req.node);
      const deadline = t0 + req.timeoutMs;
      while (m.node.state.size < req.records && now() < deadline) await sleep(5);
      return { ms: now() - t0, records: m.node.state.size, addr: addrOf(m) } satisfies BootstrapReply;
    }
    case 'stop': {
      await Promise.all(
        [...members.values()].map((m) => Promise.race([m.node.stop().catch(() => undefined), sleep(5000)])),
      );
      members.clear();
      return {};
    }
  }
}

process.on('message', (raw: unknown) => {
  const msg = raw as ToWorker;
  handle(msg.request).then(
    (reply) => send({ id: msg.id, reply }),
    (err: unknown) => send({ id: msg.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
// The parent is gone (finished, or killed): so is this process, whatever libp2p still holds open.
process.on('disconnect', () => process.exit(0));
