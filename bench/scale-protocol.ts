// What bench/scale.ts and its worker processes (bench/scale-worker.ts) say to each other over the IPC channel, and
// the services every simulated node exports. Requests carry an id; the worker answers each with the same id. A watch
// is answered twice: at once (it is in place), and later with its result in a `watch` message.
import { serviceKey } from '../src/core/index.js';
import type { ExportedService, ServiceKey } from '../src/core/index.js';
import { syntheticService } from '../src/gossip/index.js';

export const NAMESPACE = 'bench';

export interface NodeSpec {
  readonly id: string;
  /** The node's index in the ClusterSet: seeds the addresses of its services. */
  readonly index: number;
  /**
   * The loopback address it listens and dials from (127.1.x.y): one host per node, as separate clusters are, so that
   * per-host limits (libp2p admits 5 inbound connections per second per host) apply as they would between clusters.
   */
  readonly host: string;
  readonly bootstrap: readonly string[];
  /** Export its services as soon as it runs. */
  readonly load: boolean;
}

export type Request =
  | {
      readonly op: 'init';
      readonly psk: string;
      readonly clusterSetName: string;
      readonly services: number;
      readonly endpoints: number;
    }
  | { readonly op: 'start'; readonly nodes: readonly NodeSpec[] }
  | { readonly op: 'load'; readonly id: string }
  | { readonly op: 'status' }
  | { readonly op: 'meter' }
  | {
      readonly op: 'watch';
      readonly watch: number;
      readonly origin: string;
      readonly name: string;
      readonly address: string;
      readonly timeoutMs: number;
    }
  | { readonly op: 'update'; readonly id: string; readonly name: string; readonly seed: number }
  | { readonly op: 'bootstrap'; readonly node: NodeSpec; readonly records: number; readonly timeoutMs: number }
  | { readonly op: 'stop' };

export interface InitReply {
  readonly pid: number;
  /** RSS with the modules loaded and no node started: this process's share that is no node's. */
  readonly rss: number;
}
export interface StartReply {
  readonly addrs: readonly { readonly id: string; readonly addr: string }[];
}
export interface NodeStatus {
  readonly id: string;
  /** Records held, tombstones included. */
  readonly size: number;
  /** A short hash of the state's digest: equal on two nodes holding the same records. */
  readonly fp: string;
  readonly connections: number;
  /** Sync sessions this node ran as a client since it started: completed, failed. */
  readonly syncs: { readonly ok: number; readonly error: number };
}
export interface StatusReply {
  readonly nodes: readonly NodeStatus[];
}
export interface MeterReply {
  readonly at: number;
  /** Bytes written to TCP sockets by this process since it started. */
  readonly bytes: number;
  /** Process CPU (user + system, every thread: GC included) since it started, µs. */
  readonly cpuUs: number;
  /** Event-loop active time since it started, ms. */
  readonly loopMs: number;
  readonly rss: number;
  readonly nodes: number;
  /**
   * Counters summed over this process's nodes since they started (`name{labels}`): what the bytes are (gossipsub RPCs,
   * sync, liveness), and `connections_opened` (libp2p peer:connect events).
   */
  readonly counters: Readonly<Record<string, number>>;
}
export interface WatchResult {
  /** When each of this process's nodes first held the watched content (ms since the epoch), in no order. */
  readonly arrivals: readonly number[];
  /** Nodes that did not hold it before the timeout. */
  readonly missing: number;
}
export interface UpdateReply {
  /** When the update was handed to the origin node (ms since the epoch). */
  readonly at: number;
}
export interface BootstrapReply {
  readonly ms: number;
  readonly records: number;
  readonly addr: string;
}

export type ToWorker = { readonly id: number; readonly request: Request };
export type FromWorker =
  | { readonly id: number; readonly reply?: unknown; readonly error?: string }
  | { readonly watch: number; readonly result: WatchResult };

/** The services a node exports: `svc-0` … `svc-<services-1>` in namespace `bench`, seeded by the node's index. */
export function servicesOf(index: number, services: number, endpoints: number): Map<ServiceKey, ExportedService> {
  const m = new Map<ServiceKey, ExportedService>();
  for (let s = 0; s < services; s++)
    m.set(serviceKey(NAMESPACE, `svc-${s}`), syntheticService(index * 100 + s, endpoints));
  return m;
}

/** The first address of the first endpoint of a service: what an update changes, and what a watch looks for. */
export function firstAddress(svc: ExportedService | undefined): string | undefined {
  return svc?.endpointGroups[0]?.endpoints[0]?.addresses[0];
}

/** The counters of each node's metrics registry that {@link MeterReply.counters} sums. */
export const METERED = [
  'gossipsub_rpc_sent_bytes_total',
  'gossipsub_rpc_sent_message_total',
  'gossipsub_rpc_sent_ihave_total',
  'gossipsub_rpc_sent_iwant_total',
  'gossipsub_rpc_sent_graft_total',
  'gossipsub_rpc_sent_prune_total',
  'mcs_gossip_published_messages_total',
  'mcs_gossip_published_bytes_total',
  'mcs_gossip_sync_sessions_total',
  'mcs_gossip_sync_bytes_total',
  'mcs_gossip_liveness_frames_total',
  'mcs_gossip_liveness_bytes_total',
  'mcs_gossip_dials_total',
];

/** The loopback address of node `index`. */
export function hostOf(index: number): string {
  return `127.1.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

/** Wall-clock ms with sub-millisecond precision, comparable between the processes of one machine. */
export const now = (): number => performance.timeOrigin + performance.now();
