import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/**
 * The ports we hand out lie below the kernel's ephemeral range (ip_local_port_range, usually 32768–60999). A port
 * from `listen(0)` comes from that range, and so does the local port of every outgoing connection: between being
 * handed out and being bound by a component seconds later, such a port was seen taken by a connection (kube-
 * controller-manager then failed with "address already in use"). Below the range, only listeners compete.
 */
function candidateRange(): [number, number] {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && low > 12_000) return [10_000, low];
  } catch {
    /* not Linux: fall through */
  }
  return [20_000, 32_000];
}

/**
 * Ports the Fetch standard blocks ("bad ports"): Node's fetch (undici), which @kubernetes/client-node uses, refuses
 * them with "bad port". Of these only 10080 lies in the range above; the whole list is kept for other ranges.
 */
const FETCH_BAD_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

function tryListen(port: number, host: string): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen({ port, host, exclusive: true }, () => resolve(s));
  });
}

/**
 * `count` distinct TCP ports that are free on `host`, drawn at random below the ephemeral range. All are held open
 * until every one is found, so they are distinct; another process can still bind one before its user does, which
 * the caller sees as a component failing to start (named, with its log).
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const [low, high] = candidateRange();
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt > 1000) throw new Error(`no ${count} free ports on ${host} in ${low}–${high - 1}`);
      const port = low + Math.floor(Math.random() * (high - low));
      if (ports.includes(port) || FETCH_BAD_PORTS.has(port)) continue;
      const s = await tryListen(port, host);
      if (s === undefined) continue;
      held.push(s);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
