/**
 * The checks of `mcs-gossip diagnose`, pure: each takes what was read of every context and gives PASS, WARN or FAIL
 * lines with the finding and the fix.
 */
import { isIP } from 'node:net';
import { validateIdentity } from '../../kube/identity.js';
import { clusterOf, conditionOf, type ContextReport } from './model.js';

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
  /** `namespace/name` of every Service (undefined when they could not be listed). */
  readonly services?: readonly string[];
  /** The Corefile of ConfigMap kube-system/coredns; null when the ConfigMap does not exist; undefined: unreadable. */
  readonly corefile?: string | null;
  readonly corefileError?: string;
  /** Whether system:serviceaccount:kube-system:coredns may list and watch ServiceImports (SubjectAccessReview). */
  readonly corednsAccess?: { readonly list: boolean; readonly watch: boolean };
  readonly corednsAccessError?: string;
  /** spec.podCIDRs of the Nodes (undefined when they could not be listed). */
  readonly podCidrs?: readonly string[];
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
  if (r.node === undefined)
    return fail(
      'node',
      `${id}: no node pod (label app.kubernetes.io/name=mcs-gossip)${r.readErrors.find((e) => e.startsWith('list node pods')) === undefined ? '' : ` (${r.readErrors.find((e) => e.startsWith('list node pods'))})`}`,
      'install the Helm chart in this cluster, or name its namespace with -n; the CLI needs list pods and get pods/proxy',
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
    for (const p of s.incompatiblePeers ?? [])
      out.push(
        fail(
          'peers',
          `${id}: refuses peer ${p.clusterId ?? p.peerId}${p.version === undefined ? '' : ` (version ${p.version})`}: ${p.reason}`,
          'upgrade the clusters so their versions are at most one minor apart (docs/upgrades.md)',
        ),
      );
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

/** Major and minor of a version; a missing or unparsable version is taken as older than 0.2 (0.1). */
export function parseVersion(v: string | undefined): { major: number; minor: number; known: boolean } {
  const m = v === undefined ? null : /^v?(\d+)\.(\d+)/.exec(v);
  if (m === null) return { major: 0, minor: 1, known: false };
  return { major: Number(m[1]), minor: Number(m[2]), known: true };
}

export function checkVersions(contexts: readonly ContextReport[]): CheckResult {
  // Each cluster's version as its own node says, else as another node heard it announced.
  const versions = new Map<string, string | undefined>();
  for (const r of contexts) {
    const s = r.node?.status;
    if (s !== undefined) versions.set(clusterOf(r), s.version);
  }
  for (const r of contexts)
    for (const o of r.node?.status?.gossip?.origins ?? [])
      if (!versions.has(o.origin) || (versions.get(o.origin) === undefined && o.version !== undefined))
        versions.set(o.origin, o.version);
  if (versions.size === 0) return warn('versions', 'no node answered: versions unknown', 'fix the node check first');
  const shown = [...versions].sort(([a], [b]) => a.localeCompare(b)).map(([c, v]) => `${c} ${v ?? '<0.2'}`);
  const parsed = [...versions.values()].map(parseVersion);
  const majors = new Set(parsed.map((p) => p.major));
  const minors = parsed.map((p) => p.minor);
  const spread = Math.max(...minors) - Math.min(...minors);
  if (majors.size > 1 || spread > 1)
    return fail(
      'versions',
      `incompatible versions: ${shown.join(', ')}`,
      'upgrade one cluster at a time, one minor at a time (docs/upgrades.md): versions may differ by at most one minor',
    );
  if (new Set([...versions.values()]).size > 1)
    return warn(
      'versions',
      `mixed versions (compatible): ${shown.join(', ')}`,
      'finish the upgrade of the remaining clusters',
    );
  return pass('versions', `every cluster runs ${[...versions.values()][0] ?? 'a version older than 0.2'}`);
}

// ---- exports

/** ServiceExports without a Service of the same name and namespace. */
export function checkExportsHaveServices(contexts: readonly DiagnoseContext[]): CheckResult[] {
  const out: CheckResult[] = [];
  for (const c of contexts) {
    if (c.services === undefined) continue;
    const id = clusterOf(c.report);
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
  const counted = contexts.filter((c) => c.services !== undefined).length;
  if (out.length === 0)
    out.push(
      counted === 0
        ? warn('export-service', 'Services could not be listed in any context', 'the CLI needs list services')
        : pass('export-service', 'every ServiceExport has its Service'),
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
  if (out.length === 0) out.push(pass('namespace', 'every exported namespace exists in every cluster'));
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
  if (out.length === 0) out.push(pass('conflict', 'no ServiceExport in conflict'));
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
        `${id}: cannot ask (SubjectAccessReview: ${c.corednsAccessError ?? 'unknown error'})`,
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

export function checkCidrs(contexts: readonly DiagnoseContext[]): CheckResult[] {
  const out: CheckResult[] = [];
  const ranges: { cluster: string; kind: string; cidr: Cidr }[] = [];
  for (const c of contexts) {
    const id = clusterOf(c.report);
    if (c.podCidrs === undefined)
      out.push(warn('cidrs', `${id}: cannot list Nodes: pod CIDRs unknown`, 'the CLI needs list nodes'));
    for (const t of c.podCidrs ?? []) {
      const cidr = parseCidr(t);
      if (cidr !== undefined) ranges.push({ cluster: id, kind: 'pod', cidr });
    }
    if (c.serviceCidrs === undefined)
      out.push(
        warn(
          'cidrs',
          `${id}: service CIDRs unknown (ServiceCIDR networking.k8s.io/v1: ${c.serviceCidrError ?? 'not served'})`,
          "compare the clusters' --service-cluster-ip-range by hand",
        ),
      );
    for (const t of c.serviceCidrs ?? []) {
      const cidr = parseCidr(t);
      if (cidr !== undefined) ranges.push({ cluster: id, kind: 'service', cidr });
    }
  }
  const seen = new Set<string>();
  for (let i = 0; i < ranges.length; i++)
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.cluster === b.cluster || !cidrsOverlap(a.cidr, b.cidr)) continue;
      const key = [`${a.cluster} ${a.kind} ${a.cidr.text}`, `${b.cluster} ${b.kind} ${b.cidr.text}`].sort().join(' / ');
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(
        fail(
          'cidrs',
          `${a.cluster} ${a.kind} CIDR ${a.cidr.text} overlaps ${b.cluster} ${b.kind} CIDR ${b.cidr.text}`,
          'give every cluster pod and service CIDRs of its own: imported addresses must be routable and unambiguous',
        ),
      );
    }
  if (!out.some((r) => r.level === 'FAIL')) {
    const pods = ranges.filter((r) => r.kind === 'pod').length;
    const services = ranges.filter((r) => r.kind === 'service').length;
    out.push(pass('cidrs', `no overlap between the clusters' ${pods} pod and ${services} service CIDRs`));
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
      return warn('ttl', `${id}: no node pod: cannot read its flags`, 'fix the node check first');
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
    checkVersions(reports),
    ...checkExportsHaveServices(contexts),
    ...checkNamespaces(reports),
    ...checkConflicts(reports),
    ...contexts.flatMap(checkCoreDns),
    ...checkCidrs(contexts),
    ...reports.map(checkTtl),
  ];
}
