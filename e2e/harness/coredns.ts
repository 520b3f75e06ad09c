// A real CoreDNS serving `cluster.local` and `clusterset.local` from one cluster of the local ClusterSet, with the
// in-tree kubernetes plugin's `multicluster` option (CoreDNS >= 1.12.2): it reads ServiceImports (v1alpha1),
// Namespaces and EndpointSlices labelled multicluster.kubernetes.io/service-name.
import { writeFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import { type ClusterSetState, toolsBin } from './clusterset.js';
import { freePorts } from './ports.js';
import { isAlive, startDetached, stopProcess, tail, type StartedProcess } from './process.js';

export interface CoreDns {
  readonly port: number;
  readonly process: StartedProcess;
  /** A DNS client (UDP) pointed at this CoreDNS. */
  readonly resolver: Resolver;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts CoreDNS for `cluster` and waits until it answers `kubernetes.default.svc.cluster.local`. */
export async function startCoreDns(state: ClusterSetState, cluster: string, timeoutMs = 30_000): Promise<CoreDns> {
  const c = state.clusters.find((x) => x.name === cluster);
  if (c === undefined) throw new Error(`no cluster ${cluster} in the ClusterSet at ${state.dir}`);
  const [port, health] = (await freePorts(2)) as [number, number];
  const corefile = join(state.dir, cluster, 'Corefile');
  await writeFile(
    corefile,
    `.:${port} {
    bind 127.0.0.1
    errors
    health 127.0.0.1:${health}
    kubernetes cluster.local clusterset.local {
        kubeconfig ${c.kubeconfig} ${cluster}
        multicluster clusterset.local
        ttl 5
    }
}
`,
  );
  const proc = startDetached(
    join(toolsBin, 'coredns'),
    ['-conf', corefile],
    join(state.dir, cluster, 'logs', 'coredns.log'),
  );
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(proc)) throw new Error(`coredns for ${cluster} exited; log ${proc.log}\n${await tail(proc.log)}`);
    try {
      const a = await resolver.resolve4('kubernetes.default.svc.cluster.local');
      if (a.length > 0) break;
    } catch {
      /* not serving yet */
    }
    if (Date.now() > deadline) {
      await stopProcess(proc, 1000);
      throw new Error(`coredns for ${cluster} did not answer in time; log ${proc.log}\n${await tail(proc.log)}`);
    }
    await sleep(250);
  }
  return { port, process: proc, resolver, stop: () => stopProcess(proc, 3000) };
}
