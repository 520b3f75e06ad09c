// Traffic that really flows: two clusters with mcs-gossip nodes and the harness's data plane (`up --data-plane`:
// Pods that run, a real kube-proxy in iptables mode and a real CoreDNS per cluster, pod IPs routed between the
// clusters). A client Pod connects through the ClusterSetIP and the clusterset.local name that our derived Services
// and imported EndpointSlices give, so a slice kube-proxy would ignore (a wrong port name, label or address type)
// fails here. Every answer names the Pod and cluster that served it.
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, up, type ClusterSetState } from '../harness/clusterset.js';
import {
  CLIENT_IMAGE,
  SERVER_IMAGE,
  clientPod,
  serverDeployment,
  serverStatefulSet,
  type PodShell,
} from '../harness/pod-client.js';
import { eventually } from '../harness/wait.js';
import { admin, ensureNamespace, exportService, getImport, unexportService, type SiView } from './kube-helpers.js';

const CLUSTERS = ['cluster-1', 'cluster-2'] as const;
type Cluster = (typeof CLUSTERS)[number];
const HTTP = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' };
const EXTRA = { name: 'extra', port: 9000, targetPort: 9000, protocol: 'TCP' };

describe.skipIf(process.getuid?.() !== 0)('traffic through the data plane', () => {
  let dir: string;
  let state: ClusterSetState;
  let counter = 0;
  const api = (cluster: Cluster) => admin(state, cluster);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcs-gossip-traffic-'));
    state = await up({
      dir,
      clusters: 2,
      nodes: true,
      dataPlane: true,
      clusterSetName: 'traffic-test',
      onProgress: () => {},
    });
  });

  afterAll(async () => {
    if (dir !== undefined) {
      await down(dir);
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** A namespace in both clusters with a client Pod in each. */
  const namespace = async (): Promise<{ ns: string; clients: Record<Cluster, PodShell> }> => {
    const ns = `traffic-${++counter}`;
    const clients = {} as Record<Cluster, PodShell>;
    for (const c of CLUSTERS) {
      const { kc, core } = api(c);
      await ensureNamespace(core, ns);
      clients[c] = await clientPod(kc, c, ns, CLIENT_IMAGE);
    }
    return { ns, clients };
  };

  /** Two servers in `cluster` behind Service `name` with `spec`; they answer "<pod> <cluster>[ <port>]". */
  const serve = async (cluster: Cluster, ns: string, name: string, spec: k8s.V1ServiceSpec) => {
    const { core, apps } = api(cluster);
    const labels = { app: name };
    await apps.createNamespacedDeployment({ namespace: ns, body: serverDeployment(name, SERVER_IMAGE, cluster) });
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name }, spec: { selector: labels, ...spec } },
    });
  };

  const podsOf = async (cluster: Cluster, ns: string, app: string) =>
    (await api(cluster).core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;

  const exportIn = (cluster: Cluster, ns: string, name: string) => exportService(api(cluster), ns, name);

  /** The ServiceImport's first ip in `cluster`, once `ready` holds for the import. */
  const clusterSetIp = (cluster: Cluster, ns: string, name: string, ready: (si: SiView) => boolean = () => true) =>
    eventually(`ServiceImport ${ns}/${name} with ips in ${cluster}`, async () => {
      const si = await getImport(api(cluster), ns, name);
      return si !== undefined && (si.spec.ips?.length ?? 0) > 0 && ready(si) ? (si.spec.ips?.[0] as string) : undefined;
    });

  /**
   * Connects until `want` holds for the answers seen (at most 30 s; failed connections while the servers start are
   * not counted), then makes `sample` more connections, which must all be answered; returns every answer.
   */
  const answersUntil = async (
    client: PodShell,
    host: string,
    port: number,
    want: (seen: Set<string>) => boolean,
    sample = 6,
  ) => {
    const seen = new Set<string>();
    await eventually(
      `answers from ${host}:${port} in ${client.where}`,
      async () => {
        const a = await client.connect(host, port);
        if (a !== undefined) seen.add(a);
        return want(seen) ? true : undefined;
      },
      30_000,
    );
    for (const a of await client.answers(host, port, sample)) seen.add(a);
    return seen;
  };
  const clusterOf = (answer: string) => answer.split(' ')[1];

  it('a client in cluster-2 reaches the service cluster-1 exports by ClusterSetIP and name, answered only by cluster-1 Pods; after unexport, by neither', async () => {
    const { ns, clients } = await namespace();
    await serve('cluster-1', ns, 'web', { ports: [HTTP] });
    // cluster-2 has a Service of the same name that it does not export: its Pods must never answer the import.
    await serve('cluster-2', ns, 'web', { ports: [HTTP] });
    await exportIn('cluster-1', ns, 'web');
    const exporters = await eventually('both cluster-1 web Pods', async () => {
      const pods = await podsOf('cluster-1', ns, 'web');
      return pods.length === 2 ? new Set(pods.map((p) => `${p.metadata?.name} cluster-1`)) : undefined;
    });
    const client = clients['cluster-2'];
    const ip = await clusterSetIp('cluster-2', ns, 'web');
    const name = `web.${ns}.svc.clusterset.local`;
    for (const host of [ip, name]) {
      // Both cluster-1 Pods answer (kube-proxy spreads connections at random), and nothing else does.
      const seen = await answersUntil(client, host, 80, (s) => [...exporters].every((e) => s.has(e)));
      expect(
        [...seen].filter((a) => !exporters.has(a)),
        `answers from ${host}`,
      ).toEqual([]);
    }
    // The cluster-local name still reaches cluster-2's own Pods.
    const local = await client.connect(`web.${ns}.svc.cluster.local`, 80);
    expect(local === undefined ? undefined : clusterOf(local)).toBe('cluster-2');

    await unexportService(api('cluster-1'), ns, 'web');
    await eventually(
      `no answer through ${ip} after unexport`,
      async () => ((await client.connect(ip, 80)) === undefined ? true : undefined),
      30_000,
    );
    await eventually(
      `${name} gone after unexport`,
      async () => ((await client.dig(name, 'A')).length === 0 ? true : undefined),
      30_000,
    );
  });

  it('port union: a port only cluster-2 exposes is served only by cluster-2, a port both expose by both', async () => {
    const { ns, clients } = await namespace();
    await serve('cluster-1', ns, 'web', { ports: [HTTP] });
    await serve('cluster-2', ns, 'web', { ports: [HTTP, EXTRA] });
    await exportIn('cluster-1', ns, 'web');
    await exportIn('cluster-2', ns, 'web');
    for (const c of CLUSTERS) {
      const ip = await clusterSetIp(c, ns, 'web', (si) => si.spec.ports.length === 2);
      const onHttp = await answersUntil(clients[c], ip, 80, (s) => {
        const from = new Set([...s].map(clusterOf));
        return from.has('cluster-1') && from.has('cluster-2');
      });
      expect([...onHttp].filter((a) => a === '(no answer)')).toEqual([]);
      // cluster-1's Pods listen on 9000 too, but its slice has no port `extra`: kube-proxy must not send them any.
      const onExtra = await clients[c].answers(ip, 9000, 10);
      expect([...onExtra].map(clusterOf), `answers on 9000 in ${c}: ${[...onExtra].join(', ')}`).toEqual(
        [...onExtra].map(() => 'cluster-2'),
      );
    }
  });

  it("port name conflict: the oldest export's port number serves both clusters' Pods, the newer number serves none", async () => {
    const { ns, clients } = await namespace();
    await serve('cluster-1', ns, 'web', { ports: [HTTP] });
    await exportIn('cluster-1', ns, 'web');
    await clusterSetIp('cluster-2', ns, 'web');
    // Same port name, another number, exported later: the import keeps 80, and `http` endpoints of both clusters.
    await serve('cluster-2', ns, 'web', { ports: [{ ...HTTP, port: 8081 }] });
    await exportIn('cluster-2', ns, 'web');
    for (const c of CLUSTERS) {
      const ip = await clusterSetIp(c, ns, 'web');
      await answersUntil(clients[c], ip, 80, (s) => {
        const from = new Set([...s].map(clusterOf));
        return from.has('cluster-1') && from.has('cluster-2');
      });
      expect(await clients[c].connect(ip, 8081)).toBeUndefined();
    }
  });

  it('an exec with a TTY and no stdin answers, kwok survives it, and an absolute path runs in the Pod (the patched kwok)', async () => {
    const { ns, clients } = await namespace();
    let out = '';
    const status = await new Promise<string>((resolve, reject) => {
      new k8s.Exec(api('cluster-2').kc)
        .exec(
          ns,
          'client',
          'client',
          ['sh', '-c', 'echo tty-ok; sleep 0.3; echo late'],
          new Writable({
            write(chunk: Buffer, _enc, done) {
              out += chunk.toString();
              done();
            },
          }),
          null,
          null,
          true,
          (s) => setTimeout(() => resolve(s.status ?? ''), 50),
        )
        .catch(reject);
    });
    expect(status).toBe('Success');
    expect(out.replace(/\r/g, '')).toContain('tty-ok\nlate');
    // kwok still serves the next exec, and a program named by absolute path runs in the Pod, not on the host.
    const inPod = await clients['cluster-2'].run(['/bin/sh', '-c', 'hostname; readlink /proc/self/ns/net']);
    const [hostname, podNet] = inPod.stdout.trim().split('\n');
    expect(hostname).toBe('client');
    expect(podNet).not.toBe(await readlink('/proc/self/ns/net'));
  });

  it('headless: each per-Pod name resolves to its Pod and reaches it', async () => {
    const { ns, clients } = await namespace();
    const labels = { app: 'db' };
    const { core, apps } = api('cluster-1');
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'db' }, spec: { clusterIP: 'None', selector: labels, ports: [HTTP] } },
    });
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: serverStatefulSet('db', SERVER_IMAGE, 'cluster-1'),
    });
    await exportIn('cluster-1', ns, 'db');
    const pods = await eventually('db-0 and db-1 Running with IPs', async () => {
      const list = (await podsOf('cluster-1', ns, 'db')).filter((p) => p.status?.podIP !== undefined);
      return list.length === 2 ? list : undefined;
    });
    for (const c of CLUSTERS) {
      for (const p of pods) {
        const name = `${p.metadata?.name}.cluster-1.db.${ns}.svc.clusterset.local`;
        await eventually(
          `${name} → ${p.status?.podIP} in ${c}`,
          async () => ((await clients[c].dig(name, 'A')).join() === p.status?.podIP ? true : undefined),
          30_000,
        );
        const want = `${p.metadata?.name} cluster-1`;
        const seen = await answersUntil(clients[c], name, 8080, (x) => x.has(want));
        expect([...seen]).toEqual([want]);
      }
    }
  });
});
