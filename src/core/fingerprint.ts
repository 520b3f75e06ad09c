import type { ExportedService } from './export-record.js';

/**
 * A fast, portable 64-bit structural hash (two independent 32-bit lanes, FNV-1a style with a murmur3 finaliser).
 *
 * Every node must compute the same value for the same data on any platform, so it is a hand-written hash over the
 * fields in a fixed order, never JSON text or object key order. Uses: digest contributions (key, version), the
 * deterministic tie-break between two contents at one version, and change detection in `planOwnRecords`. It is not
 * cryptographic and need not be: records are authenticated by the origin's signature in `proof`.
 */
export class Fingerprint {
  a = 0x811c9dc5;
  b = 0x9e3779b9;

  str(s: string | undefined): this {
    let a = this.a;
    let b = this.b;
    if (s === undefined) {
      a = Math.imul(a ^ 0xfffe, 0x01000193);
      b = Math.imul(b ^ 0xfffe, 0x5bd1e995);
    } else {
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        a = Math.imul(a ^ c, 0x01000193);
        b = Math.imul(b ^ c, 0x5bd1e995);
      }
      // The length closes the string, so ("ab","c") and ("a","bc") differ.
      a = Math.imul(a ^ (s.length | 0x10000), 0x01000193);
      b = Math.imul(b ^ (s.length | 0x10000), 0x5bd1e995);
    }
    this.a = a;
    this.b = b;
    return this;
  }

  num(n: number | undefined): this {
    if (n === undefined) return this.str(undefined);
    // Split into two 32-bit halves so integers up to 2^53 (milliseconds) hash exactly.
    const lo = n >>> 0;
    const hi = Math.floor(n / 0x100000000) >>> 0;
    this.a = Math.imul(Math.imul(this.a ^ lo, 0x01000193) ^ hi, 0x01000193);
    this.b = Math.imul(Math.imul(this.b ^ lo, 0x5bd1e995) ^ hi, 0x5bd1e995);
    return this;
  }

  bool(v: boolean | undefined): this {
    return this.num(v === undefined ? 2 : v ? 1 : 0);
  }

  /** String maps hash by sorted key, so construction order does not matter. */
  map(m: Readonly<Record<string, string>>): this {
    const keys = Object.keys(m).sort();
    this.num(keys.length);
    for (const k of keys) this.str(k).str(m[k]);
    return this;
  }

  /** The two finalised lanes. */
  done(): [number, number] {
    return [fmix32(this.a), fmix32(this.b ^ 0x2545f491)];
  }
}

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Feeds the content of an exported service, field by field in a fixed order. */
export function fingerprintService(f: Fingerprint, s: ExportedService): Fingerprint {
  f.num(s.exportCreatedMs).str(s.type).num(s.ports.length);
  for (const p of s.ports) f.str(p.name).str(p.protocol).num(p.port).str(p.appProtocol);
  f.str(s.sessionAffinity);
  f.num(s.sessionAffinityConfig === undefined ? undefined : 1);
  f.num(s.sessionAffinityConfig?.clientIP === undefined ? undefined : 1);
  f.num(s.sessionAffinityConfig?.clientIP?.timeoutSeconds);
  f.str(s.internalTrafficPolicy).str(s.trafficDistribution).num(s.ipFamilies.length);
  for (const fam of s.ipFamilies) f.str(fam);
  f.map(s.exportedLabels).map(s.exportedAnnotations).num(s.endpointGroups.length);
  for (const g of s.endpointGroups) {
    f.str(g.addressType).num(g.ports.length);
    for (const p of g.ports) f.str(p.name).str(p.protocol).num(p.port).str(p.appProtocol);
    f.num(g.endpoints.length);
    for (const e of g.endpoints) {
      f.num(e.addresses.length);
      for (const a of e.addresses) f.str(a);
      f.bool(e.conditions.ready).bool(e.conditions.serving).bool(e.conditions.terminating);
      f.str(e.hostname).str(e.zone).str(e.nodeName);
    }
  }
  return f;
}
