// Pods that run, for the data plane of the local ClusterSet (`up --data-plane`). kwok schedules Pods on its fake
// Nodes, gives each an IP from the Node's podCIDR and reports it Running; this runner, one per cluster, makes that true:
//
// - a sandbox per Pod, as a container runtime's pause container: a process in a new network, UTS and mount namespace,
//   with the Pod's IP on `eth0` (a veth to the cluster netns, routed there as <ip>/32), the Pod's name as hostname, and
//   resolv.conf (the cluster's kube-dns Service, the Pod's search path, ndots:5) and /etc/hosts bind-mounted;
// - each container with a `command` runs as a process in the sandbox's namespaces: the host's programs (sh, socat,
//   nslookup, dig, nc, curl), since there is no image to unpack; `$(VAR)` expanded, env values and pod fieldRefs set;
//   restarted 1 s after it exits, as restartPolicy Always does. A container without a command runs nothing;
// - `kubectl exec` works: kwok serves it with a per-Pod `Exec` object (owned by the Pod) naming the sandbox, and our
//   patched kwok runs every exec'd command through `pod-exec` (KWOK_EXEC_WRAPPER), which enters the sandbox's
//   namespaces, so a command runs in the Pod, absolute paths included, or not at all;
// - `kubectl logs` works: a per-Pod `Logs` object points kwok at each container's log file.
//
// Why a runner and not a kubelet with containerd: these machines have no container images of the test programs and
// no registry beyond the local one; a process in a sandbox gives the Pod's network identity, which is all the data
// plane tests need, at a few ms per Pod. docs/conformance.md says more.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, closeSync } from 'node:fs';
import { chmod, mkdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { ClusterNet } from './dataplane.js';
import { expandVars, podFields } from './pod-env.js';
import { SerialPoller } from './poller.js';
import { sh } from './dataplane.js';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Writes `pod-exec` into `binDir` and returns its path: kwok runs every exec'd command as its arguments. */
export async function writeExecWrapper(binDir: string): Promise<string> {
  await mkdir(binDir, { recursive: true });
  const wrapper = join(binDir, 'pod-exec');
  await writeFile(
    wrapper,
    `#!/bin/sh
# The patched kwok (KWOK_EXEC_WRAPPER) runs every exec'd command as \`pod-exec COMMAND ARGS...\`; this runs it in
# the Pod's sandbox. MCS_POD_PID (the sandbox process) and MCS_POD_NET (its network namespace, so a reused pid is
# refused) come from the Pod's kwok Exec object (e2e/harness/pod-sandbox.ts).
PATH=${SYSTEM_PATH}
export PATH
pid=$MCS_POD_PID
net=$MCS_POD_NET
unset MCS_POD_PID MCS_POD_NET
[ $# -gt 0 ] || { echo "pod-exec: no command" >&2; exit 126; }
if [ -z "$pid" ] || [ -z "$net" ] || [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" != "$net" ]; then
  echo "$1: the Pod has no sandbox (pid \${pid:-none}); not run" >&2
  exit 126
fi
exec nsenter -t "$pid" -n -u -m -- "$@"
`,
  );
  await chmod(wrapper, 0o755);
  return wrapper;
}

interface Sandbox {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
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
  /** How often the Pods are listed (default 500 ms). */
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
  readonly #poller: SerialPoller;

  constructor(init: PodSandboxesInit) {
    this.#init = init;
    this.#core = init.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.#custom = init.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.#poller = new SerialPoller(
      () => this.#sync(),
      init.intervalMs ?? 500,
      (err) => this.#init.log(`sync failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  start(): void {
    this.#poller.start();
  }

  async stop(): Promise<void> {
    await this.#poller.stop();
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

    // Every container's environment first: a field the data plane cannot give fails the sandbox, naming it.
    const envs = new Map((pod.spec?.containers ?? []).map((c) => [c.name, containerEnv(pod, c)]));
    // --pdeathsig: the sandbox and its containers die with this runner, even when it is SIGKILLed.
    const pause = spawn(
      '/usr/bin/setpriv',
      [
        '--pdeathsig',
        'KILL',
        '/usr/bin/unshare',
        '--net',
        '--uts',
        '--mount',
        '--propagation',
        'private',
        'sleep',
        'infinity',
      ],
      { stdio: 'ignore' },
    );
    pause.once('error', (err) => this.#init.log(`${key}: sandbox process: ${err.message}`));
    const pid = pause.pid;
    if (pid === undefined) throw new Error('could not start the sandbox process (setpriv, unshare)');
    const sandbox: Sandbox = {
      uid,
      namespace: ns,
      name: meta.name as string,
      key,
      ip,
      pause,
      hostVeth: `h${createHash('sha256').update(uid).digest('hex').slice(0, 10)}`,
      dir,
      containers: new Map(),
      stopped: false,
    };
    try {
      const netId = await waitForNamespaces(pid);
      const v = sandbox.hostVeth;
      // A runner restarted after a crash finds its predecessor's veth for this Pod: remove it first.
      await sh(['ip', '-n', net.netns, 'link', 'delete', v]).catch(() => undefined);
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
      const inPod = ['/usr/bin/nsenter', '-t', String(pid), '-n', '-u', '-m', '--'];
      // Paths and names as positional arguments: never pasted into the script.
      await sh([
        ...inPod,
        '/bin/sh',
        '-ec',
        [
          'ip link set lo up',
          'ip addr add "$1/32" dev eth0',
          'ip link set eth0 up',
          'ip route add 169.254.1.1 dev eth0 scope link',
          'ip route add default via 169.254.1.1 dev eth0',
          'hostname "$2"',
          'mount --bind "$3/resolv.conf" /etc/resolv.conf',
          'mount --bind "$3/hosts" /etc/hosts',
          'mount --bind "$3/hostname" /etc/hostname',
        ].join('\n'),
        'sandbox',
        ip,
        hostname,
        dir,
      ]);
      pause.once('exit', (code, signal) => {
        if (sandbox.stopped) return;
        this.#init.log(`${key}: sandbox process exited (${signal ?? `code ${code}`}); making a new one`);
        if (this.#sandboxes.get(uid) === sandbox) this.#sandboxes.delete(uid);
        // In the passes' chain: the next pass makes the new sandbox only after this one is gone.
        void this.#poller.run(() => this.#teardown(sandbox));
      });
      await this.#writeKwokObjects(pod, pid, netId, dir);
      for (const c of pod.spec?.containers ?? []) {
        if (c.command === undefined || c.command.length === 0) continue;
        sandbox.containers.set(c.name, { proc: undefined, restarts: 0 });
        this.#startContainer(sandbox, c, envs.get(c.name) as Record<string, string>);
      }
      return sandbox;
    } catch (err) {
      await this.#teardown(sandbox);
      throw err;
    }
  }
  /** kwok's Exec (commands run in the sandbox) and Logs (each container's log file) for the Pod, owned by it. */
  async #writeKwokObjects(pod: k8s.V1Pod, pid: number, netId: string, dir: string): Promise<void> {
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
          spec: {
            execs: [
              {
                local: {
                  envs: [
                    { name: 'MCS_POD_PID', value: String(pid) },
                    { name: 'MCS_POD_NET', value: netId },
                  ],
                },
              },
            ],
          },
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

  #startContainer(s: Sandbox, c: k8s.V1Container, env: Record<string, string>): void {
    const state = s.containers.get(c.name);
    if (state === undefined || s.stopped) return;
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map((v) => expandVars(v, env));
    const logFile = join(s.dir, `${c.name}.log`);
    const fd = openSync(logFile, 'a');
    let proc: ChildProcess;
    try {
      proc = spawn(
        '/usr/bin/setpriv',
        [
          '--pdeathsig',
          'KILL',
          '/usr/bin/nsenter',
          '-t',
          String(s.pause.pid),
          '-n',
          '-u',
          '-m',
          `--wd=${c.workingDir ?? '/'}`,
          '--',
          ...argv,
        ],
        { stdio: ['ignore', fd, fd], env },
      );
    } finally {
      closeSync(fd);
    }
    state.proc = proc;
    proc.once('error', (err) => this.#init.log(`${s.key}/${c.name}: ${err.message}`));
    proc.once('exit', (code, signal) => {
      if (s.stopped) return;
      state.restarts++;
      this.#init.log(`${s.key}/${c.name}: exited (${signal ?? `code ${code}`}); restart ${state.restarts} in 1 s`);
      state.timer = setTimeout(() => this.#startContainer(s, c, env), 1000);
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
    // The Pod's Exec and Logs now name a dead sandbox: remove them (the GC would, but only once the Pod is gone).
    for (const plural of ['execs', 'logs']) {
      await this.#custom
        .deleteNamespacedCustomObject({
          group: KWOK_GROUP,
          version: KWOK_VERSION,
          namespace: s.namespace,
          plural,
          name: s.name,
        })
        .catch(() => undefined);
    }
    await rm(s.dir, { recursive: true, force: true });
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

/**
 * The container's environment: PATH, HOSTNAME, env values (with `$(VAR)` of earlier ones) and the Pod fieldRefs
 * kubelet resolves. A source the data plane cannot give (secretKeyRef, configMapKeyRef, resourceFieldRef, envFrom,
 * another fieldRef) is an error naming the container and variable, never an empty value.
 */
function containerEnv(pod: k8s.V1Pod, c: k8s.V1Container): Record<string, string> {
  const env: Record<string, string> = {
    PATH: SYSTEM_PATH,
    HOSTNAME: pod.spec?.hostname ?? pod.metadata?.name ?? '',
    HOME: '/root',
  };
  const fields = podFields(pod, { podIP: pod.status?.podIP, hostIP: pod.status?.hostIP });
  if ((c.envFrom ?? []).length > 0) throw new Error(`container ${c.name}: envFrom is not supported by the data plane`);
  for (const e of c.env ?? []) {
    const path = e.valueFrom?.fieldRef?.fieldPath;
    if (e.valueFrom === undefined) env[e.name] = expandVars(e.value ?? '', env);
    else if (path !== undefined && path in fields) env[e.name] = fields[path] ?? '';
    else
      throw new Error(
        `container ${c.name}: env ${e.name}: only values and the fieldRefs ${Object.keys(fields).join(', ')} are supported by the data plane`,
      );
  }
  return env;
}

/** Waits until the sandbox process runs `sleep` in its own namespaces; returns its network namespace's id. */
async function waitForNamespaces(pid: number): Promise<string> {
  const mine = await readlink('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    const theirs = await readlink(`/proc/${pid}/ns/net`).catch(() => mine);
    const exe = await readlink(`/proc/${pid}/exe`).catch(() => '');
    if (theirs !== mine && exe.endsWith('/sleep')) return theirs;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`sandbox process ${pid} did not enter its namespaces in 1 s`);
}
