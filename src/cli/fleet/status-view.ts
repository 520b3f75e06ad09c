/** The `status` document built from what each context gave (pure), whether the contexts agree, and its table. */
import {
  clusterOf,
  conditionOf,
  formatReadError,
  noNodeReason,
  readErrorOf,
  type ContextReport,
  type ExportView,
  type ImportView,
  type IncompatiblePeer,
  type ReadError,
} from './model.js';
import { table } from './table.js';

export interface ClusterRow {
  readonly context: string;
  readonly clusterId: string;
  readonly clusterSet?: string;
  readonly version?: string;
  readonly peerId?: string;
  readonly leader?: boolean;
  readonly reachable: boolean;
  readonly ready?: boolean;
  /** The readiness reason, or why the node could not be reached. */
  readonly reason: string;
  readonly pod?: string;
  /** Every node pod of the context, with whether it answered (several when replicas > 1). */
  readonly pods: readonly { readonly pod: string; readonly reachable: boolean; readonly leader?: boolean }[];
  readonly known: readonly KnownCluster[];
  readonly incompatiblePeers: readonly IncompatiblePeer[];
  /** Node pods found but not used (not Running, being deleted, no port `metrics`), `namespace/name (why)`. */
  readonly skippedPods?: readonly string[];
  /** What could not be read in this context (e.g. a forbidden list): its data is unknown, not empty. */
  readonly readErrors: readonly Pick<ReadError, 'resource' | 'message'>[];
}

export interface KnownCluster {
  readonly clusterId: string;
  readonly alive: boolean;
  readonly left?: boolean;
  readonly heartbeatAgeMs?: number;
  readonly version?: string;
  readonly records?: number;
}

export interface ServiceInCluster {
  readonly context: string;
  readonly clusterId: string;
  readonly namespaceExists?: boolean;
  readonly export?: { readonly conditions: ExportView['conditions'] };
  readonly import?: Omit<ImportView, 'namespace' | 'name'>;
  /** The ServiceExports / ServiceImports of this context could not be listed: no export or import is unknown. */
  readonly exportsUnreadable?: true;
  readonly importsUnreadable?: true;
}

export interface ServiceRow {
  readonly namespace: string;
  readonly name: string;
  readonly clusters: readonly ServiceInCluster[];
  readonly conflicts: readonly { readonly clusterId: string; readonly reason: string; readonly message: string }[];
}

export interface StatusDocument {
  readonly agreed: boolean;
  /** Why the contexts do not agree (empty when they do). */
  readonly problems: readonly string[];
  readonly clusters: readonly ClusterRow[];
  readonly services: readonly ServiceRow[];
}

function clusterRow(r: ContextReport): ClusterRow {
  const s = r.node?.status;
  const self = clusterOf(r);
  const reason =
    r.apiError !== undefined
      ? `API server: ${r.apiError}`
      : r.node === undefined
        ? noNodeReason(r)
        : (r.node.error ?? s?.readiness.reason ?? '');
  const known: KnownCluster[] = (s?.gossip?.origins ?? []).map((o) => ({
    clusterId: o.origin,
    alive: o.alive || o.origin === self,
    ...(o.left === true ? { left: true } : {}),
    ...(o.heartbeatAgeMs === undefined ? {} : { heartbeatAgeMs: o.heartbeatAgeMs }),
    ...(o.version === undefined
      ? o.origin === self && s?.version !== undefined
        ? { version: s.version }
        : {}
      : { version: o.version }),
    ...(o.records === undefined ? {} : { records: o.records }),
  }));
  known.sort((a, b) => a.clusterId.localeCompare(b.clusterId));
  const clusterSet = r.clusterSetName ?? s?.identity?.clusterSetName;
  const peerId = s?.gossip?.peerId;
  return {
    context: r.context,
    clusterId: self,
    ...(clusterSet === undefined ? {} : { clusterSet }),
    ...(s?.version === undefined ? {} : { version: s.version }),
    ...(peerId === undefined || peerId === '' ? {} : { peerId }),
    ...(s?.leader === undefined ? {} : { leader: s.leader }),
    reachable: s !== undefined,
    ...(s === undefined ? {} : { ready: s.readiness.ready }),
    reason,
    ...(r.node === undefined ? {} : { pod: `${r.node.namespace}/${r.node.pod}` }),
    pods: r.pods.map((p) => ({
      pod: `${p.namespace}/${p.pod}`,
      reachable: p.status !== undefined,
      ...(p.status?.leader === undefined ? {} : { leader: p.status.leader }),
    })),
    known,
    incompatiblePeers: s?.incompatiblePeers ?? [],
    ...(r.skippedPods === undefined || r.skippedPods.length === 0 ? {} : { skippedPods: r.skippedPods }),
    // An API server that answered nothing is said once, in the reason.
    readErrors: r.apiError !== undefined ? [] : r.readErrors.map((e) => ({ resource: e.resource, message: e.message })),
  };
}

function serviceRows(reports: readonly ContextReport[]): ServiceRow[] {
  const keys = new Map<string, { namespace: string; name: string }>();
  for (const r of reports) for (const o of [...r.exports, ...r.imports]) keys.set(`${o.namespace}/${o.name}`, o);
  return [...keys.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, { namespace, name }]) => {
      const clusters: ServiceInCluster[] = reports.map((r) => {
        const ex = r.exports.find((e) => e.namespace === namespace && e.name === name);
        const im = r.imports.find((i) => i.namespace === namespace && i.name === name);
        return {
          context: r.context,
          clusterId: clusterOf(r),
          ...(r.namespaces === undefined ? {} : { namespaceExists: r.namespaces.includes(namespace) }),
          ...(readErrorOf(r, 'serviceexports') === undefined ? {} : { exportsUnreadable: true as const }),
          ...(readErrorOf(r, 'serviceimports') === undefined ? {} : { importsUnreadable: true as const }),
          ...(ex === undefined ? {} : { export: { conditions: ex.conditions } }),
          ...(im === undefined
            ? {}
            : {
                import: {
                  type: im.type,
                  ips: im.ips,
                  ports: im.ports,
                  clusters: im.clusters,
                  conditions: im.conditions,
                },
              }),
        };
      });
      const conflicts = clusters.flatMap((c) => {
        const cond = c.export === undefined ? undefined : conditionOf(c.export.conditions, 'Conflict');
        return cond?.status === 'True'
          ? [{ clusterId: c.clusterId, reason: cond.reason ?? '', message: cond.message ?? '' }]
          : [];
      });
      return { namespace, name, clusters, conflicts };
    });
}

/**
 * Why the contexts do not agree: a read that failed (a forbidden list: what it would have shown is unknown); a node
 * unreachable or not ready; a node whose alive clusters are not exactly the contexts' cluster ids; an exported
 * service (an export not Valid=False) whose ServiceImport is missing, or differs in type, ports or source clusters,
 * in a context that has its namespace.
 */
export function agreementProblems(reports: readonly ContextReport[]): string[] {
  const problems: string[] = [];
  const ids = [...new Set(reports.map(clusterOf))].sort();
  const aliveSets = new Map<string, string[]>();
  for (const r of reports) {
    const id = clusterOf(r);
    const s = r.node?.status;
    if (r.apiError !== undefined) {
      problems.push(`${id}: API server unreachable (${r.apiError})`);
      continue;
    }
    for (const e of r.readErrors) if (e.what !== 'pods') problems.push(`${id}: ${formatReadError(e)}`);
    if (r.node === undefined) {
      problems.push(`${id}: ${noNodeReason(r)}`);
      continue;
    }
    if (s === undefined) {
      problems.push(`${id}: node ${r.node.namespace}/${r.node.pod} ${r.node.error ?? 'unreachable'}`);
      continue;
    }
    if (!s.readiness.ready) problems.push(`${id}: node not ready (${s.readiness.reason})`);
    const alive = new Set((s.gossip?.origins ?? []).filter((o) => o.alive && o.left !== true).map((o) => o.origin));
    alive.add(id);
    const missing = ids.filter((x) => !alive.has(x));
    if (missing.length > 0) problems.push(`${id}: sees ${missing.join(', ')} not alive`);
    const key = [...alive].sort().join(', ');
    aliveSets.set(key, [...(aliveSets.get(key) ?? []), id]);
  }
  // Clusters beyond the contexts may be alive too (a subset of the ClusterSet was given), but alike everywhere.
  if (aliveSets.size > 1)
    problems.push(
      `the nodes see different clusters alive: ${[...aliveSets].map(([set, by]) => `${by.join(', ')}: ${set}`).join('; ')}`,
    );
  for (const svc of serviceRows(reports)) {
    const exported = svc.clusters.some(
      (c) => c.export !== undefined && conditionOf(c.export.conditions, 'Valid')?.status !== 'False',
    );
    if (!exported) continue;
    const shapes = new Map<string, string[]>();
    for (const c of svc.clusters) {
      if (c.namespaceExists === false || c.importsUnreadable === true) continue;
      if (c.import === undefined) {
        problems.push(`${c.clusterId}: no ServiceImport ${svc.namespace}/${svc.name}`);
        continue;
      }
      const shape = `${c.import.type} [${c.import.ports.join(' ')}] from ${c.import.clusters.join(',')}`;
      shapes.set(shape, [...(shapes.get(shape) ?? []), c.clusterId]);
    }
    if (shapes.size > 1)
      problems.push(
        `ServiceImport ${svc.namespace}/${svc.name} differs: ${[...shapes].map(([s, cs]) => `${cs.join(',')}: ${s}`).join('; ')}`,
      );
  }
  return problems;
}

export function statusDocument(reports: readonly ContextReport[]): StatusDocument {
  const problems = agreementProblems(reports);
  return {
    agreed: problems.length === 0,
    problems,
    clusters: reports.map(clusterRow),
    services: serviceRows(reports),
  };
}

/** A duration as kubectl prints ages: 850ms, 12s, 3m4s, 2h5m. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 === 0 ? '' : `${s % 60}s`}`;
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 === 0 ? '' : `${m % 60}m`}`;
}

/** A PeerId shortened as libp2p prints it: 12D3KooW…last6. */
export function shortPeerId(id: string | undefined): string {
  if (id === undefined || id === '') return '-';
  return id.length <= 16 ? id : `${id.slice(0, 8)}…${id.slice(-6)}`;
}

const yesNo = (b: boolean | undefined) => (b === undefined ? '-' : b ? 'yes' : 'no');
const dash = (s: string | undefined) => (s === undefined || s === '' ? '-' : s);

/** The tables `status` prints by default. */
export function renderStatus(doc: StatusDocument): string {
  const out: string[] = [];
  out.push(
    table([
      ['CONTEXT', 'CLUSTER', 'CLUSTERSET', 'VERSION', 'PEERID', 'LEADER', 'READY', 'REASON'],
      ...doc.clusters.map((c) => [
        c.context,
        c.clusterId,
        dash(c.clusterSet),
        dash(c.version),
        shortPeerId(c.peerId),
        yesNo(c.leader),
        !c.reachable ? 'Unreachable' : c.ready === true ? 'True' : 'False',
        c.reason,
      ]),
    ]),
  );
  // Under the table: what could not be read, so an empty table below is not taken for "nothing there".
  for (const c of doc.clusters)
    for (const e of c.readErrors) out.push(`${c.context}: ${e.resource} unreadable: ${e.message}`);
  const known = doc.clusters.flatMap((c) =>
    c.known.map((k) => [
      c.clusterId,
      k.clusterId,
      k.left === true ? 'left' : k.alive ? 'yes' : 'no',
      k.clusterId === c.clusterId ? '-' : formatAge(k.heartbeatAgeMs),
      dash(k.version),
      k.records === undefined ? '-' : String(k.records),
    ]),
  );
  if (known.length > 0) {
    out.push('', 'CLUSTERS AS EACH NODE SEES THEM');
    out.push(table([['SEEN BY', 'CLUSTER', 'ALIVE', 'HEARTBEAT', 'VERSION', 'RECORDS'], ...known]));
  }
  const incompatible = doc.clusters.flatMap((c) =>
    c.incompatiblePeers.map((p) => [
      c.clusterId,
      dash(p.clusterId),
      shortPeerId(p.peerId),
      dash(p.version),
      p.reason,
      dash(p.message),
    ]),
  );
  if (incompatible.length > 0) {
    out.push('', 'INCOMPATIBLE PEERS');
    out.push(table([['SEEN BY', 'CLUSTER', 'PEERID', 'VERSION', 'REASON', 'MESSAGE'], ...incompatible]));
  }
  if (doc.services.length > 0) {
    const cond = (c: ServiceInCluster, type: string) =>
      c.export === undefined ? '-' : (conditionOf(c.export.conditions, type)?.status ?? '?');
    out.push('', 'SERVICES');
    out.push(
      table([
        ['SERVICE', 'CLUSTER', 'EXPORTED', 'VALID', 'READY', 'CONFLICT', 'IMPORT', 'IPS', 'PORTS', 'SOURCES'],
        ...doc.services.flatMap((s) =>
          s.clusters.map((c) => [
            `${s.namespace}/${s.name}`,
            c.clusterId,
            c.export !== undefined
              ? 'yes'
              : c.exportsUnreadable === true
                ? 'unreadable'
                : c.namespaceExists === false
                  ? 'no (namespace missing)'
                  : 'no',
            cond(c, 'Valid'),
            cond(c, 'Ready'),
            cond(c, 'Conflict'),
            c.import === undefined && c.importsUnreadable === true ? 'unreadable' : dash(c.import?.type),
            c.import === undefined || c.import.ips.length === 0 ? '-' : c.import.ips.join(','),
            c.import === undefined || c.import.ports.length === 0 ? '-' : c.import.ports.join(','),
            c.import === undefined || c.import.clusters.length === 0 ? '-' : c.import.clusters.join(','),
          ]),
        ),
      ]),
    );
  }
  const conflicts = doc.services.flatMap((s) =>
    s.conflicts.map((c) => [`${s.namespace}/${s.name}`, c.clusterId, dash(c.reason), c.message]),
  );
  if (conflicts.length > 0) {
    out.push('', 'CONFLICTS');
    out.push(table([['SERVICE', 'CLUSTER', 'REASON', 'MESSAGE'], ...conflicts]));
  }
  out.push('');
  if (doc.agreed) out.push(`All ${doc.clusters.length} contexts agree.`);
  else out.push('Not agreed:', ...doc.problems.map((p) => `  ${p}`));
  return out.join('\n');
}
