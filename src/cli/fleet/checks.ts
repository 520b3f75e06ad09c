/**
 * The checks of `mcs-gossip diagnose`, pure: each takes what was read of every context and gives PASS, WARN or FAIL
 * lines with the finding and the fix.
 */
import { isIP } from 'node:net';
import { compatibility, UNANNOUNCED_VERSION } from '../../gossip/versioning.js';
import { validateIdentity } from '../../kube/identity.js';
import {
  clusterOf,
  conditionOf,
  formatReadError,
  noNodeReason,
  readErrorOf,
  type ContextReport,
  type ReadTarget,
} from './model.js';

export type Level = 'PASS' | 'WARN' | 'FAIL';

export interface CheckResult {
  readonly level: Level;
  readonly check: string;
  readonly finding: string;
  /** What to do about it (empty for a PASS). */
  readonly fix: string;
}

/** What `diagnose` reads of a context beyond what `status` reads. */
export interface DiagnoseContext {
  readonly report: ContextReport;
  /** `namespace/name` of every Service (undefined when they could not be listed, see the error). */
  readonly services?: readonly string[];
  readonly servicesError?: string;
  /** The Corefile of ConfigMap kube-system/coredns; null when the ConfigMap does not exist; undefined: unreadable. */
  readonly corefile?: string | null;
  readonly corefileError?: string;
  /** Whether system:serviceaccount:kube-system:coredns may list and watch ServiceImports (SubjectAccessReview). */
  readonly corednsAccess?: { readonly list: boolean; readonly watch: boolean };
  readonly corednsAccessError?: string;
  /** spec.podCIDRs of the Nodes (undefined when they could not be listed, see the error). */
  readonly podCidrs?: readonly string[];
  readonly nodesError?: string;
  /** spec.cidrs of the ServiceCIDR objects (undefined: the API is not served or unreadable, see the error). */
  readonly serviceCidrs?: readonly string[];
  readonly serviceCidrError?: string;
}

const pass = (check: string, finding: string): CheckResult => ({ level: 'PASS', check, finding, fix: '' });
const warn = (check: string, finding: string, fix: string): CheckResult => ({ level: 'WARN', check, finding, fix });
const fail = (check: string, finding: string, fix: string): CheckResult => ({ level: 'FAIL', check, finding, fix });

const RANK: Record<Level, number> = { PASS: 0, WARN: 1, FAIL: 2 };

export function worstLevel(results: readonly CheckResult[]): Level {
  return results.reduce<Level>((w, r) => (RANK[r.level] > RANK[w] ? r.level : w), 'PASS');
}

/** `PASS|WARN|FAIL <check>: <finding> — <fix>` (no fix on a PASS). */
export function formatCheck(r: CheckResult): string {
  return `${r.level} ${r.check}: ${r.finding}${r.fix === '' ? '' : ` — ${r.fix}`}`;
}

/** The exit code of `diagnose`: 0 every check passed, 1 the worst is a warning, 3 something failed. */
export function exitCodeOf(results: readonly CheckResult[]): number {
  return { PASS: 0, WARN: 1, FAIL: 3 }[worstLevel(results)];
}

// ---- identity

export function checkIdentity(contexts: readonly ContextReport[]): CheckResult[] {
  const out: CheckResult[] = [];
  const ids = new Map<string, string[]>();
  const sets = new Map<string, string[]>();
  for (const r of contexts) {
    if (r.apiError !== undefined) {
      out.push(
        fail(
          'identity',
          `context ${r.context}: API server unreachable (${r.apiError})`,
          'check the kubeconfig and the network',
        ),
      );
      continue;
    }
    // An unreadable ClusterProperty is not a missing one: say which and why, and do not judge the identity.
    const unreadable = (['clusterid', 'clusterset'] as const)
      .map((w) => readErrorOf(r, w))
      .filter((e) => e !== undefined);
    if (unreadable.length > 0) {
      for (const e of unreadable)
        out.push(
          fail(
            'identity',
            `context ${r.context}: ${formatReadError(e)}`,
            'the CLI needs get on clusterproperties.about.k8s.io (docs/status.md, RBAC)',
          ),
        );
      continue;
    }
    const v = validateIdentity(r.clusterId, r.clusterSetName);
    if (!v.ok) {
      out.push(
        fail(
          'identity',
          `context ${r.context}: ${v.message}`,
          'create the ClusterProperties cluster.clusterset.k8s.io and clusterset.k8s.io (about.k8s.io) with DNS-label values (the Helm chart does: clusterProperties.*)',
        ),
      );
      continue;
    }
    ids.set(v.identity.clusterId, [...(ids.get(v.identity.clusterId) ?? []), r.context]);
    sets.set(v.identity.clusterSetName, [...(sets.get(v.identity.clusterSetName) ?? []), r.context]);
  }
  for (const [id, ctxs] of ids)
    if (ctxs.length > 1)
      out.push(
        fail(
          'identity',
          `cluster id ${id} is used by contexts ${ctxs.join(', ')}`,
          'give every cluster its own cluster.clusterset.k8s.io',
        ),
      );
  if (sets.size > 1)
    out.push(
      fail(
        'identity',
        `ClusterSet names differ: ${[...sets].map(([s, c]) => `${s} (${c.join(', ')})`).join(', ')}`,
        'set the same clusterset.k8s.io in every cluster of the ClusterSet',
      ),
    );
  if (out.length === 0)
    out.push(
      pass(
        'identity',
        `${[...ids.keys()].join(', ')} in ClusterSet ${[...sets.keys()].join(', ')}: ids valid and unique`,
      ),
    );
  return out;
}

// ---- node pod

export function checkNode(r: ContextReport): CheckResult {
  const id = clusterOf(r);
  if (r.apiError !== undefined)
    return fail('node', `${id}: API server unreachable (${r.apiError})`, 'check the kubeconfig and the network');
  const pods = readErrorOf(r, 'pods');
  if (pods !== undefined)
    return warn(
      'node',
      `${id}: cannot tell: ${formatReadError(pods)}`,
      'the CLI needs list pods (cluster-wide, or in the node namespace with -n NS) and get pods/proxy there (docs/status.md, RBAC)',
    );
  if (r.node === undefined)
    return fail(
      'node',
      `${id}: ${noNodeReason(r)}`,
      r.skippedPods !== undefined && r.skippedPods.length > 0
        ? `kubectl --context ${r.context} get pods -l app.kubernetes.io/name=mcs-gossip -A; see why the node pod is not Running`
        : 'install the Helm chart in this cluster, or name its namespace with -n; the CLI needs list pods and get pods/proxy',
    );
  const where = `${r.node.namespace}/${r.node.pod}`;
  if (r.node.status === undefined)
    return fail(
      'node',
      `${id}: node pod ${where} ${r.node.error ?? 'unreachable'}`,
      `kubectl --context ${r.context} -n ${r.node.namespace} logs ${r.node.pod}; check the pod is Running`,
    );
  const rd = r.node.status.readiness;
  if (!rd.ready)
    return fail('node', `${id}: node ${where} not ready: ${rd.reason}`, 'see the reason and the node logs');
  return pass('node', `${id}: node ${where} ready (${rd.reason})`);
}

// ---- peers

export function checkPeers(contexts: readonly ContextReport[]): CheckResult[] {
  const ids = contexts.map(clusterOf);
  const out: CheckResult[] = [];
  for (const r of contexts) {
    const id = clusterOf(r);
    const s = r.node?.status;
    if (s === undefined) {
      out.push(
        warn('peers', `${id}: cannot tell which peers its node sees (node unreachable)`, 'fix the node check first'),
      );
      continue;
    }
    const origins = s.gossip?.origins ?? [];
    const notAlive: string[] = [];
    for (const other of ids) {
      if (other === id) continue;
      const o = origins.find((x) => x.origin === other);
      if (o === undefined) notAlive.push(`${other} (never heard)`);
      else if (o.left === true) notAlive.push(`${other} (left the ClusterSet)`);
      else if (!o.alive) notAlive.push(`${other} (unheard for ${Math.round((o.heartbeatAgeMs ?? 0) / 1000)}s)`);
    }
    const strangers = origins.filter((o) => o.alive && o.origin !== id && !ids.includes(o.origin)).map((o) => o.origin);
    if (notAlive.length > 0)
      out.push(
        fail(
          'peers',
          `${id} sees ${notAlive.join(', ')} not alive`,
          "check those clusters' nodes and that their gossip ports are reachable from this cluster",
        ),
      );
    else if (strangers.length > 0)
      out.push(
        warn(
          'peers',
          `${id} sees ${strangers.join(', ')} alive, not among the contexts given`,
          'add their contexts (or --all-contexts) to check them too',
        ),
      );
    else out.push(pass('peers', `${id} sees ${ids.filter((x) => x !== id).join(', ') || 'no other cluster'} alive`));
  }
  return out;
}

// ---- versions

interface ClusterVersion {
  readonly cluster: string;
  /** Undefined: announced none (a node before 0.2). */
  readonly version?: string;
  /** The wire versions it speaks, when its own node said (a remote cluster's is not known here). */
  readonly wire?: { readonly version: number; readonly min: number };
}

/** Why a and b cannot peer, from a's side then b's (versioning.ts `compatibility`); undefined when they can. */
function incompatibility(a: ClusterVersion, b: ClusterVersion): string | undefined {
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    // A wire range not known on either side is not checked (a remote cluster's is not reported).
    const range = x.wire === undefined ? undefined : { min: x.wire.min, max: x.wire.version };
    const wire = y.wire?.version ?? x.wire?.version ?? 0;
    const verdict = compatibility(
      x.version ?? UNANNOUNCED_VERSION,
      { ...(y.version === undefined ? {} : { software: y.version }), wire },
      range ?? { min: wire, max: wire },
    );
    if (!verdict.ok) return `${y.cluster} ${verdict.message.replace('this node', x.cluster)}`;
  }
  return undefined;
}

/**
 * The versions of the clusters: each node's own, and those the nodes hear announced by the other alive clusters
 * (a cluster that left, or is dead and only held, does not count). Pairs that cannot peer (another major, minors
 * more than one apart, or wire versions out of range; a development build, not semver, is checked by wire only)
 * FAIL, as does every peer a node refuses (its /status `incompatiblePeers`); mixed compatible versions WARN.
 */
export function checkVersions(contexts: readonly ContextReport[]): CheckResult[] {
  const versions = new Map<string, ClusterVersion>();
  for (const r of contexts) {
    const s = r.node?.status;
    if (s === undefined) continue;
    const cluster = clusterOf(r);
    // A node that reports no version is older than 0.2: it speaks wire 1.
    const wire = s.wire ?? (s.version === undefined ? { version: 1, min: 1 } : undefined);
    versions.set(cluster, {
      cluster,
      ...(s.version === undefined ? {} : { version: s.version }),
      ...(wire === undefined ? {} : { wire }),
    });
  }
  for (const r of contexts)
    for (const o of r.node?.status?.gossip?.origins ?? []) {
      if (!o.alive || o.left === true) continue;
      const known = versions.get(o.origin);
      if (known === undefined || (known.version === undefined && known.wire === undefined && o.version !== undefined))
        versions.set(o.origin, { cluster: o.origin, ...(o.version === undefined ? {} : { version: o.version }) });
    }
  const out: CheckResult[] = [];
  const fix =
    'upgrade one cluster at a time, one minor at a time (docs/upgrades.md): versions may differ by at most one minor';
  for (const r of contexts)
    for (const p of r.node?.status?.incompatiblePeers ?? [])
      out.push(
        fail(
          'versions',
          `${clusterOf(r)} refuses peer ${p.clusterId ?? p.peerId}${p.version === undefined ? '' : ` (version ${p.version})`}: ${p.message ?? p.reason}`,
          fix,
        ),
      );
  if (versions.size === 0) {
    out.push(warn('versions', 'no node answered: versions unknown', 'fix the node check first'));
    return out;
  }
  const all = [...versions.values()].sort((a, b) => a.cluster.localeCompare(b.cluster));
  const shown = all.map((c) => `${c.cluster} ${c.version ?? '<0.2'}`).join(', ');
  const clashes: string[] = [];
  for (let i = 0; i < all.length; i++)
    for (let j = i + 1; j < all.length; j++) {
      const why = incompatibility(all[i]!, all[j]!);
      if (why !== undefined) clashes.push(why);
    }
  if (clashes.length > 0) out.push(fail('versions', `incompatible versions: ${shown} (${clashes.join('; ')})`, fix));
  else if (new Set(all.map((c) => c.version)).size > 1)
    out.push(warn('versions', `mixed versions (compatible): ${shown}`, 'finish the upgrade of the remaining clusters'));
  else if (out.length === 0)
    out.push(pass('versions', `every cluster runs ${all[0]?.version ?? 'a version older than 0.2'}`));
  return out;
}

// ---- reads

/**
 * One WARN per list of a context that failed (ServiceExports, ServiceImports, Namespaces): the checks that need it
 * skip that context rather than take it for empty. (Unreadable node pods are the node check's, unreadable
 * ClusterProperties the identity check's.)
 */
export function checkReads(contexts: readonly ContextReport[]): CheckResult[] {
  const needs: Partial<Record<ReadTarget, string>> = {
    serviceexports: 'list serviceexports.multicluster.x-k8s.io',
    serviceimports: 'list serviceimports.multicluster.x-k8s.io',
    namespaces: 'list namespaces',
  };
  const out: CheckResult[] = [];
  for (const r of contexts) {
    if (r.apiError !== undefined) continue;
    for (const e of r.readErrors) {
      const need = needs[e.what];
      if (need === undefined) continue;
      out.push(
        warn(
          'access',
          `${clusterOf(r)}: ${formatReadError(e)}: not checked there`,
          `the CLI needs ${need} (docs/status.md, RBAC)`,
        ),
      );
    }
  }
  return out;
}

/** The contexts where `what` could not be read, as `(… unreadable in a, b)`, or ''. */
function unreadableIn(contexts: readonly ContextReport[], what: ReadTarget, resource: string): string {
  const ids = contexts.filter((r) => readErrorOf(r, what) !== undefined).map(clusterOf);
  return ids.length === 0 ? '' : ` (${resource} unreadable in ${ids.join(', ')}: not checked there)`;
}

// ---- exports

/** ServiceExports without a Service of the same name and namespace. */
export function checkExportsHaveServices(contexts: readonly DiagnoseContext[]): CheckResult[] {
  const out: CheckResult[] = [];
  for (const c of contexts) {
    const id = clusterOf(c.report);
    if (c.report.apiError !== undefined || readErrorOf(c.report, 'serviceexports') !== undefined) continue;
    if (c.services === undefined) {
      if (c.report.exports.length > 0)
        out.push(
          warn(
            'export-service',
            `${id}: Services unreadable: ${c.servicesError ?? 'unknown error'}: not checked there`,
            'the CLI needs list services',
          ),
        );
      continue;
    }
    for (const e of c.report.exports)
      if (!c.services.includes(`${e.namespace}/${e.name}`))
        out.push(
          fail(
            'export-service',
            `${id}: ServiceExport ${e.namespace}/${e.name} has no Service`,
            `create Service ${e.namespace}/${e.name} in ${id}, or delete the ServiceExport`,
          ),
        );
  }
  const checked = contexts.filter(
    (c) => c.services !== undefined && readErrorOf(c.report, 'serviceexports') === undefined,
  ).length;
  if (out.length === 0 && checked > 0)
    out.push(
      pass(
        'export-service',
        `every ServiceExport has its Service${unreadableIn(
          contexts.map((c) => c.report),
          'serviceexports',
          'ServiceExports',
        )}`,
      ),
    );
  return out;
}

/** Namespaces with an export in some cluster and missing in another: no import is made there (namespace sameness). */
export function checkNamespaces(contexts: readonly ContextReport[]): CheckResult[] {
  const out: CheckResult[] = [];
  const exported = new Map<string, Set<string>>();
  for (const r of contexts)
    for (const e of r.exports) exported.set(e.namespace, (exported.get(e.namespace) ?? new Set()).add(clusterOf(r)));
  for (const [ns, from] of [...exported].sort(([a], [b]) => a.localeCompare(b)))
    for (const r of contexts) {
      if (r.namespaces === undefined || r.namespaces.includes(ns)) continue;
      const services = [
        ...new Set(contexts.flatMap((x) => x.exports.filter((e) => e.namespace === ns).map((e) => e.name))),
      ].sort();
      out.push(
        warn(
          'namespace',
          `${clusterOf(r)}: namespace ${ns} is missing, so ${services.map((s) => `${ns}/${s}`).join(', ')} (exported by ${[...from].sort().join(', ')}) is not imported there`,
          `kubectl --context ${r.context} create namespace ${ns} (if ${clusterOf(r)} should import it)`,
        ),
      );
    }
  const unknown =
    unreadableIn(contexts, 'serviceexports', 'ServiceExports') + unreadableIn(contexts, 'namespaces', 'Namespaces');
  if (
    out.length === 0 &&
    contexts.some((r) => readErrorOf(r, 'serviceexports') === undefined) &&
    contexts.some((r) => r.namespaces !== undefined)
  )
    out.push(pass('namespace', `every exported namespace exists in every cluster${unknown}`));
  return out;
}

export function checkConflicts(contexts: readonly ContextReport[]): CheckResult[] {
  const out: CheckResult[] = [];
  for (const r of contexts)
    for (const e of r.exports) {
      const c = conditionOf(e.conditions, 'Conflict');
      if (c?.status === 'True')
        out.push(
          warn(
            'conflict',
            `${clusterOf(r)}: ServiceExport ${e.namespace}/${e.name} in conflict${c.reason === undefined ? '' : ` (${c.reason})`}: ${c.message ?? ''}`.trimEnd(),
            `make the Service ${e.namespace}/${e.name} the same in every exporting cluster (ports, type, session affinity)`,
          ),
        );
    }
  if (out.length === 0 && contexts.some((r) => readErrorOf(r, 'serviceexports') === undefined))
    out.push(
      pass('conflict', `no ServiceExport in conflict${unreadableIn(contexts, 'serviceexports', 'ServiceExports')}`),
    );
  return out;
}

// ---- CoreDNS

export function checkCoreDns(c: DiagnoseContext): CheckResult[] {
  const id = clusterOf(c.report);
  const out: CheckResult[] = [];
  const fix =
    'add `multicluster clusterset.local` to the kubernetes block of the Corefile and `clusterset.local` to its zones (docs/dns.md)';
  if (c.corefile === undefined)
    out.push(
      warn(
        'coredns',
        `${id}: cannot read ConfigMap kube-system/coredns (${c.corefileError ?? 'unknown error'})`,
        'the CLI needs get configmaps in kube-system',
      ),
    );
  else if (c.corefile === null)
    out.push(
      warn(
        'coredns',
        `${id}: no ConfigMap kube-system/coredns: cannot check the Corefile`,
        `if CoreDNS runs elsewhere, check its Corefile: ${fix}`,
      ),
    );
  else if (!/^\s*multicluster\s+clusterset\.local\b/m.test(c.corefile))
    out.push(
      fail(
        'coredns',
        `${id}: the Corefile has no \`multicluster clusterset.local\`: clusterset.local names do not resolve`,
        fix,
      ),
    );
  else out.push(pass('coredns', `${id}: the Corefile serves clusterset.local (multicluster)`));
  const rbacFix =
    'bind system:serviceaccount:kube-system:coredns to a ClusterRole allowing list and watch on serviceimports.multicluster.x-k8s.io';
  if (c.corednsAccess === undefined)
    out.push(
      warn(
        'coredns-rbac',
        `${id}: cannot ask (${c.corednsAccessError ?? 'unknown error'})`,
        'the CLI needs create subjectaccessreviews',
      ),
    );
  else if (!c.corednsAccess.list || !c.corednsAccess.watch) {
    const missing = [c.corednsAccess.list ? '' : 'list', c.corednsAccess.watch ? '' : 'watch'].filter((x) => x !== '');
    const finding = `${id}: CoreDNS (kube-system/coredns) may not ${missing.join(' or ')} ServiceImports`;
    out.push(c.corefile === null ? warn('coredns-rbac', finding, rbacFix) : fail('coredns-rbac', finding, rbacFix));
  } else out.push(pass('coredns-rbac', `${id}: CoreDNS may list and watch ServiceImports`));
  return out;
}

// ---- CIDRs

export interface Cidr {
  readonly text: string;
  readonly family: 4 | 6;
  readonly start: bigint;
  readonly end: bigint;
}

function ipToBigInt(ip: string, family: 4 | 6): bigint {
  if (family === 4) return ip.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
  const [head = '', tail] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Parses `10.1.0.0/16` or `fd00::/108`; undefined when it is not a CIDR. */
export function parseCidr(text: string): Cidr | undefined {
  const [ip, bits] = text.trim().split('/');
  if (ip === undefined || bits === undefined || !/^\d+$/.test(bits)) return undefined;
  const kind = isIP(ip);
  if (kind !== 4 && kind !== 6) return undefined;
  const family = kind;
  const width = family === 4 ? 32 : 128;
  const prefix = Number(bits);
  if (prefix > width || (family === 6 && ip.includes('.'))) return undefined;
  const host = BigInt(width - prefix);
  const start = (ipToBigInt(ip, family) >> host) << host;
  return { text: text.trim(), family, start, end: start + (1n << host) - 1n };
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end;
}

/**
 * Pod and service CIDRs across clusters. Endpoints are pod IPs, so a pod CIDR of one cluster that overlaps a pod
 * CIDR of another, or a service CIDR of another (that cluster would route those endpoint addresses to its own
 * Services), FAILs. Service CIDRs overlapping each other are harmless here (an imported Service's IP is allocated
 * locally in each cluster) but confusing: a WARN. No PASS when some CIDRs could not be read: only the WARNs.
 */
export function checkCidrs(contexts: readonly DiagnoseContext[]): CheckResult[] {
  const out: CheckResult[] = [];
  const ranges: { cluster: string; kind: 'pod' | 'service'; cidr: Cidr }[] = [];
  let complete = true;
  for (const c of contexts) {
    const id = clusterOf(c.report);
    if (c.podCidrs === undefined) {
      complete = false;
      out.push(
        warn(
          'cidrs',
          `${id}: cannot list Nodes: pod CIDRs unknown${c.nodesError === undefined ? '' : ` (${c.nodesError})`}`,
          'the CLI needs list nodes',
        ),
      );
    } else if (c.podCidrs.length === 0) {
      complete = false;
      out.push(
        warn(
          'cidrs',
          `${id}: no Node has spec.podCIDRs (the CNI allocates pod IPs itself): pod CIDRs unknown`,
          "compare the clusters' pod IP pools by hand: they must not overlap",
        ),
      );
    }
    for (const t of c.podCidrs ?? []) {
      const cidr = parseCidr(t);
      if (cidr !== undefined) ranges.push({ cluster: id, kind: 'pod', cidr });
    }
    if (c.serviceCidrs === undefined) {
      complete = false;
      out.push(
        warn(
          'cidrs',
          `${id}: service CIDRs unknown (ServiceCIDR networking.k8s.io/v1: ${c.serviceCidrError ?? 'not served'})`,
          "compare the clusters' --service-cluster-ip-range with the other clusters' pod CIDRs by hand",
        ),
      );
    }
    for (const t of c.serviceCidrs ?? []) {
      const cidr = parseCidr(t);
      if (cidr !== undefined) ranges.push({ cluster: id, kind: 'service', cidr });
    }
  }
  const seen = new Set<string>();
  const serviceOverlaps: string[] = [];
  for (let i = 0; i < ranges.length; i++)
    for (let j = i + 1; j < ranges.length; j++) {
      let a = ranges[i]!;
      let b = ranges[j]!;
      if (a.cluster === b.cluster || !cidrsOverlap(a.cidr, b.cidr)) continue;
      const key = [`${a.cluster} ${a.kind} ${a.cidr.text}`, `${b.cluster} ${b.kind} ${b.cidr.text}`].sort().join(' / ');
      if (seen.has(key)) continue;
      seen.add(key);
      if (a.kind === 'service' && b.kind === 'service') {
        serviceOverlaps.push(`${a.cluster} ${a.cidr.text} / ${b.cluster} ${b.cidr.text}`);
        continue;
      }
      if (a.kind === 'pod' && b.kind === 'pod') {
        out.push(
          fail(
            'cidrs',
            `${a.cluster} pod CIDR ${a.cidr.text} overlaps ${b.cluster} pod CIDR ${b.cidr.text}: endpoints are pod IPs, so the same address is a pod in both clusters`,
            'give every cluster a pod CIDR of its own: imported endpoints must be routable and unambiguous',
          ),
        );
        continue;
      }
      // One pod, one service CIDR: the pod's cluster is remote for the service CIDR's cluster.
      if (a.kind === 'service') [a, b] = [b, a];
      out.push(
        fail(
          'cidrs',
          `${a.cluster} pod CIDR ${a.cidr.text} overlaps ${b.cluster} service CIDR ${b.cidr.text}: in ${b.cluster}, endpoints of ${a.cluster} at those addresses are taken for its own Services`,
          `give ${a.cluster} a pod CIDR outside every other cluster's service CIDR (or move ${b.cluster}'s service CIDR)`,
        ),
      );
    }
  if (serviceOverlaps.length > 0)
    out.push(
      warn(
        'cidrs',
        `service CIDRs overlap across clusters: ${serviceOverlaps.join(', ')}: harmless for mcs-gossip (an imported Service's IP is allocated in each cluster, endpoints are pod IPs), but the same IP names different Services in different clusters`,
        'nothing required; distinct service CIDRs per cluster avoid the confusion',
      ),
    );
  if (complete && !out.some((r) => r.level === 'FAIL')) {
    const pods = ranges.filter((r) => r.kind === 'pod').length;
    const services = ranges.filter((r) => r.kind === 'service').length;
    out.push(
      pass(
        'cidrs',
        `no overlap of a cluster's pod CIDRs with another's pod or service CIDRs (${pods} pod and ${services} service CIDRs)`,
      ),
    );
  }
  return out;
}

// ---- TTL vs heartbeat

const DEFAULT_TTL_MS = 30_000;
const DEFAULT_HEARTBEAT_MS = 10_000;

/** A duration flag value as `run` takes it (500ms, 10s, 2m, 1h, or milliseconds); undefined when it does not parse. */
export function durationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) return undefined;
  return Math.round(Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] ?? 1));
}

/** The value of `--flag=V` or `--flag V` in args. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
    if (a === flag) return args[i + 1];
  }
  return undefined;
}

export function checkTtl(r: ContextReport): CheckResult {
  const id = clusterOf(r);
  const cfg = r.node?.status?.config;
  let ttl = cfg?.endpointTtlMs;
  let hb = cfg?.heartbeatIntervalMs;
  let from = 'the node';
  if (ttl === undefined || hb === undefined) {
    if (r.node === undefined)
      return warn(
        'ttl',
        `${id}: ${readErrorOf(r, 'pods') === undefined ? 'no node pod' : 'node pods unreadable'}: cannot read its flags`,
        'fix the node check first',
      );
    const t = flagValue(r.node.args, '--endpoint-ttl');
    const h = flagValue(r.node.args, '--heartbeat-interval');
    ttl ??= t === undefined ? DEFAULT_TTL_MS : durationMs(t);
    hb ??= h === undefined ? DEFAULT_HEARTBEAT_MS : durationMs(h);
    from = `pod ${r.node.namespace}/${r.node.pod} args${t === undefined && h === undefined ? ' (defaults)' : ''}`;
  }
  if (ttl === undefined || hb === undefined)
    return warn('ttl', `${id}: cannot parse --endpoint-ttl / --heartbeat-interval of ${from}`, 'check the pod args');
  const said = `endpoint TTL ${ttl / 1000}s, heartbeat ${hb / 1000}s (${from})`;
  if (ttl < 3 * hb)
    return fail(
      'ttl',
      `${id}: ${said}: one or two lost heartbeats withdraw the cluster's endpoints`,
      'keep --endpoint-ttl at least 3 × --heartbeat-interval (defaults 30s and 10s)',
    );
  return pass('ttl', `${id}: ${said}`);
}

/** Every check, in the order `diagnose` prints them. */
export function runChecks(contexts: readonly DiagnoseContext[]): CheckResult[] {
  const reports = contexts.map((c) => c.report);
  return [
    ...checkIdentity(reports),
    ...reports.map(checkNode),
    ...checkPeers(reports),
    ...checkVersions(reports),
    ...checkReads(reports),
    ...checkExportsHaveServices(contexts),
    ...checkNamespaces(reports),
    ...checkConflicts(reports),
    ...contexts.flatMap(checkCoreDns),
    ...checkCidrs(contexts),
    ...reports.map(checkTtl),
  ];
}
