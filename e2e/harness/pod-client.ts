// Traffic from inside a Pod, through the API server as `kubectl exec` does (pods/exec): DNS lookups with `dig` and
// TCP connections with bash's /dev/tcp, against servers that answer each connection with one line naming their Pod.
// Used by the conformance specs and the traffic tests; works on any cluster whose images have the programs named.
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { eventually } from './wait.js';

/** Default images: a server with `sh` and `socat`; a client with `bash`, `timeout` and `dig`. */
export const SERVER_IMAGE = 'docker.io/alpine/socat:1.8.0.3';
export const CLIENT_IMAGE = 'registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/**
 * A container that answers every TCP connection on each port with `<pod name> <tag>` (plus ` <port>` on ports other
 * than the first). Needs `sh` and `socat` in `image`.
 */
export function serverContainer(image: string, tag: string, ports: readonly number[] = [8080, 9000]): k8s.V1Container {
  const listeners = ports.map(
    (p, i) => `socat TCP-LISTEN:${p},fork,reuseaddr SYSTEM:'echo $(POD_NAME) ${tag}${i === 0 ? '' : ` ${p}`}'`,
  );
  return {
    name: 'server',
    image,
    command: ['sh', '-c'],
    args: [[...listeners.slice(0, -1).map((l) => `${l} &`), `exec ${listeners.at(-1)}`].join(' ')],
    env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    ports: ports.map((containerPort) => ({ containerPort })),
  };
}

/** One Pod's container, to run commands in. */
export class PodShell {
  readonly #exec: k8s.Exec;

  constructor(
    kc: k8s.KubeConfig,
    readonly where: string,
    readonly namespace: string,
    readonly pod: string,
    readonly container: string,
  ) {
    this.#exec = new k8s.Exec(kc);
  }

  /** Runs `command` (no TTY, no stdin) and returns its output and exit code. */
  run(command: readonly string[], timeoutMs = 20_000): Promise<ExecResult> {
    let stdout = '';
    let stderr = '';
    const sink = (append: (s: string) => void) =>
      new Writable({
        write(chunk: Buffer, _enc, done) {
          append(chunk.toString());
          done();
        },
      });
    const what = `exec ${command.join(' ')} in ${this.where}/${this.namespace}/${this.pod}`;
    return new Promise<ExecResult>((resolve, reject) => {
      let socket: { close(): void } | undefined;
      const timer = setTimeout(() => {
        socket?.close();
        reject(new Error(`${what}: no end in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#exec
        .exec(
          this.namespace,
          this.pod,
          this.container,
          [...command],
          sink((x) => (stdout += x)),
          sink((x) => (stderr += x)),
          null,
          false,
          (status) => {
            clearTimeout(timer);
            const cause = status.details?.causes?.find((x) => x.reason === 'ExitCode');
            const code = status.status === 'Success' ? 0 : Number(cause?.message ?? 1);
            // The status arrives right after the last output: let the streams drain.
            setTimeout(() => resolve({ stdout, stderr, code }), 20);
          },
        )
        .then((ws) => {
          socket = ws;
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        });
    });
  }

  /**
   * `dig` for the absolute `name`: the answers' data (as `+short` prints it), sorted. Empty for NXDOMAIN or no data;
   * any other status (SERVFAIL, REFUSED) or no reply is an error, so "no answer" is never a broken resolver.
   */
  async dig(name: string, type: 'A' | 'SRV'): Promise<string[]> {
    const r = await this.run(['dig', '+noall', '+comments', '+answer', '+time=2', '+tries=2', type, `${name}.`]);
    const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1];
    if (r.code !== 0 || status === undefined) {
      throw new Error(
        `dig ${type} ${name} in ${this.where}: no reply (exit ${r.code}): ${(r.stdout + r.stderr).trim()}`,
      );
    }
    if (status === 'NXDOMAIN') return [];
    if (status !== 'NOERROR') throw new Error(`dig ${type} ${name} in ${this.where}: status ${status}`);
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith(';'))
      .map((l) => l.split(/\s+/).slice(4).join(' '))
      .filter((rdata) => rdata !== '')
      .sort();
  }

  /**
   * One TCP connection to host:port: the line the server answered, or undefined if the connection failed or
   * nothing came in 3 s. An exec that itself fails (no sandbox, no shell) is an error, never "no answer".
   */
  async connect(host: string, port: number): Promise<string | undefined> {
    const r = await this.run([
      'sh',
      '-c',
      `out=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && read -r line <&3 && printf "%s" "$line"' "$0" "$1"); echo "rc=$? $out"`,
      host,
      String(port),
    ]);
    const m = /^rc=(\d+) ?(.*)$/m.exec(r.stdout);
    if (m === null) {
      throw new Error(
        `connect ${host}:${port} in ${this.where}: the exec gave no result: ${(r.stdout + r.stderr).trim()}`,
      );
    }
    const line = (m[2] ?? '').trim();
    return m[1] === '0' && line !== '' ? line : undefined;
  }

  /** The distinct answers of `n` connections (`(no answer)` for a failed one). */
  async answers(host: string, port: number, n: number): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) seen.add((await this.connect(host, port)) ?? '(no answer)');
    return seen;
  }
}

/** Creates a Pod `name` that sleeps in `namespace`, and waits until it is Running and answers exec. */
export async function clientPod(
  kc: k8s.KubeConfig,
  where: string,
  namespace: string,
  image: string,
  timeoutMs = 60_000,
  name = 'client',
): Promise<PodShell> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedPod({
    namespace,
    body: { metadata: { name }, spec: { containers: [{ name: 'client', image, command: ['sleep', '3600'] }] } },
  });
  const shell = new PodShell(kc, where, namespace, name, 'client');
  await eventually(
    `client Pod ${where}/${namespace}/${name} Running and answering exec`,
    async () => {
      const p = await core.readNamespacedPod({ namespace, name });
      if (p.status?.phase !== 'Running') return undefined;
      return (await shell.run(['true']).catch(() => undefined))?.code === 0 ? true : undefined;
    },
    timeoutMs,
  );
  return shell;
}

/** `replicas` servers ({@link serverContainer}) labelled `app: <name>`, as a Deployment. */
export function serverDeployment(name: string, image: string, tag: string, replicas = 2): k8s.V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [serverContainer(image, tag)] } },
    },
  };
}

/** The same servers as a StatefulSet behind the (headless) Service `name`: Pods `<name>-0`… with hostnames. */
export function serverStatefulSet(name: string, image: string, tag: string, replicas = 2): k8s.V1StatefulSet {
  const d = serverDeployment(name, image, tag, replicas);
  return {
    metadata: d.metadata,
    spec: { ...(d.spec as k8s.V1DeploymentSpec), serviceName: name, podManagementPolicy: 'Parallel' },
  };
}
