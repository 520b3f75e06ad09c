// The chart's monitoring and DNS options: the ServiceMonitor, the PrometheusRule and the Grafana dashboard ConfigMap
// (metrics.*), the CoreDNS RBAC and Corefile lines (coredns.*). Rendered with helm template (off by default, what
// each value changes); every metric the dashboard and the alerts query is one the node registers; the objects are
// installed on a real API server that has the Prometheus Operator's CRDs (fetched by e2e/tools/build.sh from the Go
// module proxy), so their schemas validate them; and a real CoreDNS running as the ServiceAccount the chart binds
// serves clusterset.local with only that ClusterRole (plus what it reads for cluster.local).
import { getMetrics } from '@libp2p/gossipsub/metrics';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GossipMetrics } from '../../src/gossip/metrics.js';
import { gossipsubMetricsRegister, gossipsubTopicLabels } from '../../src/gossip/gossipsub-metrics.js';
import { encodeIdentityKey, generateIdentityKey, generatePsk } from '../../src/gossip/keys.js';
import { KubeMetrics } from '../../src/kube/metrics.js';
import { NodeMetrics } from '../../src/node/node-metrics.js';
import { down, kubeConfigFor, repoRoot, toolsBin, up, type ClusterSetState } from '../harness/clusterset.js';
import { helmKubeVersionArg } from '../harness/node-identity.js';
import { freePorts } from '../harness/ports.js';
import { isAlive, startDetached, stopProcess, tail, type StartedProcess } from '../harness/process.js';
import { eventually } from '../harness/wait.js';

const run = promisify(execFile);
const chart = join(repoRoot, 'charts', 'mcs-gossip');
const kubeVersion = helmKubeVersionArg();
const monitoringCrds = join(toolsBin, 'monitoring-crds');
const keys = ['--set=identity.keyBase64=eA==', '--set=clusterSetKey.keyBase64=eA=='];
const allOn = [
  '--set=metrics.serviceMonitor.enabled=true',
  '--set=metrics.prometheusRule.enabled=true',
  '--set=metrics.grafanaDashboard.enabled=true',
  '--set=coredns.rbac.enabled=true',
];

async function helm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(join(toolsBin, 'helm'), args, { cwd: repoRoot, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function kubectl(
  kubeconfig: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(join(toolsBin, 'kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const template = (...args: string[]) => helm('template', 'x', chart, '--namespace=sys', kubeVersion, ...args);

async function render(...args: string[]): Promise<k8s.KubernetesObject[]> {
  const r = await template(...keys, ...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return k8s.loadAllYaml(r.stdout) as k8s.KubernetesObject[];
}

function find<T>(objects: k8s.KubernetesObject[], kind: string, name?: string): T {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata?.name === name));
  if (o === undefined) throw new Error(`no ${kind} ${name ?? ''} rendered`);
  return o as T;
}

interface ServiceMonitor extends k8s.KubernetesObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector: { matchNames: string[] };
    endpoints: { port: string; path: string; interval?: string; scrapeTimeout?: string; relabelings?: unknown[] }[];
  };
}
interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface PrometheusRule extends k8s.KubernetesObject {
  spec: { groups: { name: string; rules: Rule[] }[] };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid: string } }[] };
  panels: Panel[];
}

const rulesOf = (objects: k8s.KubernetesObject[]) =>
  find<PrometheusRule>(objects, 'PrometheusRule').spec.groups.flatMap((g) => g.rules);

/** Every metric name a PromQL text mentions (besides functions, labels and keywords). */
function metricNames(promql: string): string[] {
  const noStrings = promql.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [
    ...noStrings.matchAll(
      /\b(mcs_gossip_[a-z0-9_]+|gossipsub_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|up)\b(?!\s*\()/g,
    ),
  ].map((m) => m[1] as string);
}

/** The names the node's code registers: its metric classes on a registry (with prom-client's defaults), and
 * every `mcs_gossip_…` name literal in src/ (metrics registered elsewhere, e.g. in mcs-node.ts). */
async function registeredNames(): Promise<Set<string>> {
  const registry = new Registry();
  new KubeMetrics(registry);
  new GossipMetrics(registry);
  new NodeMetrics({ registry, gossipStatus: () => undefined });
  // Gossipsub's own series, registered as the node registers them (src/gossip/gossipsub-metrics.ts).
  getMetrics(gossipsubMetricsRegister(registry), gossipsubTopicLabels('/t'), {
    gossipPromiseExpireSec: 3,
    behaviourPenaltyThreshold: 6,
    maxMeshMessageDeliveriesWindowSec: 0.01,
  });
  const names = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
        for (const m of (await readFile(p, 'utf8')).matchAll(/'(mcs_gossip_[a-z0-9_]+)'/g)) names.add(m[1] as string);
    }
  };
  await walk(join(repoRoot, 'src'));
  return names;
}

/** A histogram's series (_bucket, _sum, _count) belong to its name. */
const known = (names: Set<string>, name: string) =>
  name === 'up' || names.has(name) || names.has(name.replace(/_(bucket|sum|count)$/, ''));

function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  const stack: string[] = [];
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('({['.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}

const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

describe('Helm chart: monitoring and DNS options', () => {
  let dir: string;
  let state: ClusterSetState;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-chart-mon-'));
    state = await up({ dir, clusters: 1, clusterSetName: 'mon-test', onProgress: () => {} });
  });

  afterAll(async () => {
    if (state !== undefined) await down(dir);
    await rm(dir, { recursive: true, force: true });
  });

  it('renders none of them by default', async () => {
    const objects = await render();
    const kinds = objects.map((o) => o.kind);
    expect(kinds).not.toContain('ServiceMonitor');
    expect(kinds).not.toContain('PrometheusRule');
    expect(kinds).not.toContain('ConfigMap');
    expect(objects.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata?.name)).toEqual(['x-mcs-gossip']);
  });

  it('lints clean with --strict with every option on', async () => {
    const r = await helm(
      'lint',
      '--strict',
      chart,
      kubeVersion,
      ...keys,
      ...allOn,
      '--set=coredns.corefileSnippet=true',
    );
    const out = r.stdout + r.stderr;
    expect(out).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(out.match(/^\[(INFO|WARNING|ERROR)\].*$/gm)).toEqual(['[INFO] Chart.yaml: icon is recommended']);
    expect(r.code).toBe(0);
  });

  it('renders a ServiceMonitor that selects the metrics Service alone, at its port', async () => {
    const values = {
      metrics: {
        serviceMonitor: {
          enabled: true,
          interval: '15s',
          scrapeTimeout: '10s',
          labels: { release: 'kps' },
          relabelings: [{ action: 'replace', sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }],
        },
      },
    };
    const file = join(dir, 'sm.yaml');
    await writeFile(file, YAML.stringify(values));
    const objects = await render(`--values=${file}`);
    const sm = find<ServiceMonitor>(objects, 'ServiceMonitor');
    expect(sm.metadata?.namespace).toBe('sys');
    expect(sm.metadata?.labels?.release).toBe('kps');
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: ['sys'] });
    const services = objects.filter((o) => o.kind === 'Service') as k8s.V1Service[];
    const selected = services.filter((s) =>
      Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => s.metadata?.labels?.[k] === v),
    );
    expect(selected.map((s) => s.metadata?.name)).toEqual(['x-mcs-gossip-metrics']);
    expect(selected[0]?.spec?.ports?.map((p) => p.name)).toEqual([sm.spec.endpoints[0]?.port]);
    expect(sm.spec.endpoints).toEqual([
      {
        port: 'metrics',
        path: '/metrics',
        scheme: 'http',
        interval: '15s',
        scrapeTimeout: '10s',
        relabelings: values.metrics.serviceMonitor.relabelings,
      },
    ]);
  });

  it('renders a PrometheusRule: each alert with for, severity, summary, description and a runbook in operations.md', async () => {
    const objects = await render(
      '--set=metrics.prometheusRule.enabled=true',
      '--set=metrics.prometheusRule.labels.release=kps',
      '--set=metrics.prometheusRule.additionalRuleLabels.team=platform',
      '--set=endpointTtl=45s',
    );
    const rule = find<PrometheusRule>(objects, 'PrometheusRule');
    expect(rule.metadata?.labels?.release).toBe('kps');
    const rules = rulesOf(objects);
    const names = rules.map((r) => r.alert);
    for (const wanted of [
      'MCSGossipClusterUnheard',
      'MCSGossipBindingRefused',
      'MCSGossipIncompatiblePeer',
      'MCSGossipIdentityNotReady',
      'MCSGossipReconcileErrors',
      'MCSGossipRefusedKeys',
      'MCSGossipUnimportableRecords',
    ])
      expect(names).toContain(wanted);
    // The schema's list of alert names (metrics.prometheusRule.disabledAlerts) is exactly the rendered one.
    const schema = JSON.parse(await readFile(join(chart, 'values.schema.json'), 'utf8')) as {
      properties: {
        metrics: {
          properties: { prometheusRule: { properties: { disabledAlerts: { items: { enum: string[] } } } } };
        };
      };
    };
    expect(schema.properties.metrics.properties.prometheusRule.properties.disabledAlerts.items.enum.sort()).toEqual(
      [...names].sort(),
    );
    const operations = await readFile(join(repoRoot, 'docs', 'operations.md'), 'utf8');
    const anchors = new Set(
      [...operations.matchAll(/^#+ (.+)$/gm)].map((m) =>
        (m[1] as string)
          .toLowerCase()
          .replace(/[^a-z0-9 _-]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^[0-9]+[smh]$/);
      expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels.severity);
      expect(r.labels.team, r.alert).toBe('platform');
      expect(r.annotations.summary, r.alert).not.toBe('');
      expect(r.annotations.description, r.alert).not.toBe('');
      const url = r.annotations.runbook_url ?? '';
      expect(url, r.alert).toBe(
        `https://github.com/mcs-gossip/mcs-gossip/blob/main/docs/operations.md#${r.alert.toLowerCase()}`,
      );
      expect(anchors.has(r.alert.toLowerCase()), `docs/operations.md has no section ${r.alert}`).toBe(true);
      // Scoped to this release's series (the namespace and job the ServiceMonitor gives them).
      expect(r.expr, r.alert).toContain('namespace="sys",job="x-mcs-gossip-metrics"');
      expect(balanced(r.expr), `${r.alert}: ${r.expr}`).toBe(true);
    }
    const unheard = rules.find((r) => r.alert === 'MCSGossipClusterUnheard');
    expect(unheard?.expr).toMatch(/mcs_gossip_cluster_alive\{[^}]*\}\) == 0$/);
    expect(unheard?.annotations.description).toContain('(45s)');
    // Prometheus's own templates are passed through, not run by Helm.
    expect(unheard?.annotations.description).toContain('{{ $labels.cluster }}');

    const custom = rulesOf(
      await render(
        '--set=metrics.prometheusRule.enabled=true',
        '--set=metrics.prometheusRule.selector=cluster_name="prod-a"',
        '--set=metrics.prometheusRule.disabledAlerts={MCSGossipExportConflict,MCSGossipNodeDown}',
        '--set=metrics.prometheusRule.runbookBaseUrl=https://wiki.example.com/mcs',
      ),
    );
    expect(custom.map((r) => r.alert)).toEqual(
      names.filter((n) => n !== 'MCSGossipExportConflict' && n !== 'MCSGossipNodeDown'),
    );
    for (const r of custom) {
      expect(r.expr).toContain('{cluster_name="prod-a"');
      expect(r.expr).not.toContain('job=');
      expect(r.annotations.runbook_url).toBe(`https://wiki.example.com/mcs#${r.alert.toLowerCase()}`);
    }
  });

  it('renders the dashboard ConfigMap: the chart file, the sidecar label, a $datasource and a cluster variable', async () => {
    const file = await readFile(join(chart, 'dashboards', 'mcs-gossip.json'), 'utf8');
    const objects = await render('--set=metrics.grafanaDashboard.enabled=true');
    const cm = find<k8s.V1ConfigMap>(objects, 'ConfigMap');
    expect(cm.metadata?.name).toBe('x-mcs-gossip-dashboard');
    expect(cm.metadata?.namespace).toBe('sys');
    expect(cm.metadata?.labels?.grafana_dashboard).toBe('1');
    expect(cm.data?.['mcs-gossip.json']).toBe(file.trimEnd());
    const moved = find<k8s.V1ConfigMap>(
      await render(
        '--set=metrics.grafanaDashboard.enabled=true',
        '--set=metrics.grafanaDashboard.namespace=monitoring',
        '--set=metrics.grafanaDashboard.labels.grafana_dashboard=null',
        '--set=metrics.grafanaDashboard.labels.dashboards=mcs',
        '--set=metrics.grafanaDashboard.annotations.grafana_folder=Networking',
      ),
      'ConfigMap',
    );
    expect(moved.metadata?.namespace).toBe('monitoring');
    expect(moved.metadata?.labels?.dashboards).toBe('mcs');
    expect(moved.metadata?.labels).not.toHaveProperty('grafana_dashboard');
    expect(moved.metadata?.annotations).toEqual({ grafana_folder: 'Networking' });

    const dashboard = JSON.parse(file) as Dashboard;
    expect(dashboard.uid).toBe('mcs-gossip');
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource?.type).toBe('datasource');
    expect(vars.datasource?.query).toBe('prometheus');
    expect(vars.cluster?.type).toBe('query');
    expect(vars.cluster?.datasource?.uid).toBe('${datasource}');
    const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(15);
    const exprs: string[] = [];
    for (const p of panels) {
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.datasource?.uid, p.title).toBe('${datasource}');
        expect(balanced(t.expr), `${p.title}: ${t.expr}`).toBe(true);
        exprs.push(t.expr);
      }
    }
    // What the dashboard shows (issue 13): per-cluster liveness, services, reconciles, writes, mesh, process, versions.
    const queried = new Set(exprs.flatMap(metricNames));
    for (const m of [
      'mcs_gossip_cluster_alive',
      'mcs_gossip_cluster_heartbeat_age_seconds',
      'mcs_gossip_cluster_records',
      'mcs_gossip_exports',
      'mcs_gossip_imports',
      'mcs_gossip_conflicts',
      'mcs_gossip_reconciles_total',
      'mcs_gossip_kube_api_writes_total',
      'mcs_gossip_mesh_peers',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_p99_seconds',
      'mcs_gossip_build_info',
    ])
      expect(queried, m).toContain(m);
    // The per-cluster panels follow the cluster variable.
    for (const e of exprs.filter((x) => x.includes('mcs_gossip_cluster_'))) expect(e).toContain('cluster=~"$cluster"');
  });

  it('queries only metrics the node registers, in the dashboard and in the alerts', async () => {
    const names = await registeredNames();
    const dashboard = JSON.parse(await readFile(join(chart, 'dashboards', 'mcs-gossip.json'), 'utf8')) as Dashboard;
    const fromDashboard = allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const vars = dashboard.templating.list.map((v) =>
      typeof v.query === 'string' ? v.query : JSON.stringify(v.query),
    );
    const fromRules = rulesOf(await render('--set=metrics.prometheusRule.enabled=true')).map((r) => r.expr);
    const unknown = [...new Set([...fromDashboard, ...vars, ...fromRules].flatMap(metricNames))].filter(
      (n) => !known(names, n),
    );
    expect(unknown).toEqual([]);
    // Sanity: the registry really has the defaults the process panels use.
    expect(names).toContain('process_resident_memory_bytes');
    expect(names).toContain('nodejs_eventloop_lag_p99_seconds');
  });

  it('refuses bad monitoring and CoreDNS values, naming them', async () => {
    const cases: [string[], string][] = [
      [['--set=metrics.serviceMonitor.enable=true'], "additional properties 'enable' not allowed"],
      [['--set=metrics.serviceMonitor.interval=30 seconds'], "at '/metrics/serviceMonitor/interval'"],
      [['--set=metrics.prometheusRule.disabledAlerts={NoSuchAlert}'], "at '/metrics/prometheusRule/disabledAlerts/0'"],
      [['--set=metrics.prometheusRule.selector={job="x"}'], "at '/metrics/prometheusRule/selector'"],
      [
        ['--set=metrics.prometheusRule.additionalRuleLabels.team=a b'],
        "at '/metrics/prometheusRule/additionalRuleLabels/team'",
      ],
      [['--set=metrics.grafanaDashboard.namespace=Monitoring'], "at '/metrics/grafanaDashboard/namespace'"],
      [['--set=coredns.rbac.serviceAccount.namespace=Kube_System'], "at '/coredns/rbac/serviceAccount/namespace'"],
      [['--set=coredns.corefileSnippet=yes'], "at '/coredns/corefileSnippet'"],
    ];
    for (const [args, text] of cases) {
      const r = await template(...keys, ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain(text);
    }
  });

  it('renders the CoreDNS ClusterRole and its binding to a configurable ServiceAccount', async () => {
    const objects = await render(
      '--set=coredns.rbac.enabled=true',
      '--set=coredns.rbac.serviceAccount.name=dns',
      '--set=coredns.rbac.serviceAccount.namespace=dns-system',
    );
    const role = find<k8s.V1ClusterRole>(objects, 'ClusterRole', 'x-mcs-gossip-coredns');
    expect(role.rules).toEqual([
      { apiGroups: ['multicluster.x-k8s.io'], resources: ['serviceimports'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['services', 'namespaces'], verbs: ['get', 'list', 'watch'] },
    ]);
    const binding = find<k8s.V1ClusterRoleBinding>(objects, 'ClusterRoleBinding', 'x-mcs-gossip-coredns');
    expect(binding.roleRef.name).toBe('x-mcs-gossip-coredns');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'dns', namespace: 'dns-system' }]);
    const byDefault = find<k8s.V1ClusterRoleBinding>(
      await render('--set=coredns.rbac.enabled=true'),
      'ClusterRoleBinding',
      'x-mcs-gossip-coredns',
    );
    expect(byDefault.subjects).toEqual([{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }]);
  });

  it('prints the Corefile lines in NOTES when asked, and never renders a Corefile', async () => {
    const c = state.clusters[0];
    if (c === undefined) throw new Error('no cluster');
    const dry = (...args: string[]) =>
      helm(
        'install',
        'notes',
        chart,
        `--kubeconfig=${c.kubeconfig}`,
        '--namespace=ns',
        '--dry-run=server',
        ...keys,
        ...args,
      );
    const plain = await dry();
    expect({ code: plain.code, stderr: plain.stderr }).toEqual({ code: 0, stderr: '' });
    expect(plain.stdout).not.toContain('clusterset.local');
    const snippet = await dry('--set=coredns.corefileSnippet=true');
    expect({ code: snippet.code, stderr: snippet.stderr }).toEqual({ code: 0, stderr: '' });
    const notes = snippet.stdout.slice(snippet.stdout.indexOf('NOTES:'));
    expect(notes).toContain('kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {');
    expect(notes).toContain('multicluster clusterset.local');
    expect(notes).toContain('set coredns.rbac.enabled=true');
    const withRbac = await dry('--set=coredns.corefileSnippet=true', '--set=coredns.rbac.enabled=true');
    expect(withRbac.stdout).toContain(
      "CoreDNS's ServiceAccount kube-system/coredns may read ServiceImports (ClusterRole notes-mcs-gossip-coredns)",
    );
    expect(withRbac.stdout).not.toMatch(/kind: ConfigMap[\s\S]*Corefile/);
  });

  it('installs every option on a real API server with the Prometheus Operator CRDs, which validate them', async () => {
    const c = state.clusters[0];
    if (c === undefined) throw new Error('no cluster');
    expect(
      existsSync(monitoringCrds),
      `${monitoringCrds} is missing: run \`npm run tools\` (it fetches the Prometheus Operator's CRDs from the Go module proxy)`,
    ).toBe(true);
    const crdFiles = ['servicemonitors', 'prometheusrules'].map((f) =>
      join(monitoringCrds, `monitoring.coreos.com_${f}.yaml`),
    );
    const applied = await kubectl(c.kubeconfig, 'apply', '--server-side', ...crdFiles.flatMap((f) => ['-f', f]));
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    for (const crd of ['servicemonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com']) {
      const w = await kubectl(c.kubeconfig, 'wait', '--for=condition=Established', '--timeout=60s', `crd/${crd}`);
      expect(w.code, w.stderr).toBe(0);
    }

    const identity = Buffer.from(encodeIdentityKey(await generateIdentityKey())).toString('base64');
    const psk = Buffer.from(generatePsk()).toString('base64');
    const values = {
      identity: { keyBase64: identity },
      clusterSetKey: { keyBase64: psk },
      metrics: {
        serviceMonitor: {
          enabled: true,
          interval: '15s',
          scrapeTimeout: '5s',
          labels: { release: 'kps' },
          relabelings: [{ action: 'replace', sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }],
          metricRelabelings: [{ action: 'drop', sourceLabels: ['__name__'], regex: 'nodejs_gc_.*' }],
        },
        prometheusRule: { enabled: true, labels: { release: 'kps' }, additionalRuleLabels: { team: 'platform' } },
        grafanaDashboard: { enabled: true },
      },
      coredns: { rbac: { enabled: true } },
    };
    const file = join(dir, 'all-on.yaml');
    await writeFile(file, YAML.stringify(values));
    const ns = 'mcs-gossip-system';
    const install = await helm(
      'install',
      'mon',
      chart,
      `--kubeconfig=${c.kubeconfig}`,
      `--namespace=${ns}`,
      '--create-namespace',
      `--values=${file}`,
    );
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    try {
      const kc = kubeConfigFor(state, c.name);
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const get = (plural: string) =>
        custom.getNamespacedCustomObject({
          group: 'monitoring.coreos.com',
          version: 'v1',
          namespace: ns,
          plural,
          name: 'mon-mcs-gossip',
        }) as Promise<k8s.KubernetesObject & { spec: unknown }>;
      // Stored as rendered: nothing pruned by the CRD's structural schema (an unknown field would be dropped).
      const rendered = k8s.loadAllYaml(
        (
          await helm(
            'template',
            'mon',
            chart,
            `--namespace=${ns}`,
            kubeVersion,
            `--values=${file}`,
            '--show-only=templates/servicemonitor.yaml',
            '--show-only=templates/prometheusrule.yaml',
          )
        ).stdout,
      ) as (k8s.KubernetesObject & { spec: unknown })[];
      expect((await get('servicemonitors')).spec).toEqual(find<ServiceMonitor>(rendered, 'ServiceMonitor').spec);
      expect((await get('prometheusrules')).spec).toEqual(find<PrometheusRule>(rendered, 'PrometheusRule').spec);
      const cm = await core.readNamespacedConfigMap({ name: 'mon-mcs-gossip-dashboard', namespace: ns });
      expect(JSON.parse(cm.data?.['mcs-gossip.json'] ?? '')).toMatchObject({ uid: 'mcs-gossip' });

      // The schemas do validate: a malformed `for` and a ServiceMonitor without endpoints' port types are refused.
      const bad = structuredClone(find<PrometheusRule>(rendered, 'PrometheusRule'));
      bad.metadata = { name: 'bad', namespace: ns };
      const first = bad.spec.groups[0]?.rules[0];
      if (first === undefined) throw new Error('no rule');
      first.for = '5 minutes';
      const refused = await custom
        .createNamespacedCustomObject({
          group: 'monitoring.coreos.com',
          version: 'v1',
          namespace: ns,
          plural: 'prometheusrules',
          body: bad,
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(refused).toBeInstanceOf(k8s.ApiException);
      expect((refused as k8s.ApiException<unknown>).code).toBe(422);
      expect(String((refused as k8s.ApiException<unknown>).body)).toContain('spec.groups[0].rules[0].for');
      const badSm = structuredClone(find<ServiceMonitor>(rendered, 'ServiceMonitor'));
      badSm.metadata = { name: 'bad', namespace: ns };
      (badSm.spec.endpoints[0] as { interval?: unknown }).interval = '15 seconds';
      const refusedSm = await custom
        .createNamespacedCustomObject({
          group: 'monitoring.coreos.com',
          version: 'v1',
          namespace: ns,
          plural: 'servicemonitors',
          body: badSm,
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect((refusedSm as k8s.ApiException<unknown>).code).toBe(422);
    } finally {
      const uninstall = await helm('uninstall', 'mon', `--kubeconfig=${c.kubeconfig}`, `--namespace=${ns}`, '--wait');
      expect(uninstall.code, uninstall.stderr).toBe(0);
    }
  });

  it('lets a real CoreDNS, as the ServiceAccount the chart binds, serve clusterset.local', async () => {
    const c = state.clusters[0];
    if (c === undefined) throw new Error('no cluster');
    const kc = kubeConfigFor(state, c.name);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    const ns = 'dns-rbac';
    // The ServiceAccount CoreDNS runs as, with the reads it needs for cluster.local (what a cluster's own
    // system:coredns ClusterRole grants; this harness has no CoreDNS of its own), minus anything multicluster.
    await core.createNamespacedServiceAccount({ namespace: 'kube-system', body: { metadata: { name: 'coredns' } } });
    await rbac.createClusterRole({
      body: {
        metadata: { name: 'test-coredns-base' },
        rules: [
          { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
          { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
        ],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'test-coredns-base' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'test-coredns-base' },
        subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
      },
    });
    const asCoreDns = ['--as=system:serviceaccount:kube-system:coredns'];
    const can = async (...args: string[]) =>
      (await kubectl(c.kubeconfig, 'auth', 'can-i', ...asCoreDns, ...args)).stdout.trim();
    expect(await can('watch', 'serviceimports.multicluster.x-k8s.io', '-A')).toBe('no');

    // A ClusterSetIP import and a headless one with an imported EndpointSlice, as the node writes them.
    await core.createNamespace({ body: { metadata: { name: ns } } });
    const serviceImport = (name: string, type: string, ips?: string[]) => ({
      apiVersion: 'multicluster.x-k8s.io/v1beta1',
      kind: 'ServiceImport',
      metadata: { name, namespace: ns },
      spec: { type, ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...(ips === undefined ? {} : { ips }) },
    });
    await custom.createNamespacedCustomObject({
      group: 'multicluster.x-k8s.io',
      version: 'v1beta1',
      namespace: ns,
      plural: 'serviceimports',
      body: serviceImport('web', 'ClusterSetIP', ['10.101.7.7']),
    });
    await custom.createNamespacedCustomObject({
      group: 'multicluster.x-k8s.io',
      version: 'v1beta1',
      namespace: ns,
      plural: 'serviceimports',
      body: serviceImport('db', 'Headless'),
    });
    await discovery.createNamespacedEndpointSlice({
      namespace: ns,
      body: {
        metadata: {
          name: 'db-cluster-9',
          labels: {
            'multicluster.kubernetes.io/service-name': 'db',
            'multicluster.kubernetes.io/source-cluster': 'cluster-9',
          },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.209.0.5'], conditions: { ready: true } }],
        ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      },
    });

    // CoreDNS with a token of that ServiceAccount: it sees exactly what the RBAC grants.
    const token = await core.createNamespacedServiceAccountToken({
      namespace: 'kube-system',
      name: 'coredns',
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const admin = YAML.parse(await readFile(c.kubeconfig, 'utf8')) as {
      clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
    };
    const cluster = admin.clusters[0]?.cluster;
    if (cluster === undefined) throw new Error('no cluster in the kubeconfig');
    const kubeconfig = join(dir, 'coredns.kubeconfig');
    await writeFile(
      kubeconfig,
      YAML.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster }],
        users: [{ name: 'coredns', user: { token: token.status?.token } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'coredns' } }],
        'current-context': 'c',
      }),
    );
    const [port, health] = (await freePorts(2)) as [number, number];
    const corefile = join(dir, 'Corefile');
    // The lines NOTES and docs/dns.md give, with a kubeconfig instead of the in-cluster config.
    await writeFile(
      corefile,
      `.:${port} {
    bind 127.0.0.1
    errors
    health 127.0.0.1:${health}
    kubernetes cluster.local clusterset.local {
        kubeconfig ${kubeconfig}
        multicluster clusterset.local
        ttl 0
    }
}
`,
    );
    let proc: StartedProcess | undefined;
    try {
      proc = startDetached(join(toolsBin, 'coredns'), ['-conf', corefile], join(dir, 'coredns.log'));
      const resolver = new Resolver({ timeout: 1000, tries: 1 });
      resolver.setServers([`127.0.0.1:${port}`]);
      const started = proc;
      const resolve = (name: string, want: number) =>
        eventually(
          name,
          async () => {
            if (!isAlive(started)) throw new Error(`coredns exited; log:\n${await tail(started.log, 30)}`);
            const a = await resolver.resolve4(name).catch(() => []);
            return a.length >= want ? a : undefined;
          },
          60_000,
        );
      expect(await resolve('kubernetes.default.svc.cluster.local', 1)).toHaveLength(1);
      // Without the chart's ClusterRole: forbidden, and clusterset.local names fail.
      await eventually('forbidden in the CoreDNS log', async () =>
        /serviceimports\.multicluster\.x-k8s\.io is forbidden/.test(await readFile(started.log, 'utf8'))
          ? true
          : undefined,
      );
      // (SERVFAIL: the plugin's ServiceImport cache never synced.)
      const failed = await resolver.resolve4(`web.${ns}.svc.clusterset.local`).then(
        () => undefined,
        (err: NodeJS.ErrnoException) => err.code,
      );
      expect(['ESERVFAIL', 'ENOTFOUND']).toContain(failed);

      // The chart's ClusterRole and binding, applied as rendered (only the CoreDNS part).
      const r = await helm(
        'template',
        'dnsrbac',
        chart,
        '--namespace=mcs-gossip-system',
        kubeVersion,
        ...keys,
        '--set=coredns.rbac.enabled=true',
        '--show-only=templates/coredns-rbac.yaml',
      );
      const manifest = join(dir, 'coredns-rbac.yaml');
      await writeFile(manifest, r.stdout);
      const applied = await kubectl(c.kubeconfig, 'apply', '-f', manifest);
      expect(applied.code, applied.stderr).toBe(0);
      expect(await can('watch', 'serviceimports.multicluster.x-k8s.io', '-A')).toBe('yes');
      expect(await can('create', 'serviceimports.multicluster.x-k8s.io', '-A')).toBe('no');
      expect(await can('update', 'endpointslices.discovery.k8s.io', '-A')).toBe('no');

      // CoreDNS's informers retry the list (with backoff) and now succeed.
      expect(await resolve(`web.${ns}.svc.clusterset.local`, 1)).toEqual(['10.101.7.7']);
      expect(await resolve(`db.${ns}.svc.clusterset.local`, 1)).toEqual(['10.209.0.5']);
    } finally {
      if (proc !== undefined) await stopProcess(proc, 3000);
    }
  });
});
