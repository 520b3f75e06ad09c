// The node's own metrics, on the node's Registry (which outlives gossip restarts): build info, the process's default
// metrics, each remote cluster as the running gossip node sees it (read at scrape time), and the counts of the last
// resolution.
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { CONDITION_CONFLICT, type KeyOutcome, type LocalExport, type Resolution } from '../core/index.js';
import type { GossipStatus } from '../gossip/index.js';

export interface BuildInfo {
  readonly version: string;
  readonly commit?: string;
}

export interface NodeMetricsInit {
  readonly registry: Registry;
  readonly buildInfo?: BuildInfo;
  /** Register prom-client's default process and Node.js metrics (`process_*`, `nodejs_*`). Default true. */
  readonly defaultMetrics?: boolean;
  /** The running gossip node's status, undefined while none runs. */
  readonly gossipStatus: () => GossipStatus | undefined;
  /** Live records held of each cluster by the running gossip node (read at scrape time). */
  readonly liveRecords?: () => ReadonlyMap<string, number> | undefined;
  readonly now?: () => number;
}

/** A name the default metrics always register: present means they are on the registry already. */
const DEFAULT_METRIC = 'process_cpu_user_seconds_total';

export class NodeMetrics {
  readonly #init: NodeMetricsInit;
  readonly #now: () => number;
  /** When each remote cluster was last seen going from alive to unheard (ms since the epoch). */
  readonly #lastUnheard = new Map<string, number>();
  readonly #wasAlive = new Map<string, boolean>();
  /** One status per scrape: the four cluster gauges read the same one. */
  #cached: { at: number; status: GossipStatus | undefined; live: ReadonlyMap<string, number> | undefined } | undefined;
  readonly #exports: Gauge<'valid'>;
  readonly #imports: Gauge;
  readonly #conflicts: Gauge;
  /** Keys this cluster imports, and local exports in conflict, as the last passes resolved them. */
  readonly #importedKeys = new Set<string>();
  readonly #conflictKeys = new Set<string>();

  constructor(init: NodeMetricsInit) {
    this.#init = init;
    this.#now = init.now ?? Date.now;
    const registers = [init.registry];
    if (init.defaultMetrics !== false && init.registry.getSingleMetric(DEFAULT_METRIC) === undefined)
      collectDefaultMetrics({ register: init.registry });
    const build = new Gauge({
      name: 'mcs_gossip_build_info',
      help: 'Always 1: the version of mcs-gossip and of Node.js this node runs',
      labelNames: ['version', 'node_version', 'commit'],
      registers,
    });
    const info = init.buildInfo ?? { version: 'unknown' };
    build.set(
      {
        version: info.version,
        node_version: process.version,
        ...(info.commit === undefined || info.commit === '' ? {} : { commit: info.commit }),
      },
      1,
    );
    const remote = () => this.remoteClusters();
    const perCluster = (name: string, help: string, value: (o: RemoteCluster) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['cluster'],
        registers,
        collect() {
          // Reset first: a forgotten cluster's series disappears.
          this.reset();
          for (const o of remote()) {
            const v = value(o);
            if (v !== undefined) this.set({ cluster: o.cluster }, v);
          }
        },
      });
    perCluster(
      'mcs_gossip_cluster_alive',
      'Whether a remote cluster is heard within the endpoint TTL (1) or not (0)',
      (o) => (o.alive ? 1 : 0),
    );
    perCluster(
      'mcs_gossip_cluster_heartbeat_age_seconds',
      'Seconds since the last heartbeat of a remote cluster was heard (absent before its first)',
      (o) => o.heartbeatAgeSeconds,
    );
    perCluster('mcs_gossip_cluster_records', 'Live export records held of a remote cluster', (o) => o.records);
    perCluster(
      'mcs_gossip_cluster_last_unheard_timestamp_seconds',
      'When a remote cluster was last seen going from alive to unheard (seconds since the epoch; 0 if never)',
      (o) => o.lastUnheardSeconds,
    );
    this.#exports = new Gauge({
      name: 'mcs_gossip_exports',
      help: "This cluster's ServiceExports, by their Valid condition",
      labelNames: ['valid'],
      registers,
    });
    this.#imports = new Gauge({
      name: 'mcs_gossip_imports',
      help: 'ServiceImports this cluster should hold (last resolution)',
      registers,
    });
    this.#conflicts = new Gauge({
      name: 'mcs_gossip_conflicts',
      help: "This cluster's exported services whose Conflict condition is True (last resolution)",
      registers,
    });
    this.#exports.set({ valid: 'true' }, 0);
    this.#exports.set({ valid: 'false' }, 0);
    this.#imports.set(0);
    this.#conflicts.set(0);
  }

  /**
   * Notes which remote clusters went from alive to unheard since the last look (called on every liveness check and
   * scrape); forgets what it kept of clusters no longer held.
   */
  observe(status: GossipStatus | undefined): void {
    if (status === undefined) return;
    const held = new Set<string>();
    for (const o of status.origins) {
      if (o.origin === status.clusterId) continue;
      held.add(o.origin);
      if (this.#wasAlive.get(o.origin) === true && !o.alive) this.#lastUnheard.set(o.origin, this.#now());
      this.#wasAlive.set(o.origin, o.alive);
    }
    for (const c of [...this.#wasAlive.keys()]) {
      if (held.has(c)) continue;
      this.#wasAlive.delete(c);
      this.#lastUnheard.delete(c);
    }
  }

  /** The remote clusters of the running gossip node, as the per-cluster gauges report them. */
  remoteClusters(): RemoteCluster[] {
    const now = this.#now();
    if (this.#cached === undefined || now - this.#cached.at > 250 || now < this.#cached.at) {
      const status = this.#init.gossipStatus();
      this.observe(status);
      this.#cached = { at: now, status, live: status === undefined ? undefined : this.#init.liveRecords?.() };
    }
    const { status, live } = this.#cached;
    if (status === undefined) return [];
    // A cluster that left the ClusterSet is no member any more: no series (its alive=0 would look like an outage).
    return status.origins
      .filter((o) => o.origin !== status.clusterId && o.left !== true)
      .map((o) => ({
        cluster: o.origin,
        alive: o.alive,
        ...(o.heartbeatAgeMs === undefined ? {} : { heartbeatAgeSeconds: o.heartbeatAgeMs / 1000 }),
        records: live?.get(o.origin) ?? 0,
        lastUnheardSeconds: (this.#lastUnheard.get(o.origin) ?? 0) / 1000,
      }));
  }

  /** Counts of the last resolution and of the local exports it was made with. */
  resolved(resolution: Resolution, localExports: readonly LocalExport[]): void {
    this.#importedKeys.clear();
    this.#conflictKeys.clear();
    for (const si of resolution.serviceImports) this.#importedKeys.add(`${si.metadata.namespace}/${si.metadata.name}`);
    const local = new Set(localExports.map((e) => `${e.namespace}/${e.name}`));
    for (const c of resolution.exportConditions) {
      const key = `${c.namespace}/${c.name}`;
      if (local.has(key) && c.conditions.some((x) => x.type === CONDITION_CONFLICT && x.status === 'True'))
        this.#conflictKeys.add(key);
    }
    this.#setCounts(localExports);
  }

  /** {@link NodeMetrics.resolved} for the keys of a per-key pass; the others keep what the last passes said. */
  resolvedKeys(outcomes: ReadonlyMap<string, KeyOutcome>, localExports: Iterable<LocalExport>): void {
    for (const [key, o] of outcomes) {
      if (o.serviceImport === undefined) this.#importedKeys.delete(key);
      else this.#importedKeys.add(key);
      if (o.exportConditions?.some((x) => x.type === CONDITION_CONFLICT && x.status === 'True'))
        this.#conflictKeys.add(key);
      else this.#conflictKeys.delete(key);
    }
    this.#setCounts(localExports);
  }

  #setCounts(localExports: Iterable<LocalExport>): void {
    let valid = 0;
    let all = 0;
    for (const e of localExports) {
      all++;
      if (e.valid.status === 'True') valid++;
    }
    this.#exports.set({ valid: 'true' }, valid);
    this.#exports.set({ valid: 'false' }, all - valid);
    this.#imports.set(this.#importedKeys.size);
    this.#conflicts.set(this.#conflictKeys.size);
  }
}

export interface RemoteCluster {
  readonly cluster: string;
  readonly alive: boolean;
  /** Absent before its first heartbeat. */
  readonly heartbeatAgeSeconds?: number;
  readonly records: number;
  /** 0 if never seen going unheard. */
  readonly lastUnheardSeconds: number;
}
