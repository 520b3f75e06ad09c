/**
 * The composition root of one cluster's node: wires the Kubernetes adapter and the gossip layer through the core.
 *
 *   kube local exports ──► gossip.setLocalExports ──► peers
 *   gossip state changes, heartbeats, liveness ticks ──► resolve(state) ──► kube.apply (writes only differences)
 *
 * The gossip node runs only while the cluster has a valid identity and this replica leads; a change of cluster id
 * is a leave (own exports tombstoned, node stopped) followed by a join under the new id with fresh state.
 */
import type { Ed25519PrivateKey } from '@libp2p/interface';
import type * as k8s from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { Gauge, Registry } from 'prom-client';
import { ClusterSetState, DEFAULT_ENDPOINT_TTL_MS, resolve, resolveKeys, type ServiceKey } from '../core/index.js';
import {
  createGossipNode,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  MIN_WIRE_VERSION,
  parseBootstrapEntry,
  WIRE_VERSION,
  type GossipNode,
  type GossipStatus,
} from '../gossip/index.js';
import {
  Coalescer,
  createKubeAdapter,
  formatPeerProperty,
  type ClusterIdentity,
  type KubeAdapter,
  type LeaderElectionInit,
  type LocalChangeDetail,
  type RefusedKey,
} from '../kube/index.js';
import { NodeMetrics, type BuildInfo } from './node-metrics.js';

export interface McsNodeInit {
  readonly kubeConfig: k8s.KubeConfig;
  /** The persistent identity key (its PeerId is this cluster's PeerId). */
  readonly privateKey: Ed25519PrivateKey;
  /** The identity key this cluster used before a key rotation (see GossipNodeInit.previousKey). */
  readonly previousKey?: Ed25519PrivateKey;
  /** The ClusterSet key (pnet). */
  readonly psk: Uint8Array;
  /** Listen multiaddrs. Default `/ip4/0.0.0.0/tcp/7946`. */
  readonly listen?: readonly string[];
  /** Announced multiaddrs (NAT, LoadBalancer). Default: derived from `announceFromService`, else the listen addresses. */
  readonly announce?: readonly string[];
  /**
   * The node's own gossip Service: without `announce`, the node announces its LoadBalancer ingress addresses (or,
   * for a NodePort Service, `nodeIp` at the node port) and follows them as they change.
   */
  readonly announceFromService?: { readonly namespace: string; readonly name: string };
  /** The IP of the Kubernetes node the pod runs on (fieldRef status.hostIP): announced with a NodePort. */
  readonly nodeIp?: string;
  /** Bootstrap peers from flags; those of the bootstrap ClusterProperty are added. */
  readonly bootstrap?: readonly string[];
  /** Endpoint TTL (ms): an origin unheard this long has its endpoints withdrawn. Default 30 s. */
  readonly endpointTtlMs?: number;
  /** Heartbeat period (ms). Default: the gossip layer's (10 s). Keep well below the TTL. */
  readonly heartbeatIntervalMs?: number;
  /** Anti-entropy period (ms). Default: the gossip layer's. */
  readonly syncIntervalMs?: number;
  /** Another cluster unheard this long is forgotten with its imports. Default: the gossip layer's (24 h). */
  readonly originHorizonMs?: number;
  /** This cluster's tombstones older than this are collected. Default: the gossip layer's (24 h). */
  readonly tombstoneHorizonMs?: number;
  /** Elect one active replica with a Lease. Default: none (this replica is active). */
  readonly leaderElection?: LeaderElectionInit;
  readonly logger?: Logger;
  /** Where all metrics go. Default: a new Registry. */
  readonly metricsRegistry?: Registry;
  /** Reported by `mcs_gossip_build_info`. Default: version `unknown`. */
  readonly buildInfo?: BuildInfo;
  /**
   * A resolve pass runs in the next turn of the event loop after the first event of a quiet period, then at most
   * once per this many ms while events keep coming. Default 10.
   */
  readonly resolveIntervalMs?: number;
  /** Every key is resolved again this often, as a safety net of the per-key passes. Default 5 min. */
  readonly fullResolveIntervalMs?: number;
  /** Register prom-client's default process and Node.js metrics on the registry. Default true. */
  readonly defaultMetrics?: boolean;
}

/** What `/readyz` reports. */
export interface NodeReadiness {
  readonly ready: boolean;
  readonly reason: string;
}

/** What `/status` reports. */
export interface NodeStatus {
  /** This node's software version, and the wire versions it speaks (docs/upgrades.md). */
  readonly version: string;
  readonly wire: { readonly version: number; readonly min: number };
  /** The timings liveness depends on (`mcs-gossip diagnose` checks them). */
  readonly config: { readonly endpointTtlMs: number; readonly heartbeatIntervalMs: number };
  readonly readiness: NodeReadiness;
  readonly identity?: ClusterIdentity;
  readonly leader: boolean;
  readonly gossip?: GossipStatus;
  /** Peers refused for their version (also in gossip.incompatiblePeers; empty while gossip is stopped). */
  readonly incompatiblePeers: GossipStatus['incompatiblePeers'];
  readonly withdrawnOrigins: readonly string[];
  /** Service keys kept as they are in the cluster until the source clusters they name are settled. */
  readonly heldKeys: readonly { readonly key: string; readonly waitingFor: readonly string[] }[];
  /** Keys whose last writes the API server refused (4xx), with its answers: retried on a change or a resync. */
  readonly refusedKeys: readonly RefusedKey[];
  /** Exported services not imported here because their namespace does not exist (create it to import them). */
  readonly namespaceMissing: readonly { readonly key: string; readonly exporters: readonly string[] }[];
  /** Export records held that importers could not write: skipped by resolution, with the reason. */
  readonly unimportableRecords: readonly {
    readonly origin: string;
    readonly key: string;
    readonly reason: string;
    readonly message: string;
  }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class McsNode {
  readonly kube: KubeAdapter;
  readonly registry: Registry;
  readonly #init: McsNodeInit;
  readonly #log: Logger;
  readonly #ttlMs: number;
  #gossip: GossipNode | undefined;
  /** The gossip node's metrics: a Registry per gossip node, since a restarted node registers its metrics anew. */
  #gossipRegistry: Registry | undefined;
  /** Identity, bootstrap list and announce addresses the running gossip node was started with. */
  #running: { identity: ClusterIdentity; bootstrap: string; announce: string } | undefined;
  /** Bootstrap entries of the ClusterProperty that do not parse: skipped, reported in /readyz, logs and a metric. */
  #badBootstrap: readonly string[] = [];
  readonly #badBootstrapGauge: Gauge;
  readonly #metrics: NodeMetrics;
  /** Why the announce addresses are not derived yet (the LoadBalancer has no ingress yet, …). */
  #announceProblem: string | undefined;
  #state: { clusterId: string; state: ClusterSetState } | undefined;
  #membership: Promise<void> = Promise.resolve();
  /** Counts origins becoming settled (across gossip restarts): held keys are re-checked when it changes. */
  #settledEvents = 0;
  /**
   * The data path runs per key: gossip, local and liveness events mark the keys they touch, and a pass resolves and
   * applies those keys alone. A whole pass (every key) runs when the gossip node starts, when an event cannot say
   * which keys it touched, and periodically as a safety net.
   */
  readonly #resolver: Coalescer;
  #resolveAll = true;
  readonly #dirtyKeys = new Set<ServiceKey>();
  readonly #dirtyNamespaces = new Set<string>();
  #fullResolveTimer: NodeJS.Timeout | undefined;
  #livenessTimer: NodeJS.Timeout | undefined;
  #withdrawn = '';
  #stopped = true;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(init: McsNodeInit) {
    this.#init = init;
    this.#log = init.logger ?? pino({ level: 'silent' });
    this.registry = init.metricsRegistry ?? new Registry();
    this.#ttlMs = init.endpointTtlMs ?? DEFAULT_ENDPOINT_TTL_MS;
    this.#badBootstrapGauge = new Gauge({
      name: 'mcs_gossip_bootstrap_entries_invalid',
      help: 'Entries of the bootstrap ClusterProperty that do not parse and are skipped',
      registers: [this.registry],
    });
    // On the node's registry, not a gossip node's: they survive gossip restarts and are registered once.
    this.#metrics = new NodeMetrics({
      registry: this.registry,
      ...(init.buildInfo === undefined ? {} : { buildInfo: init.buildInfo }),
      ...(init.defaultMetrics === undefined ? {} : { defaultMetrics: init.defaultMetrics }),
      gossipStatus: () => this.#gossip?.status(),
      liveRecords: () => this.#gossip?.liveRecordCounts(),
    });
    this.#resolver = new Coalescer(() => this.#resolveAndApply(), init.resolveIntervalMs ?? 10);
    this.kube = createKubeAdapter({
      kubeConfig: init.kubeConfig,
      logger: this.#log,
      metricsRegistry: this.registry,
      ...(init.leaderElection === undefined ? {} : { leaderElection: init.leaderElection }),
    });
  }

  get gossip(): GossipNode | undefined {
    return this.#gossip;
  }

  /** This cluster's id while the ClusterProperties give a valid identity (for log lines). */
  get clusterId(): string | undefined {
    const id = this.kube.identity();
    return id.ok ? id.identity.clusterId : undefined;
  }

  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#unsubscribe.push(
      this.kube.on('identity', () => this.#membershipChanged()),
      this.kube.on('leader', (evt) => {
        // A replica that lost the lease stops gossiping at once, not when the membership chain gets to it (a step
        // in it may wait on the API): the new leader must be the only one speaking for this origin.
        if (!evt.detail) this.#haltGossip();
        this.#membershipChanged();
      }),
      this.kube.on('bootstrap', () => this.#membershipChanged()),
      this.kube.on('local:change', (evt) => this.#localChanged(evt.detail)),
    );
    await this.kube.start();
    this.#membershipChanged();
    await this.#membership;
    const tick = Math.max(250, Math.min(5000, Math.floor(this.#ttlMs / 10)));
    this.#livenessTimer = setInterval(() => this.#checkLiveness(), tick);
    // The safety net of the per-key path: every local export recomputed and published, every key resolved.
    this.#fullResolveTimer = setInterval(() => {
      this.kube.recomputeLocalExports();
      this.#scheduleResolve(true);
    }, this.#init.fullResolveIntervalMs ?? 300_000);
    this.#fullResolveTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#resolver.cancel();
    if (this.#livenessTimer !== undefined) clearInterval(this.#livenessTimer);
    if (this.#fullResolveTimer !== undefined) clearInterval(this.#fullResolveTimer);
    await this.#membership;
    await this.#stopGossip(false);
    await this.kube.stop();
  }

  /** All metrics in the Prometheus text format: the adapter's and the running gossip node's. */
  async metrics(): Promise<{ contentType: string; text: string }> {
    const registries = this.#gossipRegistry === undefined ? [this.registry] : [this.registry, this.#gossipRegistry];
    const merged = Registry.merge(registries);
    return { contentType: merged.contentType, text: await merged.metrics() };
  }

  readiness(): NodeReadiness {
    const k = this.kube.readiness();
    if (!k.ready) return k;
    if (!this.kube.isLeader()) return k;
    if (this.#gossip === undefined) return { ready: false, reason: 'gossip node not started' };
    const notes: string[] = [];
    const held = this.kube.heldKeys();
    if (held.size > 0) {
      const origins = [...new Set([...held.values()].flat())].sort();
      notes.push(`holding ${held.size} import(s) as they are until ${origins.join(', ')} sync`);
    }
    if (this.#badBootstrap.length > 0)
      notes.push(
        `skipping ${this.#badBootstrap.length} bad bootstrap entr${this.#badBootstrap.length === 1 ? 'y' : 'ies'}: ${this.#badBootstrap.join('; ')}`,
      );
    if (this.#announceProblem !== undefined) notes.push(this.#announceProblem);
    return notes.length === 0 ? k : { ready: true, reason: `${k.reason}; ${notes.join('; ')}` };
  }

  status(): NodeStatus {
    const id = this.kube.identity();
    const gossip = this.#gossip?.status();
    return {
      version: this.#init.buildInfo?.version ?? 'unknown',
      wire: { version: WIRE_VERSION, min: MIN_WIRE_VERSION },
      config: {
        endpointTtlMs: this.#ttlMs,
        heartbeatIntervalMs: this.#init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      },
      readiness: this.readiness(),
      ...(id.ok ? { identity: id.identity } : {}),
      leader: this.kube.isLeader(),
      ...(gossip === undefined ? {} : { gossip }),
      incompatiblePeers: gossip?.incompatiblePeers ?? [],
      withdrawnOrigins: this.#withdrawn === '' ? [] : this.#withdrawn.split(','),
      heldKeys: [...this.kube.heldKeys()].map(([key, waitingFor]) => ({ key, waitingFor })),
      refusedKeys: this.kube.refusedKeys(),
      namespaceMissing: this.kube
        .namespaceMissing()
        .map((m) => ({ key: `${m.namespace}/${m.name}`, exporters: m.exporters })),
      unimportableRecords: this.kube.unimportableRecords().map((r) => ({
        origin: r.origin,
        key: `${r.namespace}/${r.name}`,
        reason: r.problem.reason,
        message: r.problem.message,
      })),
    };
  }

  // ---- membership: start, stop or restart the gossip node as identity, leadership and bootstrap dictate

  #membershipChanged(): void {
    this.#membership = this.#membership
      .then(() => this.#reconcileMembership())
      .catch((err: unknown) => {
        this.#log.error({ err }, 'joining the ClusterSet failed; retrying in 5 s');
        setTimeout(() => this.#membershipChanged(), 5000).unref();
      });
  }

  async #reconcileMembership(): Promise<void> {
    if (this.#stopped) return;
    const id = this.kube.identity();
    const wanted = id.ok && this.kube.isLeader() ? id.identity : undefined;
    const bootstrap = [...(this.#init.bootstrap ?? []), ...this.#usableBootstrap(this.kube.bootstrapPeers())];
    const bootstrapKey = bootstrap.join(',');
    const announce = this.#announce();
    const announceKey = announce?.join(',') ?? '';
    const running = this.#running;
    if (running !== undefined) {
      const same =
        wanted !== undefined &&
        wanted.clusterId === running.identity.clusterId &&
        wanted.clusterSetName === running.identity.clusterSetName;
      if (same && running.bootstrap === bootstrapKey && running.announce === announceKey) return;
      // A change of cluster id (or ClusterSet) is a leave followed by a join; so is the removal of the ClusterSet
      // ClusterProperty (KEP-2149: it exists only while the cluster is a member) — a leave without a join.
      const moved = wanted !== undefined && !same;
      const removed = !id.ok && id.reason === 'ClusterSetMissing' && this.kube.isLeader();
      if (moved) this.#log.warn({ from: running.identity, to: wanted }, 'cluster identity changed: leave + join');
      if (removed) this.#log.warn({ ...running.identity }, `${id.message}: leaving the ClusterSet`);
      await this.#stopGossip(moved || removed);
      if (removed) {
        await this.kube.withdrawImports();
        await this.kube.recordLeave(running.identity.clusterSetName, this.#leaveDelivered);
      }
    }
    if (wanted === undefined) return;
    if (this.#state?.clusterId !== wanted.clusterId)
      this.#state = { clusterId: wanted.clusterId, state: new ClusterSetState() };
    const gossipRegistry = new Registry();
    const gossip = createGossipNode({
      clusterId: wanted.clusterId,
      clusterSetName: wanted.clusterSetName,
      privateKey: this.#init.privateKey,
      ...(this.#init.previousKey === undefined ? {} : { previousKey: this.#init.previousKey }),
      psk: this.#init.psk,
      state: this.#state.state,
      bootstrap,
      endpointTtlMs: this.#ttlMs,
      logger: this.#log,
      metricsRegistry: gossipRegistry,
      ...(this.#init.listen === undefined ? {} : { listen: this.#init.listen }),
      ...(announce === undefined ? {} : { announce }),
      ...(this.#init.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: this.#init.heartbeatIntervalMs }),
      ...(this.#init.syncIntervalMs === undefined ? {} : { syncIntervalMs: this.#init.syncIntervalMs }),
      ...(this.#init.originHorizonMs === undefined ? {} : { originHorizonMs: this.#init.originHorizonMs }),
      ...(this.#init.tombstoneHorizonMs === undefined ? {} : { tombstoneHorizonMs: this.#init.tombstoneHorizonMs }),
      ...(this.#init.buildInfo === undefined ? {} : { softwareVersion: this.#init.buildInfo.version }),
    });
    // The state journals the keys every change touched (ClusterSetState.takeChangedKeys): a pass reads them there.
    gossip.on('state:change', () => this.#scheduleResolve(false));
    gossip.on('settled', () => {
      this.#settledEvents++;
      this.#scheduleResolve(false);
    });
    gossip.on('heartbeat', () => this.#checkLiveness());
    await gossip.start();
    this.#gossip = gossip;
    this.#gossipRegistry = gossipRegistry;
    this.#running = { identity: wanted, bootstrap: bootstrapKey, announce: announceKey };
    // The gossip Service may have changed while the gossip node started: announce what it gives now.
    if ((this.#announce()?.join(',') ?? '') !== announceKey) this.#membershipChanged();
    this.#publishLocal(undefined);
    this.#scheduleResolve(true);
    const status = gossip.status();
    await this.kube.publishPeer(formatPeerProperty(wanted.clusterId, status.peerId, status.addrs));
    this.#log.info({ ...wanted, peerId: status.peerId, addrs: status.addrs }, 'joined the ClusterSet');
  }

  /** Whether the last leave reached a peer (see GossipNode.leave). */
  #leaveDelivered = false;

  #haltGossip(): void {
    const gossip = this.#gossip;
    if (gossip === undefined) return;
    this.#gossip = undefined;
    this.#running = undefined;
    gossip.stop().catch((err: unknown) => this.#log.warn({ err }, 'stopping gossip failed'));
  }

  async #stopGossip(leave: boolean): Promise<void> {
    const gossip = this.#gossip;
    this.#gossip = undefined;
    this.#running = undefined;
    if (gossip === undefined) return;
    if (leave) {
      this.#leaveDelivered = await gossip.leave();
      await sleep(500); // lets the last messages reach the mesh
    }
    await gossip.stop();
  }

  // ---- data path

  #localChanged(detail: LocalChangeDetail): void {
    this.#publishLocal(detail.keys);
    if (detail.keys === undefined) this.#resolveAll = true;
    else for (const k of detail.keys) this.#dirtyKeys.add(k);
    for (const ns of detail.namespaces) this.#dirtyNamespaces.add(ns);
    this.#scheduleResolve(false);
    // The gossip Service is a local Service: a new LoadBalancer ingress changes what this node announces.
    const running = this.#running;
    if (running !== undefined && this.#init.announceFromService !== undefined) {
      if ((this.#announce()?.join(',') ?? '') !== running.announce) this.#membershipChanged();
    }
  }

  /**
   * The bootstrap ClusterProperty's entries that parse. A bad entry (a typo, a missing `/p2p/<PeerId>`) is skipped
   * with an error naming it, never fatal: the other entries still join the ClusterSet.
   */
  #usableBootstrap(entries: readonly string[]): string[] {
    const usable: string[] = [];
    const bad: string[] = [];
    for (const entry of entries) {
      try {
        parseBootstrapEntry(entry);
        usable.push(entry);
      } catch (err) {
        bad.push(`"${entry}": ${(err as Error).message}`);
      }
    }
    if (bad.join('\n') !== this.#badBootstrap.join('\n')) {
      for (const b of bad)
        this.#log.error(`skipping bootstrap entry ${b} (ClusterProperty bootstrap.mcs-gossip.x-k8s.io)`);
    }
    this.#badBootstrap = bad;
    this.#badBootstrapGauge.set(bad.length);
    return usable;
  }

  /**
   * What this node announces: the `announce` flags; else, with `announceFromService`, the gossip Service's
   * LoadBalancer ingress (IP or hostname at the Service port) or, for a NodePort Service, the node's IP at the node
   * port; undefined (the listen addresses) when neither gives an address yet.
   */
  #announce(): readonly string[] | undefined {
    if (this.#init.announce !== undefined && this.#init.announce.length > 0) return this.#init.announce;
    const from = this.#init.announceFromService;
    if (from === undefined) return undefined;
    const svc = this.kube.servicesCache.get(from.name, from.namespace);
    const where = `Service ${from.namespace}/${from.name}`;
    const derived =
      svc === undefined ? { addrs: [], problem: `${where} not found` } : announceOf(svc, this.#init.nodeIp);
    const problem =
      derived.addrs.length > 0
        ? undefined
        : `announcing the listen addresses: ${derived.problem ?? `${where} gives no address`}`;
    if (problem !== this.#announceProblem) {
      if (problem !== undefined) this.#log.warn(problem);
      else this.#log.info({ announce: derived.addrs }, `announcing the addresses of ${where}`);
    }
    this.#announceProblem = problem;
    return derived.addrs.length > 0 ? derived.addrs : undefined;
  }

  /** Publishes this cluster's exports: of `keys` only (those an event touched), or all. */
  #publishLocal(keys: readonly ServiceKey[] | undefined): void {
    const gossip = this.#gossip;
    if (gossip === undefined) return;
    const local = this.kube.localExportsByKey();
    if (local === undefined) return;
    if (keys === undefined) gossip.setLocalExports(local.desired);
    else if (keys.length > 0) gossip.updateLocalExports(local.desired, keys);
  }

  #withdrawnOrigins(): string[] {
    const gossip = this.#gossip;
    const running = this.#running;
    if (gossip === undefined || running === undefined) return [];
    const status = gossip.status();
    this.#metrics.observe(status);
    return status.origins.filter((o) => !o.alive && o.origin !== running.identity.clusterId).map((o) => o.origin);
  }

  #checkLiveness(): void {
    const withdrawn = this.#withdrawnOrigins().sort().join(',');
    if (withdrawn === this.#withdrawn) return;
    this.#log.info({ withdrawn: withdrawn === '' ? [] : withdrawn.split(',') }, 'endpoint liveness changed');
    // The keys of the origins withdrawn or restored are the ones whose slices and Ready condition change.
    const before = new Set(this.#withdrawn === '' ? [] : this.#withdrawn.split(','));
    const after = new Set(withdrawn === '' ? [] : withdrawn.split(','));
    const state = this.#state?.state;
    for (const origin of [...before, ...after]) {
      if (before.has(origin) === after.has(origin) || state === undefined) continue;
      for (const r of state.recordsOf(origin)) this.#dirtyKeys.add(`${r.namespace}/${r.name}`);
    }
    this.#withdrawn = withdrawn;
    this.#scheduleResolve(false);
  }

  /** Asks for a pass: of the keys marked since the last one, or (`all`) of every key. */
  #scheduleResolve(all: boolean): void {
    if (this.#stopped) return;
    if (all) this.#resolveAll = true;
    this.#resolver.schedule();
  }

  #resolveAndApply(): void {
    const running = this.#running;
    const gossip = this.#gossip;
    const state = this.#state?.state;
    if (gossip === undefined || running === undefined || state === undefined) return;
    // Local changes not yet published are published first: resolution must not see an export before its record.
    this.kube.flushLocalChange();
    const local = this.kube.localExportsByKey();
    if (local === undefined) return;
    const localCluster = running.identity.clusterId;
    const withdrawnOrigins = this.#withdrawn === '' ? [] : this.#withdrawn.split(',');
    // Until an origin is settled, what we hold of it may be partial: keys whose imports name it stay as they are.
    const gate = {
      localCluster,
      isSettled: (origin: string) => gossip.isSettled(origin),
      revision: this.#settledEvents,
    };
    const changed = state.takeChangedKeys();
    if (!this.#resolveAll) {
      const keys = new Set<ServiceKey>(changed);
      for (const k of this.#dirtyKeys) keys.add(k);
      if (this.#dirtyNamespaces.size > 0) {
        // A namespace appeared or went: every key in it, exported by anyone or by this cluster.
        for (const k of [...state.keys(), ...local.byKey.keys()])
          if (this.#dirtyNamespaces.has(k.slice(0, k.indexOf('/')))) keys.add(k);
      }
      this.#dirtyKeys.clear();
      this.#dirtyNamespaces.clear();
      const outcomes = resolveKeys(state, keys, {
        localCluster,
        namespaces: new Set(this.kube.namespaces()),
        withdrawnOrigins,
        localExports: local.byKey,
      });
      if (this.kube.applyKeys(outcomes, gate)) {
        this.#metrics.resolvedKeys(outcomes, local.byKey.values());
        return;
      }
      // The adapter has no whole state to update (writing restarted): give it one.
    }
    this.#resolveAll = false;
    this.#dirtyKeys.clear();
    this.#dirtyNamespaces.clear();
    const sorted = this.kube.localExports()!;
    const resolution = resolve(state, {
      localCluster,
      namespaces: this.kube.namespaces(),
      withdrawnOrigins,
      localExports: sorted.exports,
    });
    this.#metrics.resolved(resolution, sorted.exports);
    this.kube.apply(resolution, gate);
  }
}

/**
 * The multiaddrs other clusters reach a node at through its gossip Service: each LoadBalancer ingress (`/ip4|ip6/<ip>`
 * or `/dns/<hostname>`) at the Service port, or for a NodePort Service (or a LoadBalancer still without ingress)
 * `nodeIp` at the node port.
 */
export function announceOf(svc: k8s.V1Service, nodeIp: string | undefined): { addrs: string[]; problem?: string } {
  const port = svc.spec?.ports?.find((p) => p.name === 'gossip') ?? svc.spec?.ports?.[0];
  if (port === undefined) return { addrs: [], problem: 'the gossip Service has no port' };
  const ip = (a: string) => `/${a.includes(':') ? 'ip6' : 'ip4'}/${a}`;
  const type = svc.spec?.type ?? 'ClusterIP';
  const addrs: string[] = [];
  if (type === 'LoadBalancer') {
    for (const ingress of svc.status?.loadBalancer?.ingress ?? []) {
      if (ingress.ip !== undefined && ingress.ip !== '') addrs.push(`${ip(ingress.ip)}/tcp/${port.port}`);
      else if (ingress.hostname !== undefined && ingress.hostname !== '')
        addrs.push(`/dns/${ingress.hostname}/tcp/${port.port}`);
    }
    // Sorted: a controller that lists the same ingress in another order changes nothing.
    if (addrs.length > 0) return { addrs: addrs.sort() };
  }
  if (
    (type === 'NodePort' || type === 'LoadBalancer') &&
    port.nodePort !== undefined &&
    nodeIp !== undefined &&
    nodeIp !== ''
  )
    return { addrs: [`${ip(nodeIp)}/tcp/${port.nodePort}`] };
  if (type === 'LoadBalancer') return { addrs: [], problem: 'the gossip LoadBalancer has no ingress address yet' };
  if (type === 'NodePort') return { addrs: [], problem: 'a NodePort gossip Service needs the node IP (--node-ip)' };
  return { addrs: [], problem: `a ${type} gossip Service has no address other clusters reach; set --announce` };
}
