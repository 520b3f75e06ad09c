// The Helm chart (charts/mcs-gossip) with the helm built from Go modules: lint, bad values refused with a message
// naming them (values.schema.json and the templates' checks), what the values render to, the `helm test` check, the
// CRDs it ships are exactly crds/, and a real install and uninstall on a control plane of the local ClusterSet.
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdentityKey, generateIdentityKey, generatePsk } from '../../src/gossip/keys.js';
import { crdDir } from '../harness/paths.js';
import { down, kubeConfigFor, loadCrds, repoRoot, toolsBin, up, type ClusterSetState } from '../harness/clusterset.js';
import { chartNodeRules, helmKubeVersionArg } from '../harness/node-identity.js';
import { eventually } from '../harness/wait.js';

const run = promisify(execFile);
const chart = join(repoRoot, 'charts', 'mcs-gossip');
const chartCrds = join(chart, 'crds');
// The built helm assumes Kubernetes v1.20 without a cluster; the chart requires >= 1.29 (see helmKubeVersionArg).
const kubeVersion = helmKubeVersionArg();

async function helm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(join(toolsBin, 'helm'), args, { cwd: repoRoot, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const keys = ['--set=identity.keyBase64=eA==', '--set=clusterSetKey.keyBase64=eA=='];
const template = (...args: string[]) => helm('template', 'x', chart, '--namespace=sys', kubeVersion, ...args);

/** The objects `helm template` renders (it must succeed, without a word on stderr). */
async function render(...args: string[]): Promise<k8s.KubernetesObject[]> {
  const r = await template(...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return k8s.loadAllYaml(r.stdout) as k8s.KubernetesObject[];
}

function find<T extends k8s.KubernetesObject>(objects: k8s.KubernetesObject[], kind: string, name?: string): T {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata?.name === name));
  if (o === undefined) throw new Error(`no ${kind} ${name ?? ''} rendered`);
  return o as T;
}

function nodeContainer(objects: k8s.KubernetesObject[]): k8s.V1Container {
  const c = find<k8s.V1Deployment>(objects, 'Deployment').spec?.template.spec?.containers[0];
  if (c === undefined) throw new Error('the Deployment has no container');
  return c;
}

const peerId = '12D3KooWEeV2xidxPuxmB84FdF7Q67ysz5Xojk5Rz5P6SsLrSRbG';

describe('Helm chart', () => {
  let dir: string;
  let state: ClusterSetState;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-helm-'));
    state = await up({ dir, clusters: 1, clusterSetName: 'helm-test', onProgress: () => {} });
  });

  afterAll(async () => {
    if (state !== undefined) await down(dir);
    await rm(dir, { recursive: true, force: true });
  });

  it('lints clean with --strict: no warnings, no symlink notices; only the INFO on the missing icon', async () => {
    for (const extra of [
      [],
      ['--set=replicas=3', '--set=gossip.service.type=NodePort', '--set=networkPolicy.enabled=true'],
    ]) {
      const r = await helm('lint', '--strict', chart, kubeVersion, ...keys, ...extra);
      const out = r.stdout + r.stderr;
      expect(out).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(out.match(/^\[(INFO|WARNING|ERROR)\].*$/gm)).toEqual(['[INFO] Chart.yaml: icon is recommended']);
      expect(out).not.toContain('symbolic link');
      expect(r.code).toBe(0);
    }
  });

  it('renders the defaults with keys, and needs Kubernetes >= 1.29', async () => {
    const objects = await render(...keys);
    expect(objects.map((o) => o.kind).sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'PodDisruptionBudget',
        'Pod', // the `helm test` hook
        'Secret',
        'Secret',
        'Service',
        'Service',
        'ServiceAccount',
      ].sort(),
    );
    const old = await helm('template', 'x', chart, ...keys, '--kube-version=v1.28.9');
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain('chart requires kubeVersion: >=1.29.0-0');
  });

  // One case per bad value: `helm template` exits non-zero and stderr names the value (schema: its path).
  const bad: [string, string[], string[]][] = [
    [
      'a ClusterSet name that is not a DNS label',
      ['--set=clusterProperties.clusterSetName=Prod_Set'],
      ["at '/clusterProperties/clusterSetName'", "'Prod_Set'"],
    ],
    [
      'a cluster id that is not a DNS label',
      ['--set=clusterProperties.clusterId=Not_A_Label'],
      ["at '/clusterProperties/clusterId'", "'Not_A_Label'"],
    ],
    [
      'a cluster id longer than 63 characters',
      [`--set=clusterProperties.clusterId=${'a'.repeat(64)}`],
      ["at '/clusterProperties/clusterId'", 'maxLength'],
    ],
    [
      'the typo clusterProperties.clusterID',
      ['--set=clusterProperties.clusterID=cluster-a'],
      ["at '/clusterProperties'", "additional properties 'clusterID' not allowed"],
    ],
    ['an unknown top-level key', ['--set=replica=2'], ["additional properties 'replica' not allowed"]],
    [
      'an unknown key under gossip.service',
      ['--set=gossip.service.typ=NodePort'],
      ["at '/gossip/service'", "additional properties 'typ' not allowed"],
    ],
    [
      'a bootstrap entry without /p2p/',
      ['--set=bootstrap={cluster-b=/dns4/gossip.example.com/tcp/7946}'],
      ["at '/bootstrap/0'", "'cluster-b=/dns4/gossip.example.com/tcp/7946'"],
    ],
    [
      'a bootstrap entry with host:port',
      [`--set=bootstrap={gossip.example.com:7946/p2p/${peerId}}`],
      ["at '/bootstrap/0'"],
    ],
    [
      'a bootstrap entry with a port out of range',
      [`--set=bootstrap={/ip4/10.0.0.1/tcp/79460/p2p/${peerId}}`],
      ["at '/bootstrap/0'"],
    ],
    [
      'a bootstrap entry pinned to a bad cluster id',
      [`--set=bootstrap={Cluster_B=/ip4/10.0.0.1/tcp/7946/p2p/${peerId}}`],
      ["at '/bootstrap/0'"],
    ],
    [
      'an announce address that is not a multiaddr',
      ['--set=gossip.announce={203.0.113.7:7946}'],
      ["at '/gossip/announce/0'", "'203.0.113.7:7946'"],
    ],
    ['replicas=two', ['--set=replicas=two'], ["at '/replicas'", 'got string, want integer']],
    ['replicas=0', ['--set=replicas=0'], ["at '/replicas'", 'minimum']],
    [
      'gossip.service.type=Loadbalancer',
      ['--set=gossip.service.type=Loadbalancer'],
      ["at '/gossip/service/type'", "value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'"],
    ],
    ['endpointTtl=thirty', ['--set=endpointTtl=thirty'], ["at '/endpointTtl'", "'thirty'"]],
    ['heartbeatInterval=10 (no unit)', ['--set=heartbeatInterval=10'], ["at '/heartbeatInterval'", 'want string']],
    ['heartbeatInterval=ten', ['--set=heartbeatInterval=ten'], ["at '/heartbeatInterval'", "'ten'"]],
    [
      'an identity key that is not base64',
      ['--set=identity.keyBase64=not-base64!'],
      ["at '/identity/keyBase64'", "'not-base64!'"],
    ],
    [
      'a ClusterSet key that is not base64',
      ['--set=clusterSetKey.keyBase64=eA='],
      ["at '/clusterSetKey/keyBase64'", "'eA='"],
    ],
    [
      'an existingSecret that is not a Secret name',
      ['--set=identity.existingSecret=My_Secret', '--set=identity.keyBase64='],
      ["at '/identity/existingSecret'", "'My_Secret'"],
    ],
    [
      'logLevel=verbose',
      ['--set=logLevel=verbose'],
      ["at '/logLevel'", "value must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'"],
    ],
    ['gossip.port=70000', ['--set=gossip.port=70000'], ["at '/gossip/port'", 'maximum']],
    ['metrics.port=0', ['--set=metrics.port=0'], ["at '/metrics/port'", 'minimum']],
    [
      'gossip.service.nodePort=70000',
      ['--set=gossip.service.nodePort=70000'],
      ["at '/gossip/service/nodePort'", 'maximum'],
    ],
    ['image.pullPolicy=always', ['--set=image.pullPolicy=always'], ["at '/image/pullPolicy'"]],
    [
      'imagePullSecrets as plain names',
      ['--set=imagePullSecrets={regcred}'],
      ["at '/imagePullSecrets/0'", 'want object'],
    ],
    [
      'an extraEnv entry without a name',
      ['--set=extraEnv[0].value=x'],
      ["at '/extraEnv/0'", "missing property 'name'"],
    ],
    ['extraArgs as a string', ['--set=extraArgs=--sync-interval=30s'], ["at '/extraArgs'", 'want array']],
    ['a podLabels value that is not a label value', ['--set=podLabels.team=a b'], ["at '/podLabels/team'"]],
    [
      'podDisruptionBudget.maxUnavailable=half',
      ['--set=podDisruptionBudget.maxUnavailable=half'],
      ["at '/podDisruptionBudget/maxUnavailable'"],
    ],
    // The templates' checks (what a schema cannot say).
    [
      'endpointTtl below 3 × heartbeatInterval',
      ['--set=endpointTtl=20s'],
      ['endpointTtl "20s" must be at least 3 × heartbeatInterval "10s"'],
    ],
    [
      'endpointTtl below 3 × heartbeatInterval (compound durations)',
      ['--set=endpointTtl=1m29s', '--set=heartbeatInterval=30s'],
      ['endpointTtl "1m29s" must be at least 3 × heartbeatInterval "30s"'],
    ],
    ['heartbeatInterval=0s', ['--set=heartbeatInterval=0s'], ['heartbeatInterval "0s" must be at least 1ms']],
    [
      'endpointTtl beyond the origin horizon',
      ['--set=endpointTtl=25h'],
      ['endpointTtl "25h" must be below the node\'s origin horizon'],
    ],
    ['no identity key', ['--set=identity.keyBase64='], ['identity: set identity.existingSecret']],
    ['no ClusterSet key', ['--set=clusterSetKey.keyBase64='], ['clusterSetKey: set clusterSetKey.existingSecret']],
    [
      'both identity.existingSecret and identity.keyBase64',
      ['--set=identity.existingSecret=id'],
      ['identity: set either identity.existingSecret or identity.keyBase64, not both'],
    ],
    [
      'both clusterSetKey.existingSecret and clusterSetKey.keyBase64',
      ['--set=clusterSetKey.existingSecret=psk'],
      ['clusterSetKey: set either clusterSetKey.existingSecret or clusterSetKey.keyBase64, not both'],
    ],
    ['metrics.port equal to gossip.port', ['--set=metrics.port=7946'], ['gossip.port and metrics.port are both 7946']],
    [
      'a nodePort on a ClusterIP Service',
      ['--set=gossip.service.type=ClusterIP', '--set=gossip.service.nodePort=30946'],
      ['gossip.service.nodePort is set but gossip.service.type is ClusterIP'],
    ],
    [
      'podLabels overriding a selector label',
      ['--set=podLabels.app\\.kubernetes\\.io/instance=other'],
      ['podLabels must not set app.kubernetes.io/instance'],
    ],
    [
      'an extraEnv entry with value and valueFrom',
      [
        '--set=extraEnv[0].name=A',
        '--set=extraEnv[0].value=b',
        '--set=extraEnv[0].valueFrom.fieldRef.fieldPath=status.podIP',
      ],
      ['extraEnv A: set value or valueFrom, not both'],
    ],
  ];
  it.each(bad)('refuses %s, naming it', async (_title, args, expected) => {
    // The keys first: a case's own --set of a key wins.
    const r = await template(...keys, ...args);
    expect(r.code).not.toBe(0);
    for (const text of expected) expect(r.stderr).toContain(text);
  });

  it('refuses to render without any values, naming the identity key', async () => {
    const r = await template();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('identity: set identity.existingSecret (a Secret with key `identity.key`)');
  });

  it('accepts the forms the documentation shows', async () => {
    const objects = await render(
      '--set=identity.existingSecret=mcs-gossip-identity',
      '--set=clusterSetKey.existingSecret=mcs-gossip-clusterset-key',
      '--set=clusterProperties.clusterId=cluster-a',
      '--set=clusterProperties.clusterSetName=prod',
      `--set=bootstrap={cluster-b=/dns4/gossip.cluster-b.example.com/tcp/7946/p2p/${peerId},/ip4/203.0.113.7/tcp/7946/p2p/${peerId},/ip6/2001:db8::7/tcp/7946/p2p/${peerId}}`,
      '--set=endpointTtl=1m30s',
      '--set=heartbeatInterval=1.5s',
      '--set=podDisruptionBudget.maxUnavailable=50%',
    );
    const args = nodeContainer(objects).args ?? [];
    // mcs-gossip run reads one number with one unit: a compound duration is passed as milliseconds.
    expect(args).toContain('--endpoint-ttl=90000ms');
    expect(args).toContain('--heartbeat-interval=1.5s');
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    const props = objects.filter((o) => o.kind === 'ClusterProperty') as (k8s.KubernetesObject & {
      spec: { value: string };
    })[];
    expect(Object.fromEntries(props.map((p) => [p.metadata?.name, p.spec.value]))).toEqual({
      'cluster.clusterset.k8s.io': 'cluster-a',
      'clusterset.k8s.io': 'prod',
      'bootstrap.mcs-gossip.x-k8s.io': expect.stringContaining(
        'cluster-b=/dns4/gossip.cluster-b.example.com/tcp/7946/p2p/',
      ),
    });
    const volumes = find<k8s.V1Deployment>(objects, 'Deployment').spec?.template.spec?.volumes ?? [];
    expect(volumes.map((v) => v.secret?.secretName)).toEqual(['mcs-gossip-identity', 'mcs-gossip-clusterset-key']);
  });

  it('renders the defaults: one replica, Recreate, no Lease Role, the announce address from the gossip Service', async () => {
    const objects = await render(...keys);
    const deploy = find<k8s.V1Deployment>(objects, 'Deployment');
    expect(deploy.spec?.strategy).toEqual({ type: 'Recreate' });
    expect(objects.some((o) => o.kind === 'Role' || o.kind === 'RoleBinding')).toBe(false);
    const c = nodeContainer(objects);
    expect(c.args).toContain('--announce-from-service=sys/x-mcs-gossip');
    expect(c.args?.some((a) => a.startsWith('--announce='))).toBe(false);
    expect(c.args).not.toContain('--leader-elect');
    expect(c.env).toContainEqual({
      name: 'MCS_GOSSIP_NODE_IP',
      valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } },
    });
    const rules = find<k8s.V1ClusterRole>(objects, 'ClusterRole').rules ?? [];
    expect(rules.some((r) => r.resources?.includes('leases'))).toBe(false);
    // The node creates and updates only its own ClusterProperty; `create` cannot be restricted by name.
    expect(rules.filter((r) => r.resources?.includes('clusterproperties'))).toEqual([
      { apiGroups: ['about.k8s.io'], resources: ['clusterproperties'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['about.k8s.io'], resources: ['clusterproperties'], verbs: ['create'] },
      {
        apiGroups: ['about.k8s.io'],
        resources: ['clusterproperties'],
        resourceNames: ['peer.mcs-gossip.x-k8s.io'],
        verbs: ['update', 'patch'],
      },
    ]);
    expect(rules).toEqual(await chartNodeRules());
  });

  it('renders the announce address: set (no Service lookup), NodePort (derived), ClusterIP (neither)', async () => {
    const set = nodeContainer(await render(...keys, '--set=gossip.announce={/dns4/gossip.example.com/tcp/7946}'));
    expect(set.args).toContain('--announce=/dns4/gossip.example.com/tcp/7946');
    expect(set.args?.some((a) => a.startsWith('--announce-from-service'))).toBe(false);
    expect(set.env?.some((e) => e.name === 'MCS_GOSSIP_NODE_IP')).toBe(false);

    const nodePort = await render(...keys, '--set=gossip.service.type=NodePort', '--set=gossip.service.nodePort=30946');
    expect(nodeContainer(nodePort).args).toContain('--announce-from-service=sys/x-mcs-gossip');
    expect(nodeContainer(nodePort).env).toContainEqual({
      name: 'MCS_GOSSIP_NODE_IP',
      valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } },
    });
    const svc = find<k8s.V1Service>(nodePort, 'Service', 'x-mcs-gossip');
    expect(svc.spec?.type).toBe('NodePort');
    expect(svc.spec?.ports?.[0]?.nodePort).toBe(30946);

    const clusterIp = nodeContainer(await render(...keys, '--set=gossip.service.type=ClusterIP'));
    expect(clusterIp.args?.some((a) => a.startsWith('--announce'))).toBe(false);
  });

  it('renders the new values: pull secrets, priority, spread, extra args and env, pod labels, leader election', async () => {
    const values = {
      replicas: 2,
      imagePullSecrets: [{ name: 'regcred' }],
      priorityClassName: 'mcs-critical',
      extraArgs: ['--sync-interval=30s'],
      extraEnv: [
        { name: 'FOO', value: 'bar' },
        { name: 'MCS_GOSSIP_NODE_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      ],
      podLabels: { team: 'net' },
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
      ],
    };
    const file = join(dir, 'features.yaml');
    await writeFile(file, YAML.stringify(values));
    const objects = await render(...keys, `--values=${file}`);
    const deploy = find<k8s.V1Deployment>(objects, 'Deployment');
    const pod = deploy.spec?.template;
    expect(deploy.spec?.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(pod?.spec?.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(pod?.spec?.priorityClassName).toBe('mcs-critical');
    expect(pod?.metadata?.labels).toEqual({
      'app.kubernetes.io/name': 'mcs-gossip',
      'app.kubernetes.io/instance': 'x',
      team: 'net',
    });
    expect(deploy.spec?.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'mcs-gossip',
      'app.kubernetes.io/instance': 'x',
    });
    expect(pod?.spec?.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'mcs-gossip', 'app.kubernetes.io/instance': 'x' } },
      },
    ]);
    const c = nodeContainer(objects);
    expect(c.args?.slice(-3)).toEqual(['--leader-elect', '--lease-name=x-mcs-gossip', '--sync-interval=30s']);
    expect(c.env).toContainEqual({ name: 'FOO', value: 'bar' });
    // extraEnv's MCS_GOSSIP_NODE_IP replaces the chart's (e.g. a node's external address instead of status.hostIP).
    expect(c.env?.filter((e) => e.name === 'MCS_GOSSIP_NODE_IP')).toEqual([
      { name: 'MCS_GOSSIP_NODE_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ]);

    const role = find<k8s.V1Role>(objects, 'Role');
    expect(role.metadata?.namespace).toBe('sys');
    expect(role.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['x-mcs-gossip'],
        verbs: ['get', 'update'],
      },
    ]);
    const binding = find<k8s.V1RoleBinding>(objects, 'RoleBinding');
    expect(binding.metadata?.namespace).toBe('sys');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'x-mcs-gossip' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'x-mcs-gossip', namespace: 'sys' }]);
  });

  it('has a `helm test` Pod: the node image, as the node runs, deleted on success', async () => {
    const objects = await render(...keys);
    const pod = find<k8s.V1Pod>(objects, 'Pod');
    expect(pod.metadata?.annotations).toEqual({
      'helm.sh/hook': 'test',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    const values = YAML.parse(await readFile(join(chart, 'values.yaml'), 'utf8')) as {
      podSecurityContext: unknown;
      securityContext: unknown;
    };
    expect(pod.spec?.securityContext).toEqual(values.podSecurityContext);
    const c = pod.spec?.containers[0];
    expect(c?.image).toBe(nodeContainer(objects).image);
    expect(c?.securityContext).toEqual(values.securityContext);
    expect(c?.command?.slice(0, 2)).toEqual(['node', '-e']);
    expect(c?.env).toEqual([{ name: 'READYZ_URL', value: 'http://x-mcs-gossip-metrics.sys.svc:9464/readyz' }]);
  });

  it("the `helm test` script exits 0 on 200 and otherwise prints the node's answer and exits 1", async () => {
    const pod = find<k8s.V1Pod>(await render(...keys), 'Pod');
    const script = pod.spec?.containers[0]?.command?.[2] ?? '';
    let status = 200;
    const server = createServer((_req, res) => {
      res.writeHead(status);
      res.end(
        status === 200
          ? 'ready: ok\n'
          : 'not ready: ClusterIdMissing: ClusterProperty cluster.clusterset.k8s.io is missing\n',
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
    const check = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, ['-e', script], { env: { ...process.env, READYZ_URL: url } });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (out += d.toString()));
        p.on('close', (code) => resolve({ code, out }));
      });
    try {
      expect(await check()).toEqual({ code: 0, out: `${url}: ready: ok\n` });
      status = 503;
      expect(await check()).toEqual({
        code: 1,
        out: `${url}: HTTP 503: not ready: ClusterIdMissing: ClusterProperty cluster.clusterset.k8s.io is missing\n`,
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const refused = await check();
    expect(refused.code).toBe(1);
    expect(refused.out).toContain('ECONNREFUSED');
  });

  it('ships exactly the CRDs of crds/, as copies (no symlinks)', async () => {
    const resync = 'charts/mcs-gossip/crds/ must be a copy of crds/: run `npm run chart:sync-crds`';
    const source = (await readdir(crdDir)).filter((f) => f.endsWith('.yaml')).sort();
    expect((await readdir(chartCrds)).sort(), resync).toEqual(source);
    for (const f of source) {
      expect((await lstat(join(chartCrds, f))).isSymbolicLink(), `${f} is a symlink (helm warns): ${resync}`).toBe(
        false,
      );
      expect(await readFile(join(chartCrds, f), 'utf8'), `${f} differs: ${resync}`).toBe(
        await readFile(join(crdDir, f), 'utf8'),
      );
    }
    const r = await template(...keys, '--include-crds');
    const rendered = (k8s.loadAllYaml(r.stdout) as k8s.KubernetesObject[]).filter(
      (o) => o.kind === 'CustomResourceDefinition',
    ) as k8s.V1CustomResourceDefinition[];
    const byName = (l: k8s.V1CustomResourceDefinition[]) =>
      Object.fromEntries(l.map((c) => [c.metadata?.name, c.spec]));
    expect(byName(rendered)).toEqual(byName(await loadCrds()));
  });

  it('prints NOTES that work: readiness through the API server, the peer entry, the order, the warnings', async () => {
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
    // The local cluster has its ClusterProperties already (set by the harness): this release must not make them.
    const lb = await dry();
    expect({ code: lb.code, stderr: lb.stderr }).toEqual({ code: 0, stderr: '' });
    const notes = lb.stdout.slice(lb.stdout.indexOf('NOTES:'));
    expect(notes).not.toContain('port-forward');
    expect(notes).toContain(
      'kubectl get --raw /api/v1/namespaces/ns/services/notes-mcs-gossip-metrics:9464/proxy/readyz',
    );
    expect(notes).toContain("kubectl get clusterproperty peer.mcs-gossip.x-k8s.io -o jsonpath='{.spec.value}");
    expect(notes).toContain('The first cluster of a ClusterSet needs no bootstrap peers');
    expect(notes).toContain(
      'announces:   the ingress IPs or hostnames of the LoadBalancer Service ns/notes-mcs-gossip, port 7946',
    );
    expect(notes).toContain('a key is given as keyBase64');
    expect(notes).not.toContain('gossip.service.type is ClusterIP');

    const clusterIp = await dry(
      '--set=gossip.service.type=ClusterIP',
      '--set=gossip.service.loadBalancerSourceRanges={10.0.0.0/8}',
    );
    expect({ code: clusterIp.code, stderr: clusterIp.stderr }).toEqual({ code: 0, stderr: '' });
    expect(clusterIp.stdout).toContain('WARNINGS');
    expect(clusterIp.stdout).toContain('gossip.service.type is ClusterIP and gossip.announce is empty');
    expect(clusterIp.stdout).toContain('gossip.service.loadBalancerSourceRanges is ignored');
    expect(clusterIp.stdout).toContain('clusterProperties.clusterId is empty');

    const announced = await dry('--set=gossip.announce={/ip4/203.0.113.7/tcp/7946}');
    expect(announced.stdout).toContain('announces:   /ip4/203.0.113.7/tcp/7946 (gossip.announce)');
  });

  it('installs and uninstalls on a real control plane', async () => {
    const c = state.clusters[0];
    if (c === undefined) throw new Error('no cluster');
    const identity = Buffer.from(encodeIdentityKey(await generateIdentityKey())).toString('base64');
    const psk = Buffer.from(generatePsk()).toString('base64');
    const bootstrap = `cluster-9=/ip4/127.0.0.9/tcp/7946/p2p/${peerId}`;
    const install = await helm(
      'install',
      'mcs',
      chart,
      `--kubeconfig=${c.kubeconfig}`,
      '--namespace=mcs-gossip-system',
      '--create-namespace',
      `--set=identity.keyBase64=${identity}`,
      `--set=clusterSetKey.keyBase64=${psk}`,
      `--set=bootstrap={${bootstrap}}`,
      // Leader election: the Lease's Role and RollingUpdate.
      '--set=replicas=2',
    );
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    expect(install.stdout).toContain('This cluster bootstraps from 1 peer(s)');

    const kc = kubeConfigFor(state, c.name);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const ns = 'mcs-gossip-system';

    const deploy = await apps.readNamespacedDeployment({ name: 'mcs-mcs-gossip', namespace: ns });
    const container = deploy.spec?.template.spec?.containers[0];
    expect(container?.args).toContain('--identity-key=/etc/mcs-gossip/identity/identity.key');
    expect(container?.args).toContain('--announce-from-service=mcs-gossip-system/mcs-mcs-gossip');
    expect(container?.args).toContain('--lease-name=mcs-mcs-gossip');
    expect(deploy.spec?.strategy?.type).toBe('RollingUpdate');
    expect(deploy.spec?.template.spec?.serviceAccountName).toBe('mcs-mcs-gossip');
    // kwok runs the pods (as fakes), so the Deployment's pods are scheduled and "Running".
    await eventually('the node pods Running', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns });
      return pods.items.filter((p) => p.status?.phase === 'Running').length === 2 ? true : undefined;
    });
    const secret = await core.readNamespacedSecret({ name: 'mcs-mcs-gossip-identity', namespace: ns });
    expect(secret.data?.['identity.key']).toBe(identity);
    const role = await rbac.readClusterRole({ name: 'mcs-mcs-gossip' });
    expect(role.rules).toEqual(await chartNodeRules());
    const leaseRole = await rbac.readNamespacedRole({ name: 'mcs-mcs-gossip', namespace: ns });
    expect(leaseRole.rules?.find((r) => r.resourceNames !== undefined)?.resourceNames).toEqual(['mcs-mcs-gossip']);
    const binding = await rbac.readNamespacedRoleBinding({ name: 'mcs-mcs-gossip', namespace: ns });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'mcs-mcs-gossip', namespace: ns }]);
    const prop = (await custom.getClusterCustomObject({
      group: 'about.k8s.io',
      version: 'v1beta1',
      plural: 'clusterproperties',
      name: 'bootstrap.mcs-gossip.x-k8s.io',
    })) as { spec: { value: string } };
    expect(prop.spec.value).toBe(bootstrap);
    const svc = await core.readNamespacedService({ name: 'mcs-mcs-gossip', namespace: ns });
    expect(svc.spec?.ports?.[0]?.port).toBe(7946);

    // The readiness path NOTES print finds the metrics Service and its port through the API server (the local
    // control plane may not reach kwok's fake pod IPs; a wrong port would answer "no service port").
    const readyz = await run(join(toolsBin, 'kubectl'), [
      `--kubeconfig=${c.kubeconfig}`,
      'get',
      '--raw',
      `/api/v1/namespaces/${ns}/services/mcs-mcs-gossip-metrics:9464/proxy/readyz`,
      '--request-timeout=10s',
    ]).then(
      () => '',
      (err: { stderr?: string }) => err.stderr ?? '',
    );
    expect(readyz).not.toMatch(/no service port|NotFound/);

    // The `helm test` Pod is valid for the API server (kwok would run it for ever: it completes only Jobs' pods).
    const hook = await helm(
      'template',
      'mcs',
      chart,
      `--namespace=${ns}`,
      kubeVersion,
      ...keys,
      '--show-only=templates/tests/readyz.yaml',
    );
    const testPod = k8s.loadYaml<k8s.V1Pod>(hook.stdout);
    await core.createNamespacedPod({ namespace: ns, body: testPod, dryRun: 'All' });

    // An upgrade with the release's values, as NOTES tells: a second bootstrap peer, the keys kept.
    const second = `cluster-8=/dns4/gossip.cluster-8.example.com/tcp/7946/p2p/${peerId}`;
    const upgrade = await helm(
      'upgrade',
      'mcs',
      chart,
      `--kubeconfig=${c.kubeconfig}`,
      '--namespace=mcs-gossip-system',
      '--reset-then-reuse-values',
      `--set=bootstrap={${bootstrap},${second}}`,
    );
    expect({ code: upgrade.code, stderr: upgrade.stderr }).toEqual({ code: 0, stderr: '' });
    const upgraded = (await custom.getClusterCustomObject({
      group: 'about.k8s.io',
      version: 'v1beta1',
      plural: 'clusterproperties',
      name: 'bootstrap.mcs-gossip.x-k8s.io',
    })) as { spec: { value: string } };
    expect(upgraded.spec.value).toBe(`${bootstrap},${second}`);
    expect((await core.readNamespacedSecret({ name: 'mcs-mcs-gossip-identity', namespace: ns })).data).toEqual({
      'identity.key': identity,
    });

    const uninstall = await helm('uninstall', 'mcs', `--kubeconfig=${c.kubeconfig}`, '--namespace=mcs-gossip-system');
    expect(uninstall.code).toBe(0);
    const gone = (read: () => Promise<unknown>) => async () => {
      try {
        await read();
        return undefined;
      } catch (err) {
        return err instanceof k8s.ApiException && err.code === 404 ? true : undefined;
      }
    };
    await eventually(
      'the ClusterRole gone',
      gone(() => rbac.readClusterRole({ name: 'mcs-mcs-gossip' })),
    );
    await eventually(
      'the Role gone',
      gone(() => rbac.readNamespacedRole({ name: 'mcs-mcs-gossip', namespace: ns })),
    );
  });
});
