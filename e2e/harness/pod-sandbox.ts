// Pods that run, for the data plane of the local ClusterSet (`up --data-plane`). kwok schedules Pods on its fake
// Nodes, gives each an IP from the Node's podCIDR and reports it Running; this runner, one per cluster, makes that true:
//
// - a sandbox per Pod, as a container runtime's pause container: a process in a new network, UTS and mount namespace,
//   with the Pod's IP on `eth0` (a veth to the cluster netns, routed there as <ip>/32), the Pod's name as hostname, and
//   resolv.conf (the cluster's kube-dns Service, the Pod's search path, ndots:5) and /etc/hosts bind-mounted;
// - each container with a `command` runs as a process in the sandbox's namespaces: the host's programs (sh, socat,
//   nslookup, dig, nc, curl), since there is no image to unpack; `$(VAR)` expanded, env values and pod fieldRefs set;
//   restarted 1 s after it exits, as restartPolicy Always does. A container without a command runs nothing;
// - `kubectl exec` works: kwok serves it with a per-Pod `Exec` object (owned by the Pod) naming the sandbox; kwok's PATH
//   holds only wrappers (see EXEC_PROGRAMS) that enter the sandbox's namespaces, so an exec'd command runs in the Pod;
// - `kubectl logs` works: a per-Pod `Logs` object points kwok at each container's log file.
//
// Why a runner and not a kubelet with containerd: these machines have no container images of the test programs and
// no registry beyond the local one; a process in a sandbox gives the Pod's network identity, which is all the data
// plane tests need, at a few ms per Pod. docs/conformance.md says more.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, closeSync } from 'node:fs';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { ClusterNet } from './dataplane.js';
import { sh } from './dataplane.js';

/** Programs `kubectl exec` can run in a Pod (each a wrapper in the exec bin dir). */
export const EXEC_PROGRAMS = [
  'sh',
  'bash',
  'cat',
  'curl',
  'dig',
  'echo',
  'env',
  'getent',
  'host',
  'hostname',
  'ip',
  'ls',
  'nc',
  'nslookup',
  'printf',
  'sleep',
  'socat',
  'timeout',
  'true',
] as const;

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Writes the exec wrappers into `binDir`: kwok runs with PATH=binDir, so an exec'd program enters the Pod. */
export async function writeExecWrappers(binDir: string): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const wrapper = join(binDir, 'pod-exec');
  await writeFile(
    wrapper,
    `#!/bin/sh
# kwok runs an exec'd command on the host; this runs it in the Pod's namespaces instead. MCS_POD_PID, the Pod's
# sandbox process, comes from the Pod's kwok Exec object (e2e/harness/pod-sandbox.ts).
name=\${0##*/}
PATH=${SYSTEM_PATH}
export PATH
pid=$MCS_POD_PID
unset MCS_POD_PID
[ -n "$pid" ] || { echo "$name: no sandbox for this Pod (no MCS_POD_PID)" >&2; exit 126; }
exec nsenter -t "$pid" -n -u -m -- "$name" "$@"
`,
  );
  await chmod(wrapper, 0o755);
  for (const p of EXEC_PROGRAMS) {
    await rm(join(binDir, p), { force: true });
    await symlink('pod-exec', join(binDir, p));
  }
}

interface Sandbox {
  readonly uid: string;
  readonly key: string;
  readonly ip: string;
  readonly pause: ChildProcess;
  readonly hostVeth: string;
  readonly dir: string;
  readonly containers: Map<string, { proc: ChildProcess | undefined; restarts: number; timer?: NodeJS.Timeout }>;
  stopped: boolean;
}

export interface PodSandboxesInit {
  readonly kubeConfig: k8s.KubeConfig;
  readonly net: ClusterNet;
  /** Where sandbox files and container logs go. */
  readonly dir: string;
  readonly log: (line: string) => void;
  /** How often the Pods are listed (default 300 ms). */
  readonly intervalMs?: number;
}

const KWOK_GROUP = 'kwok.x-k8s.io';
const KWOK_VERSION = 'v1alpha1';

/** Follows a cluster's Pods on kwok Nodes and keeps one sandbox per Running Pod with an IP. */
export class PodSandboxes {
  readonly #init: PodSandboxesInit;
  readonly #core: k8s.CoreV1Api;
  readonly #custom: k8s.CustomObjectsApi;
  readonly #sandboxes = new Map<string, Sandbox>();
  /** Pods whose sandbox failed, by uid: the message (logged once) and when to try again (5 s later). */
  readonly #failed = new Map<string, { message: string; retryAt: number }>();
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(init: PodSandboxesInit) {
    this.#init = init;
    this.#core = init.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.#custom = init.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  }

  start(): void {
    const tick = () => {
      this.#pass = this.#pass
        .then(() => this.#sync())
        .catch((err: unknown) => this.#init.log(`sync failed: ${err instanceof Error ? err.message : String(err)}`));
      void this.#pass.then(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#init.intervalMs ?? 300);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#pass;
    await Promise.all([...this.#sandboxes.values()].map((s) => this.#teardown(s)));
  }

  async #sync(): Promise<void> {
    const pods = await this.#core.listPodForAllNamespaces();
    const wanted = new Map<string, k8s.V1Pod>();
    for (const p of pods.items) {
      const uid = p.metadata?.uid;
      if (uid === undefined || !runsHere(p, this.#init.net)) continue;
      wanted.set(uid, p);
    }
    for (const uid of this.#failed.keys()) if (!wanted.has(uid)) this.#failed.delete(uid);
    for (const [uid, s] of this.#sandboxes) {
      if (!wanted.has(uid)) {
        this.#sandboxes.delete(uid);
        await this.#teardown(s);
        this.#init.log(`${s.key}: stopped`);
      }
    }
    for (const [uid, pod] of wanted) {
      if (this.#sandboxes.has(uid)) continue;
      const failed = this.#failed.get(uid);
      if (failed !== undefined && Date.now() < failed.retryAt) continue;
      try {
        const s = await this.#create(pod);
        this.#sandboxes.set(uid, s);
        this.#failed.delete(uid);
        this.#init.log(`${s.key}: running at ${s.ip} (sandbox pid ${s.pause.pid})`);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (failed?.message !== msg) this.#init.log(`${podKey(pod)}: sandbox failed (retry in 5 s): ${msg}`);
        this.#failed.set(uid, { message: msg, retryAt: Date.now() + 5000 });
      }
    }
  }

  async #create(pod: k8s.V1Pod): Promise<Sandbox> {
    const meta = pod.metadata as k8s.V1ObjectMeta;
    const uid = meta.uid as string;
    const ip = pod.status?.podIP as string;
    const key = podKey(pod);
    const dir = join(this.#init.dir, `${meta.namespace}_${meta.name}_${uid.slice(0, 8)}`);
    await mkdir(dir, { recursive: true });
    const net = this.#init.net;
    const hostname = (pod.spec?.hostname ?? meta.name ?? 'pod').slice(0, 63);
    const ns = meta.namespace ?? 'default';
    await writeFile(
      join(dir, 'resolv.conf'),
      `search ${ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver ${net.dnsServiceIp}\noptions ndots:5\n`,
    );
    const fqdn = pod.spec?.subdomain !== undefined ? ` ${hostname}.${pod.spec.subdomain}.${ns}.svc.cluster.local` : '';
    await writeFile(join(dir, 'hosts'), `127.0.0.1\tlocalhost\n${ip}\t${hostname}${fqdn}\n`);
    await writeFile(join(dir, 'hostname'), `${hostname}\n`);

    const pause = spawn('unshare', ['--net', '--uts', '--mount', '--propagation', 'private', 'sleep', 'infinity'], {
      stdio: 'ignore',
    });
    const pid = pause.pid;
    if (pid === undefined) throw new Error('could not start the sandbox process (unshare)');
    const sandbox: Sandbox = {
      uid,
      key,
      ip,
      pause,
      hostVeth: `h${createHash('sha256').update(uid).digest('hex').slice(0, 10)}`,
      dir,
      containers: new Map(),
      stopped: false,
    };
    try {
      await waitForNamespaces(pid);
      const v = sandbox.hostVeth;
      await sh(['ip', '-n', net.netns, 'link', 'add', v, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
      await sh([
        'ip',
        'netns',
        'exec',
        net.netns,
        'sysctl',
        '-q',
        '-w',
        `net.ipv4.conf.${v}.proxy_arp=1`,
        `net.ipv4.neigh.${v}.proxy_delay=0`,
      ]);
      await sh(['ip', '-n', net.netns, 'link', 'set', v, 'up']);
      await sh(['ip', '-n', net.netns, 'route', 'replace', `${ip}/32`, 'dev', v]);
      const inPod = ['nsenter', '-t', String(pid), '-n', '-u', '-m', '--'];
      await sh([
        ...inPod,
        'sh',
        '-ec',
        [
          'ip link set lo up',
          `ip addr add ${ip}/32 dev eth0`,
          'ip link set eth0 up',
          'ip route add 169.254.1.1 dev eth0 scope link',
          'ip route add default via 169.254.1.1 dev eth0',
          `hostname ${hostname}`,
          `mount --bind ${join(dir, 'resolv.conf')} /etc/resolv.conf`,
          `mount --bind ${join(dir, 'hosts')} /etc/hosts`,
          `mount --bind ${join(dir, 'hostname')} /etc/hostname`,
        ].join('\n'),
      ]);
      await this.#writeKwokObjects(pod, pid, dir);
      for (const c of pod.spec?.containers ?? []) {
        if (c.command === undefined || c.command.length === 0) continue;
        sandbox.containers.set(c.name, { proc: undefined, restarts: 0 });
        this.#startContainer(sandbox, pod, c);
      }
      return sandbox;
    } catch (err) {
      await this.#teardown(sandbox);
      throw err;
    }
  }

  /** kwok's Exec (commands run in the sandbox) and Logs (each container's log file) for the Pod, owned by it. */
  async #writeKwokObjects(pod: k8s.V1Pod, pid: number, dir: string): Promise<void> {
    const meta = pod.metadata as k8s.V1ObjectMeta;
    const owner = { apiVersion: 'v1', kind: 'Pod', name: meta.name as string, uid: meta.uid as string };
    const metadata = { name: meta.name, namespace: meta.namespace, ownerReferences: [owner] };
    const objects = [
      {
        plural: 'execs',
        body: {
          apiVersion: `${KWOK_GROUP}/${KWOK_VERSION}`,
          kind: 'Exec',
          metadata,
          spec: { execs: [{ local: { envs: [{ name: 'MCS_POD_PID', value: String(pid) }] } }] },
        },
      },
      {
        plural: 'logs',
        body: {
          apiVersion: `${KWOK_GROUP}/${KWOK_VERSION}`,
          kind: 'Logs',
          metadata,
          spec: {
            logs: (pod.spec?.containers ?? []).map((c) => ({
              containers: [c.name],
              logsFile: join(dir, `${c.name}.log`),
              follow: true,
            })),
          },
        },
      },
    ];
    for (const o of objects) {
      const args = { group: KWOK_GROUP, version: KWOK_VERSION, namespace: meta.namespace as string, plural: o.plural };
      // A Pod recreated with the same name (a StatefulSet) finds the old object until the GC removes it: replace it.
      await this.#custom.deleteNamespacedCustomObject({ ...args, name: meta.name as string }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 404) throw err;
      });
      await this.#custom.createNamespacedCustomObject({ ...args, body: o.body });
    }
  }

  #startContainer(s: Sandbox, pod: k8s.V1Pod, c: k8s.V1Container): void {
    const state = s.containers.get(c.name);
    if (state === undefined || s.stopped) return;
    const env = containerEnv(pod, c);
    const expand = (v: string) => v.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n: string) => env[n] ?? m);
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map(expand);
    const logFile = join(s.dir, `${c.name}.log`);
    const fd = openSync(logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(
        'nsenter',
        ['-t', String(s.pause.pid), '-n', '-u', '-m', `--wd=${c.workingDir ?? '/'}`, '--', ...argv],
        { stdio: ['ignore', fd, fd], env },
      );
    } finally {
      closeSync(fd);
    }
    state.proc = proc;
    proc.once('exit', (code, signal) => {
      if (s.stopped) return;
      state.restarts++;
      this.#init.log(`${s.key}/${c.name}: exited (${signal ?? `code ${code}`}); restart ${state.restarts} in 1 s`);
      state.timer = setTimeout(() => this.#startContainer(s, pod, c), 1000);
    });
  }

  async #teardown(s: Sandbox): Promise<void> {
    s.stopped = true;
    const exits: Promise<unknown>[] = [];
    for (const c of s.containers.values()) {
      clearTimeout(c.timer);
      if (c.proc !== undefined && c.proc.exitCode === null && c.proc.signalCode === null) {
        exits.push(new Promise((r) => c.proc?.once('exit', r)));
        c.proc.kill('SIGKILL');
      }
    }
    if (s.pause.exitCode === null && s.pause.signalCode === null) {
      exits.push(new Promise((r) => s.pause.once('exit', r)));
      s.pause.kill('SIGKILL');
    }
    await Promise.all(exits);
    // The pod's end of the veth went with its netns, and the host end with it; the /32 route with the device.
    await sh(['ip', '-n', this.#init.net.netns, 'link', 'delete', s.hostVeth]).catch(() => undefined);
  }
}

function podKey(pod: k8s.V1Pod): string {
  return `${pod.metadata?.namespace}/${pod.metadata?.name}`;
}

/** A Pod this runner gives a sandbox: on a kwok Node, Running with an IP in the cluster's pod CIDR, not host network. */
function runsHere(p: k8s.V1Pod, net: ClusterNet): boolean {
  if (p.metadata?.deletionTimestamp !== undefined) return false;
  if (p.spec?.hostNetwork === true) return false;
  if (!(p.spec?.nodeName ?? '').startsWith('kwok-node-')) return false;
  if (p.status?.phase !== 'Running') return false;
  const ip = p.status.podIP;
  return ip !== undefined && inCidr(ip, net.podCidr);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const n = (a: string) => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / size) === Math.floor(n(base) / size);
}

/** The container's environment: PATH, HOSTNAME, env values and the Pod fieldRefs kubelet resolves. */
function containerEnv(pod: k8s.V1Pod, c: k8s.V1Container): Record<string, string> {
  const env: Record<string, string> = {
    PATH: SYSTEM_PATH,
    HOSTNAME: pod.spec?.hostname ?? pod.metadata?.name ?? '',
    HOME: '/root',
  };
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata?.name,
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.uid': pod.metadata?.uid,
    'spec.nodeName': pod.spec?.nodeName,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
    'status.podIP': pod.status?.podIP,
    'status.hostIP': pod.status?.hostIP,
  };
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef !== undefined) env[e.name] = fields[e.valueFrom.fieldRef.fieldPath] ?? '';
  }
  return env;
}

/** Waits until the sandbox process is in its own namespaces (unshare has exec'd sleep). */
async function waitForNamespaces(pid: number): Promise<void> {
  const { readlink } = await import('node:fs/promises');
  const mine = await readlink('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    const theirs = await readlink(`/proc/${pid}/ns/net`).catch(() => mine);
    const exe = await readlink(`/proc/${pid}/exe`).catch(() => '');
    if (theirs !== mine && !exe.endsWith('/unshare')) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`sandbox process ${pid} did not enter its namespaces in 1 s`);
}
