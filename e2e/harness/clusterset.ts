// The local ClusterSet: N real Kubernetes control planes (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok with fake Nodes) as detached local processes, each with its own CA, ports and CIDRs.
// Used by the `npm run clusterset` command and, as a library, by the integration tests.
import { spawn } from 'node:child_process';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import YAML from 'yaml';
import { ignoreAlreadyExists } from './api-errors.js';
import { createClusterPki, type ClusterPki } from './pki.js';
import { freePorts } from './ports.js';
import { launchNode, machineAddress, planNodes, registerNodePod } from './nodes.js';
import { isAlive, startDetached, stopProcess, tail, type ProcessRecord, type StartedProcess } from './process.js';
import { eventually, sleep } from './wait.js';
import {
  createNetwork,
  destroyNetwork,
  inNetns,
  planNetwork,
  sh,
  type ClusterNet,
  type DataPlaneNet,
} from './dataplane.js';
import { writeExecWrapper } from './pod-sandbox.js';

import { crdDir, repoRoot, toolsBin } from './paths.js';

export { crdDir, repoRoot, toolsBin };

export const COMPONENTS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kwok',
  'mcs-gossip',
  // The data plane (`up --data-plane`, see dataplane.ts): the API server bridged into the cluster's netns,
  // kube-proxy and CoreDNS there, and the runner of the cluster's Pods.
  'api-socket',
  'api-bridge',
  'coredns',
  'kube-proxy',
  'pod-sandboxes',
] as const;
export type ComponentName = (typeof COMPONENTS)[number];

/** Controllers kube-controller-manager runs: enough for Deployments, EndpointSlices, namespaces, GC, tokens. */
export const CONTROLLERS = [
  'serviceaccount-token-controller',
  'serviceaccount-controller',
  'root-ca-certificate-publisher-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  'job-controller',
  'endpointslice-controller',
  'endpoints-controller',
  'pod-garbage-collector-controller',
  // Removes the node.kubernetes.io/not-ready taint the API server puts on new Nodes once kwok reports them Ready.
  'node-lifecycle-controller',
];

export const CLUSTER_ID_PROPERTY = 'cluster.clusterset.k8s.io';
export const CLUSTERSET_PROPERTY = 'clusterset.k8s.io';
export const FAKE_NODES_PER_CLUSTER = 3;

export interface ComponentState extends ProcessRecord {
  readonly name: ComponentName;
  readonly port: number;
  /** The URL polled for health. */
  readonly health: string;
  /** The full command line (program first): what `startComponent` runs again. */
  readonly argv: readonly string[];
  /** Environment the process was started with beyond the harness's own (kwok's PATH with the data plane). */
  readonly env?: Readonly<Record<string, string>>;
  /** mcs-gossip nodes: the PeerId and the gossip listen address. */
  readonly peerId?: string;
  readonly listen?: string;
}

export interface ClusterState {
  readonly name: string;
  readonly index: number;
  readonly server: string;
  /** A kubeconfig with only this cluster (current context = the cluster's name). */
  readonly kubeconfig: string;
  readonly serviceCidr: string;
  readonly podCidr: string;
  readonly auditLog: string;
  readonly components: ComponentState[];
}

export interface ClusterSetState {
  readonly version: 1;
  readonly dir: string;
  readonly clusterSetName: string;
  /** One kubeconfig with a context per cluster, named like the cluster; current context: the first cluster. */
  readonly kubeconfig: string;
  readonly toolsBin: string;
  readonly startedAt: string;
  readonly clusters: ClusterState[];
  /** The network of `up --data-plane` (absent without it). */
  readonly dataPlane?: DataPlaneNet;
}

export interface UpOptions {
  readonly dir: string;
  readonly clusters: number;
  readonly clusterSetName?: string;
  /** Deadline for the whole `up`, in ms (default 180 s). */
  readonly timeoutMs?: number;
  /** Extra command-line flags per component, e.g. for debugging (`{ 'kube-scheduler': ['-v=4'] }`). */
  readonly extraArgs?: Partial<Record<ComponentName, readonly string[]>>;
  /** Progress lines (default: stderr). */
  readonly onProgress?: (line: string) => void;
  /** Build the tools if needed (default true). */
  readonly buildTools?: boolean;
  /** Also run one mcs-gossip node per cluster (default false); extra `run` flags via extraArgs['mcs-gossip']. */
  readonly nodes?: boolean;
  /** Aborting stops `up` at its next wait; what it started is stopped again, as on any failure. */
  readonly signal?: AbortSignal;
  /**
   * Pods that run, kube-proxy and CoreDNS per cluster, in network namespaces routed to each other (default false;
   * needs root). See dataplane.ts and pod-sandbox.ts.
   */
  readonly dataPlane?: boolean;
}

/** `up` found a ClusterSet already running in the directory; nothing was changed. */
export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
}

/** A component exited or did not become healthy during `up`; everything started was stopped again. */
export class ComponentFailedError extends Error {
  override readonly name = 'ComponentFailedError';
  /** Ends any wait at once (see wait.ts isFatal). */
  readonly fatal = true;
  constructor(
    message: string,
    readonly cluster: string,
    readonly component: string,
    readonly log: string,
  ) {
    super(message);
  }
}

const STATE_FILE = 'state.json';

export async function readState(dir: string): Promise<ClusterSetState | undefined> {
  try {
    return JSON.parse(await readFile(join(resolve(dir), STATE_FILE), 'utf8')) as ClusterSetState;
  } catch {
    return undefined;
  }
}

export function runningComponents(state: ClusterSetState): ComponentState[] {
  return state.clusters.flatMap((c) => c.components.filter((p) => isAlive(p)));
}

/** Builds (or reuses from the cache) the control-plane programs; streams the build's progress. */
export async function ensureTools(onProgress: (line: string) => void = (l) => process.stderr.write(l + '\n')) {
  await new Promise<void>((res, rej) => {
    const child = spawn('bash', [join(repoRoot, 'e2e', 'tools', 'build.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onProgress(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', rej);
    child.once('exit', (code) =>
      code === 0 ? res() : rej(new Error(`building the tools failed (e2e/tools/build.sh exit ${code})`)),
    );
  });
  return toolsBin;
}

function tool(name: string): string {
  const p = join(toolsBin, name);
  if (!existsSync(p)) throw new Error(`${name} is not built: run \`npm run tools\` (missing ${p})`);
  return p;
}

interface ProbeTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/** One GET; true on HTTP 200. TLS probes of our own components' self-signed endpoints skip verification. */
function probe(url: string, tls?: ProbeTls): Promise<boolean> {
  return new Promise((res) => {
    const opts = { timeout: 2000, ...(tls ?? {}), rejectUnauthorized: tls?.ca !== undefined };
    const req = (url.startsWith('https:') ? httpsGet : httpGet)(url, opts, (r) => {
      r.resume();
      res(r.statusCode === 200);
    });
    req.once('error', () => res(false));
    req.once('timeout', () => {
      req.destroy();
      res(false);
    });
  });
}

interface Starting {
  readonly cluster: string;
  readonly proc: StartedProcess;
  readonly name: ComponentName;
}

/** Polls `check` until true; fails fast if the process exits, or at the deadline, naming component and log. */
async function waitHealthy(
  s: Starting,
  deadline: number,
  check: () => Promise<boolean>,
  what = 'healthy',
  signal?: AbortSignal,
) {
  let exited: string | undefined;
  void s.proc.exited.then((why) => (exited = why));
  for (;;) {
    signal?.throwIfAborted();
    if (exited !== undefined) {
      throw new ComponentFailedError(
        `${s.name} of ${s.cluster} exited during startup (${exited}); log: ${s.proc.log}\n${await tail(s.proc.log)}`,
        s.cluster,
        s.name,
        s.proc.log,
      );
    }
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new ComponentFailedError(
        `${s.name} of ${s.cluster} did not become ${what} in time; log: ${s.proc.log}\n${await tail(s.proc.log)}`,
        s.cluster,
        s.name,
        s.proc.log,
      );
    }
    await sleep(250);
  }
}

function kubeconfigFor(clusters: { name: string; server: string; pki: ClusterPki }[], files: Map<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    'current-context': clusters[0]?.name ?? '',
    clusters: clusters.map((c) => ({
      name: c.name,
      cluster: { server: c.server, 'certificate-authority-data': b64(files.get(c.pki.caCert)) },
    })),
    users: clusters.map((c) => ({
      name: `${c.name}-admin`,
      user: {
        'client-certificate-data': b64(files.get(c.pki.adminCert)),
        'client-key-data': b64(files.get(c.pki.adminKey)),
      },
    })),
    contexts: clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: `${c.name}-admin` } })),
  };
}

const b64 = (s: string | undefined) => Buffer.from(s ?? '').toString('base64');

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # Writes only, at Metadata level: lets tests count API writes per user (e.g. "zero writes while idle").
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`;

/** Service and pod CIDRs of cluster i (1-based): distinct per cluster, so imported addresses never collide. */
export function cidrsOf(index: number) {
  return { serviceCidr: `10.${100 + index}.0.0/16`, podCidr: `10.${200 + index}.0.0/16` };
}

/** kwok's stage files (shipped in its module zip): node initialisation and lease heartbeats, pod lifecycle. */
async function kwokConfigFiles(): Promise<string[]> {
  const stages = join(toolsBin, 'kwok-stages');
  const wanted = [
    'node/fast/node-initialize.yaml',
    'node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
    'pod/fast/pod-ready.yaml',
    'pod/fast/pod-complete.yaml',
    'pod/fast/pod-delete.yaml',
  ].map((f) => join(stages, f));
  const missing = wanted.filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`kwok stage files missing (${missing.join(', ')}): run \`npm run tools\``);
  return wanted;
}

/**
 * Starts a ClusterSet of `opts.clusters` clusters named cluster-1 … cluster-N in `opts.dir` and returns its state
 * once every cluster is ready. On any failure everything started is stopped and the error names the component.
 */
export async function up(opts: UpOptions): Promise<ClusterSetState> {
  const dir = resolve(opts.dir);
  const progress = opts.onProgress ?? ((l: string) => process.stderr.write(l + '\n'));
  if (!Number.isInteger(opts.clusters) || opts.clusters < 1 || opts.clusters > 20) {
    throw new RangeError(`--clusters must be a whole number from 1 to 20, got ${String(opts.clusters)}`);
  }
  await mkdir(dir, { recursive: true });
  const lock = await takeLock(join(dir, '.up.lock'));
  const started: (ComponentState | StartedProcess)[] = [];
  let wroteState = false;
  let madeNetwork = false;
  try {
    const previous = await readState(dir);
    if (previous !== undefined) {
      const alive = runningComponents(previous);
      if (alive.length > 0) {
        throw new AlreadyRunningError(
          `a ClusterSet of ${previous.clusters.length} clusters is already running in ${dir} ` +
            `(${alive.length} processes); run \`npm run clusterset -- down\` first`,
        );
      }
    }
    if (opts.buildTools !== false) await ensureTools(progress);
    opts.signal?.throwIfAborted();
    // A fresh start: remove what an earlier run left (its processes are all gone, checked above).
    for (const e of await readdir(dir)) if (e !== '.up.lock') await rm(join(dir, e), { recursive: true, force: true });

    const t0 = Date.now();
    const deadline = t0 + (opts.timeoutMs ?? 180_000);
    const clusterSetName = opts.clusterSetName ?? 'local-clusterset';
    const names = Array.from({ length: opts.clusters }, (_, i) => `cluster-${i + 1}`);
    const kwokConfigs = await kwokConfigFiles();
    await writeFile(join(dir, 'audit-policy.yaml'), AUDIT_POLICY);

    const prepared = await Promise.all(
      names.map(async (name, i) => {
        const cdir = join(dir, name);
        await mkdir(join(cdir, 'logs'), { recursive: true });
        const { serviceCidr, podCidr } = cidrsOf(i + 1);
        const firstServiceIp = serviceCidr.replace(/\.0\/16$/, '.1');
        const pki = await createClusterPki(join(cdir, 'pki'), name, [
          'DNS:localhost',
          'DNS:kubernetes',
          'DNS:kubernetes.default',
          'DNS:kubernetes.default.svc',
          'IP:127.0.0.1',
          `IP:${firstServiceIp}`,
        ]);
        const [etcdClient, etcdPeer, apiserver, kcm, scheduler, kwok] = (await freePorts(6)) as [
          number,
          number,
          number,
          number,
          number,
          number,
        ];
        return {
          name,
          index: i + 1,
          cdir,
          pki,
          serviceCidr,
          podCidr,
          ports: { etcdClient, etcdPeer, apiserver, kcm, scheduler, kwok },
          server: `https://127.0.0.1:${apiserver}`,
        };
      }),
    );

    // A data plane network an earlier run left (its processes are gone): removed, with or without --data-plane.
    if (previous?.dataPlane !== undefined) await destroyNetwork(previous.dataPlane.prefix);
    let net: DataPlaneNet | undefined;
    let execWrapper = '';
    if (opts.dataPlane === true) {
      if (process.getuid?.() !== 0)
        throw new Error('--data-plane needs root: it makes network namespaces and iptables rules');
      net = planNetwork(dir, prepared);
      progress(`making the data plane network (netns ${net.fabric}, ${net.clusters.map((c) => c.netns).join(', ')})`);
      madeNetwork = true;
      await createNetwork(net);
      execWrapper = await writeExecWrapper(join(dir, 'dataplane', 'bin'));
    }

    const pem = new Map<string, string>();
    for (const c of prepared)
      for (const f of [c.pki.caCert, c.pki.adminCert, c.pki.adminKey]) pem.set(f, await readFile(f, 'utf8'));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, YAML.stringify(kubeconfigFor(prepared, pem)), { mode: 0o600 });
    for (const c of prepared) {
      await writeFile(join(c.cdir, 'kubeconfig'), YAML.stringify(kubeconfigFor([c], pem)), { mode: 0o600 });
    }

    const extra = (n: ComponentName) => [...(opts.extraArgs?.[n] ?? [])];
    // The state is on disk from the first process on, each process recorded as it starts: an `up` killed half-way
    // (Ctrl-C) leaves nothing that `down` cannot find.
    const clusters: ClusterState[] = prepared.map((c) => ({
      name: c.name,
      index: c.index,
      server: c.server,
      kubeconfig: join(c.cdir, 'kubeconfig'),
      serviceCidr: c.serviceCidr,
      podCidr: c.podCidr,
      auditLog: join(c.cdir, 'logs', 'audit.log'),
      components: [],
    }));
    const state: ClusterSetState = {
      version: 1,
      dir,
      clusterSetName,
      kubeconfig,
      toolsBin,
      startedAt: new Date(t0).toISOString(),
      clusters,
      ...(net === undefined ? {} : { dataPlane: net }),
    };
    writeStateSync(state);
    wroteState = true;
    // Synchronous, right after the spawn: no turn of the event loop in which a killed `up` would forget a process.
    const record = (cluster: ClusterState, component: ComponentState) => {
      cluster.components.push(component);
      writeStateSync(state);
    };
    await Promise.all(
      prepared.map(async (c, ci) => {
        const cluster = clusters[ci] as ClusterState;
        const log = (n: string) => join(c.cdir, 'logs', `${n}.log`);
        const ckubeconfig = join(c.cdir, 'kubeconfig');
        const adminTls = { ca: pem.get(c.pki.caCert), cert: pem.get(c.pki.adminCert), key: pem.get(c.pki.adminKey) };
        const launch = (
          name: ComponentName,
          args: string[],
          port: number,
          health: string,
          how: { env?: Record<string, string>; netns?: string; program?: string } = {},
        ) => {
          const program = [how.program ?? tool(name), ...args, ...extra(name)];
          const argv = how.netns === undefined ? program : inNetns(how.netns, program);
          const proc = startDetached(argv[0] as string, argv.slice(1), log(name), repoRoot, how.env);
          started.push(proc);
          record(cluster, {
            name,
            port,
            health,
            argv,
            ...(how.env === undefined ? {} : { env: how.env }),
            ...processRecord(proc),
          });
          return { cluster: c.name, name, proc };
        };

        progress(`[${c.name}] starting etcd on 127.0.0.1:${c.ports.etcdClient}`);
        const etcdUrl = `http://127.0.0.1:${c.ports.etcdClient}`;
        const peerUrl = `http://127.0.0.1:${c.ports.etcdPeer}`;
        const etcd = launch(
          'etcd',
          [
            `--name=${c.name}`,
            `--data-dir=${join(c.cdir, 'etcd')}`,
            `--listen-client-urls=${etcdUrl}`,
            `--advertise-client-urls=${etcdUrl}`,
            `--listen-peer-urls=${peerUrl}`,
            `--initial-advertise-peer-urls=${peerUrl}`,
            `--initial-cluster=${c.name}=${peerUrl}`,
            '--unsafe-no-fsync=true',
            '--log-level=warn',
          ],
          c.ports.etcdClient,
          `${etcdUrl}/health`,
        );
        await waitHealthy(etcd, deadline, () => probe(`${etcdUrl}/health`), 'healthy', opts.signal);

        progress(`[${c.name}] starting kube-apiserver on ${c.server}`);
        const api = launch(
          'kube-apiserver',
          [
            `--etcd-servers=${etcdUrl}`,
            '--bind-address=127.0.0.1',
            '--advertise-address=127.0.0.1',
            // A loopback advertise address is refused by the endpoint reconciler; envtest turns it off too.
            '--endpoint-reconciler-type=none',
            `--secure-port=${c.ports.apiserver}`,
            `--cert-dir=${c.pki.dir}`,
            `--tls-cert-file=${c.pki.servingCert}`,
            `--tls-private-key-file=${c.pki.servingKey}`,
            `--client-ca-file=${c.pki.caCert}`,
            '--authorization-mode=RBAC',
            '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
            `--service-account-key-file=${c.pki.serviceAccountPub}`,
            `--service-account-signing-key-file=${c.pki.serviceAccountKey}`,
            `--service-cluster-ip-range=${c.serviceCidr}`,
            '--allow-privileged=true',
            `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`,
            `--audit-log-path=${join(c.cdir, 'logs', 'audit.log')}`,
            '--audit-log-maxsize=100',
            '--audit-log-maxbackup=1',
            // kubectl exec/logs: dial the kwok Node's InternalIP (127.0.0.1), not its unresolvable name.
            ...(net === undefined ? [] : ['--kubelet-preferred-address-types=InternalIP']),
          ],
          c.ports.apiserver,
          `${c.server}/readyz`,
        );
        await waitHealthy(api, deadline, () => probe(`${c.server}/readyz`, adminTls), 'ready (/readyz)', opts.signal);

        progress(`[${c.name}] starting kube-controller-manager, kube-scheduler, kwok`);
        const delegated = [
          `--kubeconfig=${ckubeconfig}`,
          `--authentication-kubeconfig=${ckubeconfig}`,
          `--authorization-kubeconfig=${ckubeconfig}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
        ];
        const kcm = launch(
          'kube-controller-manager',
          [
            ...delegated,
            `--secure-port=${c.ports.kcm}`,
            `--controllers=${CONTROLLERS.join(',')}`,
            `--service-account-private-key-file=${c.pki.serviceAccountKey}`,
            `--root-ca-file=${c.pki.caCert}`,
            `--service-cluster-ip-range=${c.serviceCidr}`,
            `--cert-dir=${join(c.cdir, 'kcm-certs')}`,
          ],
          c.ports.kcm,
          `https://127.0.0.1:${c.ports.kcm}/healthz`,
        );
        const sched = launch(
          'kube-scheduler',
          [...delegated, `--secure-port=${c.ports.scheduler}`, `--cert-dir=${join(c.cdir, 'scheduler-certs')}`],
          c.ports.scheduler,
          `https://127.0.0.1:${c.ports.scheduler}/healthz`,
        );
        const cnet = net?.clusters.find((x) => x.name === c.name);
        if (cnet !== undefined) {
          const kc = new k8s.KubeConfig();
          kc.loadFromFile(ckubeconfig);
          await installKwokCrds(kc, deadline);
        }
        const kwokUrl = `${cnet === undefined ? 'http' : 'https'}://127.0.0.1:${c.ports.kwok}/healthz`;
        const kwok = launch(
          'kwok',
          [
            `--kubeconfig=${ckubeconfig}`,
            '--manage-all-nodes=false',
            '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
            `--cidr=${c.podCidr}`,
            '--node-ip=127.0.0.1',
            '--node-lease-duration-seconds=40',
            `--server-address=127.0.0.1:${c.ports.kwok}`,
            ...kwokConfigs.map((f) => `--config=${f}`),
            // The data plane: kwok serves exec and logs as the Nodes' kubelet (TLS, the port in daemonEndpoints),
            // from per-Pod Exec and Logs objects the Pods' runner writes.
            ...(cnet === undefined
              ? []
              : [
                  `--tls-cert-file=${c.pki.servingCert}`,
                  `--tls-private-key-file=${c.pki.servingKey}`,
                  `--node-port=${c.ports.kwok}`,
                  '--enable-crds=Exec,Logs',
                ]),
          ],
          c.ports.kwok,
          kwokUrl,
          // Our patched kwok runs every exec'd command through the wrapper that enters the Pod (pod-sandbox.ts).
          cnet === undefined ? {} : { env: { KWOK_EXEC_WRAPPER: execWrapper } },
        );
        await Promise.all([
          waitHealthy(
            kcm,
            deadline,
            () => probe(`https://127.0.0.1:${c.ports.kcm}/healthz`, {}),
            'healthy',
            opts.signal,
          ),
          waitHealthy(
            sched,
            deadline,
            () => probe(`https://127.0.0.1:${c.ports.scheduler}/healthz`, {}),
            'healthy',
            opts.signal,
          ),
          waitHealthy(
            kwok,
            deadline,
            () => probe(kwokUrl, cnet === undefined ? undefined : {}),
            'healthy',
            opts.signal,
          ),
        ]);

        progress(`[${c.name}] installing CRDs, ClusterProperties and ${FAKE_NODES_PER_CLUSTER} kwok Nodes`);
        const kc = new k8s.KubeConfig();
        kc.loadFromFile(ckubeconfig);
        const all = { kcm, sched, kwok, api };
        const watchdog = (): Starting | undefined => {
          opts.signal?.throwIfAborted();
          return Object.values(all).find((s) => !isAlive(s.proc));
        };
        await bootstrapCluster(kc, c.name, c.index, clusterSetName, c.podCidr, deadline, watchdog);
        if (cnet !== undefined) {
          progress(`[${c.name}] starting the data plane in netns ${cnet.netns}: kube-proxy, CoreDNS, the Pods' runner`);
          await startDataPlane(c, cnet, ckubeconfig, kc, launch, deadline, opts.signal);
        }
        progress(`[${c.name}] ready`);
      }),
    );

    if (opts.nodes === true) {
      progress(`starting ${clusters.length} mcs-gossip nodes`);
      const plans = await planNodes(dir, clusters, repoRoot, extra('mcs-gossip'));
      const podIp = machineAddress();
      if (podIp === undefined)
        progress('not registering the nodes as Pods: this machine has no non-loopback IPv4 address to proxy to');
      await Promise.all(
        plans.map(async (plan) => {
          const cluster = clusters.find((c) => c.name === plan.cluster) as ClusterState;
          if (podIp !== undefined) {
            const kc = new k8s.KubeConfig();
            kc.loadFromFile(cluster.kubeconfig);
            await registerNodePod(kc, plan, podIp);
          }
          const log = join(dir, plan.cluster, 'logs', 'mcs-gossip.log');
          const proc = launchNode(plan.argv, log, repoRoot);
          started.push(proc);
          const health = `http://${plan.host}:${plan.metricsPort}/readyz`;
          record(cluster, {
            name: 'mcs-gossip',
            port: plan.metricsPort,
            health,
            argv: plan.argv,
            peerId: plan.peerId,
            listen: plan.listen,
            ...processRecord(proc),
          });
          await waitHealthy(
            { cluster: plan.cluster, name: 'mcs-gossip', proc },
            deadline,
            () => probe(health),
            'ready',
            opts.signal,
          );
          progress(`[${plan.cluster}] mcs-gossip node ${plan.peerId} on ${plan.listen} ready`);
        }),
      );
    }

    progress(`ClusterSet "${clusterSetName}" of ${clusters.length} clusters ready in ${Date.now() - t0} ms`);
    return state;
  } catch (err) {
    if (started.length > 0) {
      progress(`up failed: stopping the ${started.length} processes it started`);
      await Promise.all(started.map((p) => stopProcess(p, 3000)));
    }
    // Only a state this `up` wrote: never the record of a ClusterSet already running here.
    if (wroteState) await rm(join(dir, STATE_FILE), { force: true });
    if (madeNetwork) await destroyNetwork(planNetwork(dir, []).prefix);
    throw err;
  } finally {
    await lock.close();
    await rm(join(dir, '.up.lock'), { force: true });
  }
}

/** What identifies a started process on disk (the `exited` promise stays in memory). */
function processRecord(p: StartedProcess): ProcessRecord {
  return { pid: p.pid, startTicks: p.startTicks, command: p.command, log: p.log };
}

/** Writes state.json atomically (temp file + rename): a concurrent `status` never reads half a file. */
function writeStateSync(state: ClusterSetState): void {
  const file = join(state.dir, STATE_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}

function findComponent(state: ClusterSetState, cluster: string, name: ComponentName) {
  const c = state.clusters.find((x) => x.name === cluster);
  const i = c?.components.findIndex((p) => p.name === name) ?? -1;
  if (c === undefined || i < 0) throw new Error(`no ${name} in ${cluster} of the ClusterSet at ${state.dir}`);
  return { c, i, p: c.components[i] as ComponentState };
}

/** Stops one component (e.g. a cluster's mcs-gossip node), as a crash or maintenance would. */
export async function stopComponent(state: ClusterSetState, cluster: string, name: ComponentName): Promise<void> {
  await stopProcess(findComponent(state, cluster, name).p);
}

/** How {@link startComponent} starts a component again. */
export interface StartOptions {
  /** Probe this URL instead of the component's health URL (e.g. a node's `/healthz` while it stays unready). */
  readonly healthUrl?: string;
  /** Extra environment of the process (e.g. libfaketime's, for a clock that is off). */
  readonly env?: Readonly<Record<string, string>>;
  /** A different command line (program first), kept for later restarts: e.g. another build of the node. */
  readonly argv?: readonly string[];
}

/** Starts a stopped component again with its original command line and waits until it is healthy. */
export async function startComponent(
  state: ClusterSetState,
  cluster: string,
  name: ComponentName,
  timeoutMs = 60_000,
  options: StartOptions | string = {},
): Promise<ComponentState> {
  if (typeof options === 'string') options = { healthUrl: options }; // the health URL alone
  const { c, i, p } = findComponent(state, cluster, name);
  if (isAlive(p)) throw new Error(`${name} of ${cluster} is still running (pid ${p.pid})`);
  if (options.healthUrl === undefined && !/^https?:/.test(p.health)) {
    throw new Error(
      `${name} of ${cluster} is part of the data plane and is not restarted alone: restart the ClusterSet`,
    );
  }
  const argv = options.argv ?? p.argv;
  const [program, ...args] = argv;
  const env = p.env === undefined && options.env === undefined ? undefined : { ...p.env, ...options.env };
  const proc = startDetached(program as string, args, p.log, repoRoot, env);
  const next: ComponentState = { ...p, argv: [...argv], ...processRecord(proc) };
  c.components[i] = next;
  writeStateSync(state);
  const url = options.healthUrl ?? p.health;
  await waitHealthy({ cluster, name, proc }, Date.now() + timeoutMs, () =>
    probe(url, url.startsWith('https:') ? {} : undefined),
  );
  return next;
}

/** The `up` lock of a directory: holds the owner's pid; a lock whose owner is gone (killed) is taken over. */
async function takeLock(file: string) {
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      return handle;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const owner = Number(await readFile(file, 'utf8').catch(() => ''));
      let alive: boolean;
      try {
        alive = owner > 0 && process.kill(owner, 0);
      } catch {
        alive = false;
      }
      if (alive) throw new AlreadyRunningError(`another \`up\` (pid ${owner}) is in progress in ${dirname(file)}`);
      await rm(file, { force: true });
    }
  }
}

/** Stops every process `up` started in `dir` (reverse start order per cluster). Returns how many were running. */
export async function down(dir: string): Promise<number> {
  const state = await readState(dir);
  if (state === undefined) return 0;
  const alive = runningComponents(state).length;
  await Promise.all(
    state.clusters.map(async (c) => {
      for (const p of [...c.components].reverse()) await stopProcess(p);
    }),
  );
  if (state.dataPlane !== undefined) await destroyNetwork(state.dataPlane.prefix);
  await rm(join(resolve(dir), STATE_FILE), { force: true });
  return alive;
}

/** kwok's Exec and Logs CRDs (from its module, copied by build.sh), Established before kwok starts watching them. */
async function installKwokCrds(kc: k8s.KubeConfig, deadline: number): Promise<void> {
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const names = ['execs', 'logs'];
  for (const n of names) {
    const file = join(toolsBin, 'kwok-crds', `kwok.x-k8s.io_${n}.yaml`);
    if (!existsSync(file)) throw new Error(`kwok's CRDs are missing (${file}): run \`npm run tools\``);
    const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(await readFile(file, 'utf8'));
    await ext.createCustomResourceDefinition({ body: crd }).catch(ignoreAlreadyExists);
  }
  await eventually(
    "kwok's Exec and Logs CRDs to be Established",
    async () => {
      for (const n of names) {
        const crd = await ext.readCustomResourceDefinition({ name: `${n}.kwok.x-k8s.io` });
        if (!crd.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True')) return undefined;
      }
      return true;
    },
    deadline - Date.now(),
  );
}

type Launch = (
  name: ComponentName,
  args: string[],
  port: number,
  health: string,
  how?: { env?: Record<string, string>; netns?: string; program?: string },
) => { cluster: string; name: ComponentName; proc: StartedProcess };

/** True once `argv`, run in the netns, exits 0 (a probe from inside: the host cannot reach the netns's loopback). */
async function probeInNetns(
  netns: string,
  argv: readonly string[],
  ok: (stdout: string) => boolean = () => true,
): Promise<boolean> {
  return sh(inNetns(netns, argv)).then(ok, () => false);
}

/**
 * The data plane of one cluster, in its netns: the API server bridged in at the same address, CoreDNS behind a
 * kube-dns Service (the Pods' nameserver), kube-proxy in iptables mode, and the runner that gives Pods sandboxes.
 */
async function startDataPlane(
  c: { name: string; cdir: string; ports: { apiserver: number }; pki: ClusterPki },
  net: ClusterNet,
  kubeconfig: string,
  kc: k8s.KubeConfig,
  launch: Launch,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const socket = join(c.cdir, 'api.sock');
  const api = c.ports.apiserver;
  const root = launch('api-socket', [`UNIX-LISTEN:${socket},fork,unlink-early`, `TCP:127.0.0.1:${api}`], api, socket, {
    program: '/usr/bin/socat',
  });
  const bridge = launch(
    'api-bridge',
    [`TCP-LISTEN:${api},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socket}`],
    api,
    `netns ${net.netns}`,
    { program: '/usr/bin/socat', netns: net.netns },
  );
  const curl = (url: string) => ['curl', '-sfk', '-o', '/dev/null', '--max-time', '2', url];
  await waitHealthy(
    bridge,
    deadline,
    // Any HTTP answer (401 without a client certificate) means the bridge reaches the API server.
    () =>
      probeInNetns(net.netns, ['curl', '-sk', '-o', '/dev/null', '--max-time', '2', `https://127.0.0.1:${api}/livez`]),
    'bridging the API server',
    signal,
  );
  if (!isAlive(root.proc)) throw new Error(`socat (API socket of ${c.name}) exited; log ${root.proc.log}`);

  // kube-dns: a ClusterIP Service whose endpoint is CoreDNS on the cluster netns's address.
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const dnsPorts = [
    { name: 'dns', port: 53, protocol: 'UDP' },
    { name: 'dns-tcp', port: 53, protocol: 'TCP' },
  ];
  await core
    .createNamespacedService({
      namespace: 'kube-system',
      body: {
        metadata: { name: 'kube-dns', labels: { 'k8s-app': 'kube-dns' } },
        spec: { clusterIP: net.dnsServiceIp, ports: dnsPorts.map((p) => ({ ...p, targetPort: 53 })) },
      },
    })
    .catch(ignoreAlreadyExists);
  await discovery
    .createNamespacedEndpointSlice({
      namespace: 'kube-system',
      body: {
        metadata: {
          name: 'kube-dns-coredns',
          labels: { 'kubernetes.io/service-name': 'kube-dns', 'endpointslice.kubernetes.io/managed-by': 'mcs-harness' },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [net.nodeIp], conditions: { ready: true } }],
        ports: dnsPorts,
      },
    })
    .catch(ignoreAlreadyExists);

  const corefile = join(c.cdir, 'Corefile');
  await writeFile(
    corefile,
    `.:53 {
    bind ${net.nodeIp}
    errors
    health 127.0.0.1:8080
    kubernetes cluster.local clusterset.local {
        kubeconfig ${kubeconfig} ${c.name}
        multicluster clusterset.local
        ttl 5
    }
}
`,
  );
  const dns = launch('coredns', ['-conf', corefile], 53, `netns ${net.netns}`, { netns: net.netns });
  const proxy = launch(
    'kube-proxy',
    [
      `--kubeconfig=${kubeconfig}`,
      '--proxy-mode=iptables',
      '--hostname-override=kwok-node-0',
      `--cluster-cidr=${net.podCidr}`,
      '--conntrack-max-per-core=0',
      '--metrics-bind-address=127.0.0.1:10249',
      '--healthz-bind-address=127.0.0.1:10256',
    ],
    10256,
    `netns ${net.netns}`,
    { netns: net.netns },
  );
  await Promise.all([
    waitHealthy(
      dns,
      deadline,
      () =>
        probeInNetns(
          net.netns,
          [
            'dig',
            '+short',
            '+time=1',
            '+tries=1',
            `@${net.nodeIp}`,
            'kubernetes.default.svc.cluster.local',
            // An address, not an empty answer (dig exits 0 on SERVFAIL too).
          ],
          (out) => /^\d+\.\d+\.\d+\.\d+$/m.test(out),
        ),
      'answering',
      signal,
    ),
    // kube-proxy's /healthz is 200 once it has synced its rules.
    waitHealthy(
      proxy,
      deadline,
      () => probeInNetns(net.netns, curl('http://127.0.0.1:10256/healthz')),
      'synced',
      signal,
    ),
  ]);
  const runner = launch(
    'pod-sandboxes',
    [
      '--import',
      'tsx',
      join(repoRoot, 'e2e', 'harness', 'pod-sandbox-main.ts'),
      `--dir=${dirname(c.cdir)}`,
      `--cluster=${c.name}`,
    ],
    0,
    'log',
    { program: process.execPath },
  );
  // Ready once it says it follows the Pods (it has read the state and made its API client).
  await waitHealthy(
    runner,
    deadline,
    async () => (await readFile(runner.proc.log, 'utf8').catch(() => '')).includes('following the Pods'),
    'following the Pods',
    signal,
  );
}

/** CRDs (Established), the two ClusterProperties, fake Nodes (Ready via kwok), and the default ServiceAccount. */
async function bootstrapCluster(
  kc: k8s.KubeConfig,
  name: string,
  index: number,
  clusterSetName: string,
  podCidr: string,
  deadline: number,
  watchdog: () => Starting | undefined,
): Promise<void> {
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const check = async (what: string) => {
    const dead = watchdog();
    if (dead !== undefined) {
      throw new ComponentFailedError(
        `${dead.name} of ${name} exited while waiting for ${what}; log: ${dead.proc.log}\n${await tail(dead.proc.log)}`,
        name,
        dead.name,
        dead.proc.log,
      );
    }
  };
  const crds = await loadCrds();
  for (const crd of crds) {
    await ext.createCustomResourceDefinition({ body: crd }).catch(ignoreAlreadyExists);
  }
  for (const crd of crds) {
    const crdName = crd.metadata?.name ?? '';
    await eventually(
      `CRD ${crdName} to be Established in ${name}`,
      async () => {
        await check(`CRD ${crdName}`);
        const got = await ext.readCustomResourceDefinition({ name: crdName });
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      },
      deadline - Date.now(),
    );
  }
  const props = { [CLUSTER_ID_PROPERTY]: name, [CLUSTERSET_PROPERTY]: clusterSetName };
  for (const [prop, value] of Object.entries(props)) {
    await eventually(
      `ClusterProperty ${prop} in ${name}`,
      async () => {
        await custom
          .createClusterCustomObject({
            group: 'about.k8s.io',
            version: 'v1beta1',
            plural: 'clusterproperties',
            body: {
              apiVersion: 'about.k8s.io/v1beta1',
              kind: 'ClusterProperty',
              metadata: { name: prop },
              spec: { value },
            },
          })
          .catch(ignoreAlreadyExists);
        return true;
      },
      deadline - Date.now(),
    );
  }
  const base = podCidr.replace(/\.0\.0\/16$/, '');
  for (let n = 0; n < FAKE_NODES_PER_CLUSTER; n++) {
    await core
      .createNode({
        body: {
          metadata: {
            name: `kwok-node-${n}`,
            annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
            labels: {
              type: 'kwok',
              'kubernetes.io/hostname': `kwok-node-${n}`,
              'kubernetes.io/os': 'linux',
              'kubernetes.io/arch': 'amd64',
              'topology.kubernetes.io/zone': `zone-${String.fromCharCode(97 + n)}`,
            },
          },
          spec: { podCIDR: `${base}.${n}.0/24`, podCIDRs: [`${base}.${n}.0/24`] },
          status: {
            allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
            capacity: { cpu: '32', memory: '256Gi', pods: '110' },
          },
        },
      })
      .catch(ignoreAlreadyExists);
  }
  await eventually(
    `kwok Nodes to become Ready in ${name} (cluster index ${index})`,
    async () => {
      await check('Nodes');
      const nodes = await core.listNode();
      const ready = nodes.items.filter((n) =>
        n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready.length >= FAKE_NODES_PER_CLUSTER ? true : undefined;
    },
    deadline - Date.now(),
  );
  await eventually(
    `the default ServiceAccount in ${name} (kube-controller-manager)`,
    async () => {
      await check('the default ServiceAccount');
      await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
      return true;
    },
    deadline - Date.now(),
  );
}

/**
 * The CRD files under crds/, as the client's typed models. Parsed with the client's own `loadAllYaml`, which maps
 * JSON names to model fields (`enum` → `_enum`, `x-kubernetes-list-type` → `x_kubernetes_list_type`): a plain
 * parsed object handed to the typed API would silently lose those fields on serialization.
 */
export async function loadCrds(): Promise<k8s.V1CustomResourceDefinition[]> {
  const files = (await readdir(crdDir)).filter((f) => f.endsWith('.yaml')).sort();
  const out: k8s.V1CustomResourceDefinition[] = [];
  for (const f of files) {
    for (const obj of k8s.loadAllYaml(await readFile(join(crdDir, f), 'utf8'))) {
      const crd = obj as k8s.V1CustomResourceDefinition;
      if (crd.kind !== 'CustomResourceDefinition') throw new Error(`${f}: expected a CustomResourceDefinition`);
      out.push(crd);
    }
  }
  return out;
}

/** A KubeConfig for one cluster of a running ClusterSet (context = the cluster's name). */
export function kubeConfigFor(state: ClusterSetState, cluster: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  kc.setCurrentContext(cluster);
  return kc;
}
