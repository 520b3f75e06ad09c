/**
 * ClusterSetIPs the node picks itself, so that a new import's derived Service, ServiceImport (with `spec.ips`) and
 * slices are created at the same time instead of one after the other (docs/operations.md "Writes, and why each").
 *
 * An address is taken from the cluster's ServiceCIDRs (networking.k8s.io/v1), in the band the API server's own
 * allocator gives out dynamically: KEP-3070 leaves the lower band of every range to Services that ask for a static
 * address, and we must not take one a user is about to ask for. Within the band the first candidate comes from a hash
 * of the service key (the same key gets the same address in clusters with the same range, when it is free), then the
 * next addresses no Service in the cache holds and no create in flight has picked. The API server still decides: an
 * address taken meanwhile is refused (HTTP 422 naming `spec.clusterIPs`) and the writer creates the Service again with
 * no address, letting the API server pick, as before.
 */
import { createHash } from 'node:crypto';
import { Address4, Address6 } from 'ip-address';

export type IpFamily = 'IPv4' | 'IPv6';

/** A service range: the addresses the API server may give Services, for one family. */
export interface ServiceRange {
  readonly cidr: string;
  readonly family: IpFamily;
  /** First address of the band given out dynamically. */
  readonly first: bigint;
  /** Number of addresses in that band (at least 1). */
  readonly count: bigint;
}

/** How many free addresses after the hashed one are tried before giving up (the API server then picks). */
const PROBES = 256;

/**
 * The dynamic band of a service CIDR, as the API server's allocator computes it: the range without its network
 * address (and, for IPv4, its broadcast address), of which the first `clamp(size / 16, 16, 256)` addresses are the
 * static band (none for 16 addresses or fewer). Undefined for what is not a CIDR, or a range with no usable address.
 */
export function serviceRange(cidr: string): ServiceRange | undefined {
  let family: IpFamily;
  let start: bigint;
  let end: bigint;
  if (Address4.isValid(cidr) && cidr.includes('/')) {
    const a = new Address4(cidr);
    family = 'IPv4';
    start = a._startAddress();
    end = a._endAddress();
  } else if (Address6.isValid(cidr) && cidr.includes('/')) {
    const a = new Address6(cidr);
    family = 'IPv6';
    start = a._startAddress();
    end = a._endAddress();
  } else return undefined;
  const total = end - start + 1n;
  // Usable: without the network address, and for IPv4 without the broadcast address.
  const usableFirst = start + 1n;
  const usable = total - (family === 'IPv4' ? 2n : 1n);
  if (usable < 1n) return undefined;
  let offset = 0n;
  if (total >= 16n) {
    offset = total / 16n;
    if (offset < 16n) offset = 16n;
    if (offset > 256n) offset = 256n;
  }
  if (offset >= usable) offset = 0n;
  return { cidr, family, first: usableFirst + offset, count: usable - offset };
}

/** The canonical text of an address of `family` (IPv6 as RFC 5952, what the API server stores). */
export function formatAddress(family: IpFamily, value: bigint): string {
  return family === 'IPv4' ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

/** The canonical text of an address, for comparing what the API server and we wrote; undefined when not an address. */
export function canonicalAddress(ip: string): string | undefined {
  if (Address4.isValid(ip) && !ip.includes('/')) return new Address4(ip).correctForm();
  if (Address6.isValid(ip) && !ip.includes('/')) return new Address6(ip).correctForm();
  return undefined;
}

/**
 * The Services-cache index the writer asks whether an address is taken: a Service's primary cluster IP, canonical
 * (none for a headless one). A dual-stack Service's second address is not indexed: picking it is refused by the API
 * server, and the writer lets the API server pick then.
 */
export function serviceIpIndex(svc: { readonly spec?: { readonly clusterIP?: string } }): string | undefined {
  const ip = svc.spec?.clusterIP;
  return ip === undefined ? undefined : canonicalAddress(ip);
}

/**
 * The address for `key` in `range`: the hashed place in the band, else the next of the following {@link PROBES}
 * addresses (wrapping round the band) for which `taken` is false. Undefined when all of those are taken.
 */
export function pickAddress(range: ServiceRange, key: string, taken: (ip: string) => boolean): string | undefined {
  const digest = createHash('sha256').update(`${range.cidr} ${key}`).digest();
  const start = digest.readBigUInt64BE(0) % range.count;
  const probes = range.count < BigInt(PROBES) ? range.count : BigInt(PROBES);
  for (let i = 0n; i < probes; i++) {
    const ip = formatAddress(range.family, range.first + ((start + i) % range.count));
    if (!taken(ip)) return ip;
  }
  return undefined;
}

/** The fields of a networking.k8s.io/v1 ServiceCIDR we read. */
export interface ServiceCidrObject {
  readonly metadata?: { readonly name?: string; readonly deletionTimestamp?: Date | string };
  readonly spec?: { readonly cidrs?: readonly string[] };
  readonly status?: { readonly conditions?: readonly { readonly type: string; readonly status: string }[] };
}

/**
 * The ranges to pick from, one per family: of the ServiceCIDRs that are not being deleted and not Ready=False, the
 * one named `kubernetes` (the cluster's default) first, then the others by name; per family its first CIDR.
 */
export function rangesOf(cidrs: readonly ServiceCidrObject[]): Map<IpFamily, ServiceRange> {
  const usable = cidrs
    .filter(
      (c) =>
        c.metadata?.deletionTimestamp === undefined &&
        !(c.status?.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'False'),
    )
    .sort((a, b) => {
      const an = a.metadata?.name ?? '';
      const bn = b.metadata?.name ?? '';
      if (an === 'kubernetes' || bn === 'kubernetes') return an === 'kubernetes' ? (bn === 'kubernetes' ? 0 : -1) : 1;
      return an < bn ? -1 : an > bn ? 1 : 0;
    });
  const out = new Map<IpFamily, ServiceRange>();
  for (const c of usable)
    for (const cidr of c.spec?.cidrs ?? []) {
      const r = serviceRange(cidr);
      if (r !== undefined && !out.has(r.family)) out.set(r.family, r);
    }
  return out;
}

/**
 * Picks the addresses of new derived Services from the cluster's service ranges ({@link setRanges}), never one a
 * Service holds (`taken`) nor one another create in flight has picked (until {@link release}).
 */
export class ClusterIpPlanner {
  #ranges = new Map<IpFamily, ServiceRange>();
  readonly #inFlight = new Set<string>();

  setRanges(ranges: Map<IpFamily, ServiceRange>): void {
    this.#ranges = ranges;
  }

  /** The service CIDRs picked from, one per family (for logs). */
  get cidrs(): string[] {
    return [...this.#ranges.values()].map((r) => r.cidr);
  }

  /**
   * One address per family of `families`, in their order, reserved until {@link release}; undefined (nothing
   * reserved) when a family has no known range or no free address near its hashed place: the API server picks then.
   */
  pick(key: string, families: readonly string[], taken: (ip: string) => boolean): string[] | undefined {
    const out: string[] = [];
    for (const family of families) {
      const range = this.#ranges.get(family as IpFamily);
      if (range === undefined) return undefined;
      const ip = pickAddress(range, key, (a) => this.#inFlight.has(a) || out.includes(a) || taken(a));
      if (ip === undefined) return undefined;
      out.push(ip);
    }
    if (out.length === 0) return undefined;
    for (const ip of out) this.#inFlight.add(ip);
    return out;
  }

  release(ips: readonly string[]): void {
    for (const ip of ips) this.#inFlight.delete(ip);
  }
}
