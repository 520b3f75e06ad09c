// The data plane of the local ClusterSet (`up --data-plane`): a network a pod's traffic really crosses.
//
// Per ClusterSet, made with iproute2 and owned by it (names start with the ClusterSet's prefix, see netPrefix):
//
//   fabric netns  <prefix>-f      the routers' router: one veth per cluster, a route per cluster's pod CIDR
//   cluster netns <prefix>-c<i>   the cluster's "node": kube-proxy (iptables mode) and CoreDNS run here; a veth
//                                 `up0` to the fabric (10.250.<i>.2, default route via 10.250.<i>.1) and one veth per
//                                 pod, with a /32 route to the pod's IP and proxy ARP (the routed layout Calico uses)
//   pod netns     (unnamed)       one per Pod, held by the pod's sandbox process (see pod-sandbox.ts)
//
// Pod IPs are routed between clusters with no NAT: a flat network, as Cilium ClusterMesh and GKE assume. Service
// CIDRs never leave a cluster: a ClusterIP is DNATed to an endpoint by that cluster's kube-proxy, in its netns. The
// API server stays on the host's loopback; inside a cluster netns the same address (127.0.0.1:<port>) is bridged to
// it over a unix socket (two socat processes), so kube-proxy and CoreDNS use the cluster's own kubeconfig unchanged.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ClusterNet {
  readonly name: string;
  readonly index: number;
  /** The cluster's network namespace (its "node"). */
  readonly netns: string;
  /** The cluster netns's address on its link to the fabric: where CoreDNS listens. */
  readonly nodeIp: string;
  /** The fabric's address on that link: the cluster netns's default gateway. */
  readonly gatewayIp: string;
  readonly podCidr: string;
  readonly serviceCidr: string;
  /** The ClusterIP of the cluster's kube-dns Service: the nameserver of every pod. */
  readonly dnsServiceIp: string;
}

export interface DataPlaneNet {
  readonly prefix: string;
  readonly fabric: string;
  readonly clusters: readonly ClusterNet[];
}

/** Netns names of a ClusterSet: `mcsg` + 6 hex of its directory, so two ClusterSets on one machine never meet. */
export function netPrefix(dir: string): string {
  return `mcsg${createHash('sha256').update(dir).digest('hex').slice(0, 6)}`;
}

export function planNetwork(
  dir: string,
  clusters: readonly { name: string; index: number; podCidr: string; serviceCidr: string }[],
): DataPlaneNet {
  const prefix = netPrefix(dir);
  return {
    prefix,
    fabric: `${prefix}-f`,
    clusters: clusters.map((c) => ({
      name: c.name,
      index: c.index,
      netns: `${prefix}-c${c.index}`,
      nodeIp: `10.250.${c.index}.2`,
      gatewayIp: `10.250.${c.index}.1`,
      podCidr: c.podCidr,
      serviceCidr: c.serviceCidr,
      dnsServiceIp: c.serviceCidr.replace(/\.0\.0\/16$/, '.0.10'),
    })),
  };
}

/** Runs a command; a failure names the command and carries its stderr. */
export async function sh(argv: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run(argv[0] as string, argv.slice(1), { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${argv.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** `ip -batch -` with the given lines, so a whole setup is one process. */
async function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  const args = [...(netns === undefined ? [] : ['-n', netns]), '-batch', '-'];
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', args, (err, _out, stderr) =>
      err === null ? resolve() : reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`)),
    );
    child.stdin?.end(lines.join('\n') + '\n');
  });
}

/** Every netns whose name starts with `prefix-`. */
export async function netnsWithPrefix(prefix: string): Promise<string[]> {
  const out = await sh(['ip', 'netns', 'list']).catch(() => '');
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
}

/** Deletes the ClusterSet's namespaces (their veths go with them). Missing ones are fine. */
export async function destroyNetwork(prefix: string): Promise<void> {
  for (const n of await netnsWithPrefix(prefix)) await sh(['ip', 'netns', 'delete', n]).catch(() => undefined);
}

const sysctls = (netns: string, settings: Record<string, string>) =>
  sh(['ip', 'netns', 'exec', netns, 'sysctl', '-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);

/** Makes the fabric and every cluster netns, linked and routed; removes a previous run's first. */
export async function createNetwork(net: DataPlaneNet): Promise<void> {
  await destroyNetwork(net.prefix);
  await sh(['ip', 'netns', 'add', net.fabric]);
  const forwarding = { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.rp_filter': '0' };
  await sysctls(net.fabric, forwarding);
  const fabric = ['link set lo up'];
  for (const c of net.clusters) {
    await sh(['ip', 'netns', 'add', c.netns]);
    await sysctls(c.netns, {
      ...forwarding,
      'net.ipv4.conf.default.rp_filter': '0',
      // kube-proxy sets these itself when it may; set here so a refused sysctl in a netns is not a silent gap.
      'net.ipv4.conf.all.route_localnet': '1',
    });
    fabric.push(
      `link add c${c.index} type veth peer name up0 netns ${c.netns}`,
      `addr add ${c.gatewayIp}/24 dev c${c.index}`,
      `link set c${c.index} up`,
    );
  }
  await ipBatch(fabric, net.fabric);
  for (const c of net.clusters) {
    await ipBatch(
      ['link set lo up', `addr add ${c.nodeIp}/24 dev up0`, 'link set up0 up', `route add default via ${c.gatewayIp}`],
      c.netns,
    );
  }
  await ipBatch(
    net.clusters.map((c) => `route add ${c.podCidr} via ${c.nodeIp}`),
    net.fabric,
  );
}

/** The command line that runs `argv` inside a netns (same pid: `ip netns exec` execs it). */
export function inNetns(netns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', netns, ...argv];
}
