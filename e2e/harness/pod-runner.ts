// A kubelet stand-in for the local ClusterSet: runs the containers of a cluster's Pods with podman, exactly as their
// pod spec says, so the chart's Deployment executes as written. kwok schedules the Pods on its fake nodes and reports
// them Running; this runner makes them real processes:
//
// - image pulled per `imagePullPolicy` (a local plain-HTTP registry is pulled with --tls-verify=false);
// - `command`/`args` with `$(VAR)` expanded from the container's env, as kubelet does;
// - env: values, fieldRefs (metadata.name/namespace/uid, spec.nodeName, spec.serviceAccountName, status.hostIP,
//   status.podIP), secretKeyRef, configMapKeyRef; plus KUBERNETES_SERVICE_HOST/PORT (the API server);
// - secret volumes written to files with their `defaultMode`/`mode` and `items`, owned by root:fsGroup and group
//   readable (kubelet's fsGroup handling), mounted read-only at their mount paths;
// - the ServiceAccount token (a bound TokenRequest), `ca.crt` and `namespace` at
//   /var/run/secrets/kubernetes.io/serviceaccount, as the projected service-account volume gives them;
// - securityContext: runAsUser/runAsGroup (--user), fsGroup (--group-add), readOnlyRootFilesystem (--read-only,
//   with no tmpfs for /tmp: kubelet gives none), capabilities (--cap-drop/--cap-add), allowPrivilegeEscalation=false
//   (no-new-privileges), runAsNonRoot (refused when the user would be root), seccomp RuntimeDefault (podman's default).
//
// What differs from a kubelet, on purpose: the containers use the host network (every cluster of the local ClusterSet
// shares the machine's loopback; ports must differ per cluster), probes are not acted on (the test checks them with
// `probe()`), and resource limits are not enforced.
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { expandVars, podFields } from './pod-env.js';
import { SerialPoller } from './poller.js';

const exec = promisify(execFile);

export interface PodRunnerInit {
  /** An admin kubeconfig of the cluster. */
  readonly kubeConfig: k8s.KubeConfig;
  /** The cluster's name: prefixes container names. */
  readonly cluster: string;
  readonly namespace: string;
  /** Which Pods to run (e.g. `app.kubernetes.io/name=mcs-gossip`). */
  readonly labelSelector: string;
  /** Where volume files and container logs go. */
  readonly dir: string;
  /** Environment of podman (CONTAINERS_CONF). */
  readonly podmanEnv: NodeJS.ProcessEnv;
  /** The address the containers reach the API server at (KUBERNETES_SERVICE_HOST/PORT). */
  readonly apiServer: { readonly host: string; readonly port: number };
  /** What `status.hostIP` and `status.podIP` give (the containers share the host network). */
  readonly nodeIp: string;
  /** Registries pulled without TLS (a local plain-HTTP registry). */
  readonly insecureRegistries?: readonly string[];
  readonly log?: (line: string) => void;
}

export interface RunningPod {
  readonly pod: string;
  readonly uid: string;
  readonly container: string;
  readonly spec: k8s.V1Container;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export class PodRunner {
  readonly #init: PodRunnerInit;
  readonly #core: k8s.CoreV1Api;
  readonly #running = new Map<string, RunningPod>();
  readonly #failed = new Map<string, string>();
  readonly #poller: SerialPoller;
  #stopped = false;

  constructor(init: PodRunnerInit) {
    this.#init = init;
    this.#core = init.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.#poller = new SerialPoller(
      () => this.#sync(),
      1000,
      (err) => this.#log(`sync failed: ${String(err)}`),
    );
  }

  /** Starts following the Pods: a pass every second starts containers of new Pods and removes those of gone ones. */
  start(): void {
    this.#poller.start();
  }

  /** Stops following and removes every container it started. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#poller.stop();
    for (const uid of [...this.#running.keys()]) await this.#remove(uid);
  }

  running(): RunningPod[] {
    return [...this.#running.values()];
  }

  /** Pods whose containers could not be started, with the reason (pull failure, runAsNonRoot, …). */
  failures(): ReadonlyMap<string, string> {
    return this.#failed;
  }

  /** What the container's probe gets: `GET http://<nodeIp>:<port><path>` (a named port is its containerPort). */
  async probe(pod: RunningPod, which: 'readinessProbe' | 'livenessProbe'): Promise<{ code: number; body: string }> {
    const get = pod.spec[which]?.httpGet;
    if (get === undefined) throw new Error(`${pod.pod} has no ${which} httpGet`);
    const port =
      typeof get.port === 'number' ? get.port : pod.spec.ports?.find((p) => p.name === get.port)?.containerPort;
    if (port === undefined) throw new Error(`${pod.pod}: ${which} port ${String(get.port)} is not a container port`);
    const res = await fetch(`http://${this.#init.nodeIp}:${port}${get.path ?? '/'}`);
    return { code: res.status, body: await res.text() };
  }

  /** `podman inspect` of a running pod's container. */
  async inspect(pod: RunningPod): Promise<Record<string, unknown>> {
    const { stdout } = await this.#podman('inspect', pod.container);
    return (JSON.parse(stdout) as Record<string, unknown>[])[0] ?? {};
  }

  logFile(pod: RunningPod): string {
    return join(this.#init.dir, `${pod.pod}.log`);
  }

  // ---- internals

  #log(line: string): void {
    this.#init.log?.(`[pods ${this.#init.cluster}] ${line}`);
  }

  async #podman(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return exec('podman', args, { env: this.#init.podmanEnv, maxBuffer: 64 * 1024 * 1024 });
  }

  async #sync(): Promise<void> {
    if (this.#stopped) return;
    const pods = await this.#core.listNamespacedPod({
      namespace: this.#init.namespace,
      labelSelector: this.#init.labelSelector,
    });
    const live = new Set<string>();
    for (const pod of pods.items) {
      const uid = pod.metadata?.uid ?? '';
      if (pod.metadata?.deletionTimestamp !== undefined || pod.spec?.nodeName === undefined) continue;
      live.add(uid);
      if (this.#running.has(uid) || this.#failed.has(uid)) continue;
      try {
        await this.#startPod(pod);
      } catch (err) {
        const why = err instanceof Error ? err.message.split('\n')[0]! : String(err);
        this.#failed.set(uid, why);
        this.#log(`pod ${pod.metadata?.name}: ${why}`);
      }
    }
    for (const uid of [...this.#running.keys()]) if (!live.has(uid)) await this.#remove(uid);
  }

  async #remove(uid: string): Promise<void> {
    const p = this.#running.get(uid);
    if (p === undefined) return;
    this.#running.delete(uid);
    // As kubelet: SIGTERM, then SIGKILL after the grace period.
    await this.#podman('stop', '--time', '10', p.container).catch(() => undefined);
    await this.#podman('rm', '--force', p.container).catch(() => undefined);
    this.#log(`pod ${p.pod}: container removed`);
  }

  async #startPod(pod: k8s.V1Pod): Promise<void> {
    const spec = pod.spec!;
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? this.#init.namespace;
    const uid = pod.metadata?.uid ?? '';
    if ((spec.containers ?? []).length !== 1) throw new Error('only pods of one container are run');
    const c = spec.containers[0]!;
    const podDir = join(this.#init.dir, name);
    await rm(podDir, { recursive: true, force: true });
    await mkdir(podDir, { recursive: true });
    const psc = spec.securityContext ?? {};
    const csc = c.securityContext ?? {};
    const fsGroup = psc.fsGroup;

    // The environment, then $(VAR) in command and args.
    const env = new Map<string, string>();
    for (const e of c.env ?? []) env.set(e.name, await this.#envValue(pod, e));
    env.set('KUBERNETES_SERVICE_HOST', this.#init.apiServer.host);
    env.set('KUBERNETES_SERVICE_PORT', String(this.#init.apiServer.port));
    const expand = (s: string) => expandVars(s, env);

    // Volumes: secrets as files, and the service account.
    const mounts: string[] = [];
    for (const vm of c.volumeMounts ?? []) {
      const vol = spec.volumes?.find((v) => v.name === vm.name);
      const dir = join(podDir, 'volumes', vm.name);
      if (vol?.secret !== undefined) await this.#writeSecretVolume(namespace, vol.secret, dir, fsGroup);
      else if (vol?.projected !== undefined) await this.#writeProjectedVolume(pod, vol.projected, dir, fsGroup);
      else throw new Error(`volume ${vm.name}: only secret and projected volumes are run`);
      mounts.push('--volume', `${dir}:${vm.mountPath}:${vm.readOnly === true ? 'ro' : 'rw'}`);
    }
    // The API server's ServiceAccount admission adds the kube-api-access projected volume; without it, as kubelet.
    const saMounted = (c.volumeMounts ?? []).some((m) => m.mountPath === SA_DIR);
    if (spec.automountServiceAccountToken !== false && !saMounted) {
      const dir = join(podDir, 'serviceaccount');
      await this.#writeServiceAccount(pod, dir, fsGroup);
      mounts.push('--volume', `${dir}:${SA_DIR}:ro`);
    }

    const user = csc.runAsUser ?? psc.runAsUser;
    const group = csc.runAsGroup ?? psc.runAsGroup;
    const nonRoot = csc.runAsNonRoot ?? psc.runAsNonRoot;
    if (nonRoot === true && (user === undefined || user === 0))
      throw new Error('runAsNonRoot is set but no non-root runAsUser is given (kubelet would refuse it too)');
    const image = c.image ?? '';
    await this.#pull(image, c.imagePullPolicy ?? 'IfNotPresent');

    const container = `mcsg-${this.#init.cluster}-${name}`.slice(0, 120);
    await this.#podman('rm', '--force', container).catch(() => undefined);
    const args = [
      'run',
      '--detach',
      '--name',
      container,
      '--network',
      'host',
      '--log-driver',
      'k8s-file',
      '--log-opt',
      `path=${join(this.#init.dir, `${name}.log`)}`,
      ...(user === undefined ? [] : ['--user', `${user}${group === undefined ? '' : `:${group}`}`]),
      ...(fsGroup === undefined ? [] : ['--group-add', String(fsGroup)]),
      ...(csc.readOnlyRootFilesystem === true ? ['--read-only', '--read-only-tmpfs=false'] : []),
      ...(csc.allowPrivilegeEscalation === false ? ['--security-opt', 'no-new-privileges'] : []),
      ...(csc.capabilities?.drop ?? []).flatMap((cap) => ['--cap-drop', cap.toLowerCase() === 'all' ? 'all' : cap]),
      ...(csc.capabilities?.add ?? []).flatMap((cap) => ['--cap-add', cap]),
      ...mounts,
      ...[...env].flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ...(c.workingDir === undefined ? [] : ['--workdir', c.workingDir]),
      ...(c.command === undefined ? [] : ['--entrypoint', JSON.stringify(c.command.map(expand))]),
      image,
      ...(c.args ?? []).map(expand),
    ];
    await this.#podman(...args);
    this.#running.set(uid, { pod: name, uid, container, spec: c });
    this.#log(`pod ${name}: container ${container} started from ${image}`);
  }

  async #pull(image: string, policy: string): Promise<void> {
    if (policy === 'Never') return;
    if (policy === 'IfNotPresent') {
      const present = await this.#podman('image', 'exists', image).then(
        () => true,
        () => false,
      );
      if (present) return;
    }
    const host = image.split('/')[0] ?? '';
    const insecure = (this.#init.insecureRegistries ?? []).includes(host);
    await this.#podman('pull', ...(insecure ? ['--tls-verify=false'] : []), image);
  }

  async #envValue(pod: k8s.V1Pod, e: k8s.V1EnvVar): Promise<string> {
    if (e.value !== undefined) return e.value;
    const from = e.valueFrom;
    if (from?.fieldRef !== undefined) {
      const path = from.fieldRef.fieldPath;
      const v = podFields(pod, { podIP: this.#init.nodeIp, hostIP: this.#init.nodeIp })[path];
      if (v === undefined) throw new Error(`env ${e.name}: fieldRef ${path} is not supported here`);
      return v;
    }
    const namespace = pod.metadata?.namespace ?? this.#init.namespace;
    if (from?.secretKeyRef !== undefined) {
      const s = await this.#core.readNamespacedSecret({ namespace, name: from.secretKeyRef.name ?? '' });
      const v = s.data?.[from.secretKeyRef.key];
      if (v === undefined) throw new Error(`env ${e.name}: secret key ${from.secretKeyRef.key} missing`);
      return Buffer.from(v, 'base64').toString('utf8');
    }
    if (from?.configMapKeyRef !== undefined) {
      const m = await this.#core.readNamespacedConfigMap({ namespace, name: from.configMapKeyRef.name ?? '' });
      const v = m.data?.[from.configMapKeyRef.key];
      if (v === undefined) throw new Error(`env ${e.name}: config map key ${from.configMapKeyRef.key} missing`);
      return v;
    }
    throw new Error(`env ${e.name}: unsupported valueFrom`);
  }

  /** Files of a secret volume, as kubelet writes them: items (or every key), mode, root:fsGroup and group-readable. */
  async #writeSecretVolume(
    namespace: string,
    source: k8s.V1SecretVolumeSource,
    dir: string,
    fsGroup: number | undefined,
  ): Promise<void> {
    const secret = await this.#core.readNamespacedSecret({ namespace, name: source.secretName ?? '' });
    const data = secret.data ?? {};
    const items: k8s.V1KeyToPath[] = source.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    await mkdir(dir, { recursive: true });
    for (const item of items) {
      const v = data[item.key];
      if (v === undefined) throw new Error(`secret ${source.secretName}: key ${item.key} missing`);
      const file = join(dir, item.path);
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, Buffer.from(v, 'base64'));
      await this.#own(file, item.mode ?? source.defaultMode ?? 0o644, fsGroup);
    }
    if (fsGroup !== undefined) await chown(dir, 0, fsGroup);
  }

  /** A projected volume: ServiceAccount tokens (bound TokenRequests), ConfigMap and Secret items, downward API. */
  async #writeProjectedVolume(
    pod: k8s.V1Pod,
    source: k8s.V1ProjectedVolumeSource,
    dir: string,
    fsGroup: number | undefined,
  ): Promise<void> {
    const namespace = pod.metadata?.namespace ?? this.#init.namespace;
    await mkdir(dir, { recursive: true });
    const put = async (path: string, content: string | Buffer, mode: number | undefined) => {
      const file = join(dir, path);
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, content);
      await this.#own(file, mode ?? source.defaultMode ?? 0o644, fsGroup);
    };
    for (const src of source.sources ?? []) {
      if (src.serviceAccountToken !== undefined) {
        const t = src.serviceAccountToken;
        const tr = await this.#core.createNamespacedServiceAccountToken({
          namespace,
          name: pod.spec?.serviceAccountName ?? 'default',
          body: {
            spec: {
              audiences: t.audience === undefined ? [] : [t.audience],
              expirationSeconds: t.expirationSeconds ?? 3600,
              boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata?.name, uid: pod.metadata?.uid },
            },
          },
        });
        await put(t.path, tr.status?.token ?? '', undefined);
      } else if (src.configMap !== undefined) {
        const m = await this.#core.readNamespacedConfigMap({ namespace, name: src.configMap.name ?? '' });
        for (const item of src.configMap.items ?? Object.keys(m.data ?? {}).map((key) => ({ key, path: key }))) {
          const v = m.data?.[item.key];
          if (v === undefined) throw new Error(`config map ${src.configMap.name}: key ${item.key} missing`);
          await put(item.path, v, (item as k8s.V1KeyToPath).mode);
        }
      } else if (src.secret !== undefined) {
        const sec = await this.#core.readNamespacedSecret({ namespace, name: src.secret.name ?? '' });
        for (const item of src.secret.items ?? Object.keys(sec.data ?? {}).map((key) => ({ key, path: key }))) {
          const v = sec.data?.[item.key];
          if (v === undefined) throw new Error(`secret ${src.secret.name}: key ${item.key} missing`);
          await put(item.path, Buffer.from(v, 'base64'), (item as k8s.V1KeyToPath).mode);
        }
      } else if (src.downwardAPI !== undefined) {
        for (const item of src.downwardAPI.items ?? []) {
          const path = item.fieldRef?.fieldPath;
          const value =
            path === 'metadata.namespace'
              ? namespace
              : path === 'metadata.name'
                ? pod.metadata?.name
                : path === 'metadata.uid'
                  ? pod.metadata?.uid
                  : undefined;
          if (value === undefined) throw new Error(`downwardAPI ${item.path}: ${String(path)} is not supported here`);
          await put(item.path, value, item.mode);
        }
      } else throw new Error('projected volume: unsupported source');
    }
    if (fsGroup !== undefined) await chown(dir, 0, fsGroup);
  }

  async #writeServiceAccount(pod: k8s.V1Pod, dir: string, fsGroup: number | undefined): Promise<void> {
    const namespace = pod.metadata?.namespace ?? this.#init.namespace;
    const sa = pod.spec?.serviceAccountName ?? 'default';
    const tr = await this.#core.createNamespacedServiceAccountToken({
      namespace,
      name: sa,
      body: {
        spec: {
          audiences: [],
          expirationSeconds: 3600,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata?.name, uid: pod.metadata?.uid },
        },
      },
    });
    await mkdir(dir, { recursive: true });
    const cluster = this.#init.kubeConfig.getCurrentCluster();
    const ca = cluster?.caData !== undefined ? Buffer.from(cluster.caData, 'base64') : Buffer.from('');
    const files: [string, Buffer | string][] = [
      ['token', tr.status?.token ?? ''],
      ['ca.crt', ca],
      ['namespace', namespace],
    ];
    for (const [f, content] of files) {
      await writeFile(join(dir, f), content);
      await this.#own(join(dir, f), 0o644, fsGroup);
    }
    if (fsGroup !== undefined) await chown(dir, 0, fsGroup);
  }

  async #own(file: string, mode: number, fsGroup: number | undefined): Promise<void> {
    if (fsGroup === undefined) {
      await chmod(file, mode);
      return;
    }
    // kubelet: with fsGroup, volume files are group-owned by it and group-readable.
    await chown(file, 0, fsGroup);
    await chmod(file, mode | 0o040);
  }
}
