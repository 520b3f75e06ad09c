/**
 * Whether an exported service can be written as a ServiceImport, a derived Service and imported EndpointSlices by an
 * importing cluster's API server, checked by the rules that API server applies (Kubernetes' own validation of object
 * metadata, Services and discovery.k8s.io/v1 EndpointSlices, and the ServiceImport CRD's schema).
 *
 * A Service and a ServiceExport accept things their imports do not: the ServiceExport CRD leaves `exportedLabels` and
 * `exportedAnnotations` unchecked, and a Service may have more ports than a ServiceImport holds. The origin checks its
 * exports with {@link importProblem} before publishing them (an unimportable export gets `Valid=False` and is not
 * published); every importer checks each record it holds again (a peer may run another version, or be wrong), and
 * conflict resolution picks among importable records only. See docs/core.md "Importability".
 *
 * What depends on the importing cluster alone (the IP families its Services may have) cannot be checked here: the
 * writer reports such a refusal on the objects and retries with backoff.
 */
import type { Endpoint, EndpointGroup, EndpointPort, ExportedService, ServicePort } from './export-record.js';

/** Why an export cannot be imported: a `Valid=False` reason, the field at fault and a one-line message. */
export interface ImportProblem {
  readonly reason: ImportProblemReason;
  /** The field at fault, as a path in the origin's objects (ServiceExport, Service or EndpointSlice). */
  readonly field: string;
  /** `<field>: <what is wrong> (<the rule, and which imported object needs it>)`. */
  readonly message: string;
}

export type ImportProblemReason =
  'InvalidExportedLabels' | 'InvalidExportedAnnotations' | 'UnimportableService' | 'UnimportableEndpoints';

/** ServiceImport CRD: `spec.ports` maxItems. */
export const MAX_IMPORT_PORTS = 100;
/** Kubernetes: the total size of an object's annotations (keys + values, bytes). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** Entries of `exportedLabels` / `exportedAnnotations` a record may carry (the wire's bound). */
export const MAX_EXPORTED_MAP_ENTRIES = 256;
/** discovery.k8s.io/v1: addresses of one endpoint. */
export const MAX_ENDPOINT_ADDRESSES = 100;
/** discovery.k8s.io/v1: ports of one EndpointSlice. */
export const MAX_SLICE_PORTS = 20_000;
/**
 * The JSON of one exported service (it travels inside one signed record; the receiver takes envelopes of at most
 * 512 KiB, see src/gossip/constants.ts): about 4,000 endpoints.
 */
export const MAX_SERVICE_JSON_BYTES = 448 * 1024;

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;
const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** Why `s` is not a DNS-1123 label, or undefined when it is one. */
export function dns1123LabelError(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (!DNS1123_LABEL.test(s))
    return "must be a DNS-1123 label: lowercase alphanumeric characters or '-', starting and ending with an alphanumeric character";
  return undefined;
}

/** Why `s` is not a DNS-1123 subdomain, or undefined when it is one. */
export function dns1123SubdomainError(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(s))
    return "must be a DNS-1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character";
  return undefined;
}

/** Why `s` is not a qualified name (a label or annotation key: `[prefix/]name`), or undefined when it is one. */
export function qualifiedNameError(s: string): string | undefined {
  const parts = s.split('/');
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) return 'prefix part must be non-empty';
    const p = dns1123SubdomainError(prefix);
    if (p !== undefined) return `prefix part ${p}`;
  } else {
    return "must be a name with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
  }
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!QUALIFIED_NAME.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** Why `s` is not a label value, or undefined when it is one (the empty string is one). */
export function labelValueError(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (s !== '' && !QUALIFIED_NAME.test(s))
    return "must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/**
 * The eight 16-bit groups of an IPv6 address in a form Go's net.ParseIP accepts (no zone; an embedded IPv4 address
 * allowed last), or undefined when `s` is not one.
 */
function ipv6Groups(s: string): number[] | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const double = s.indexOf('::');
  if (double !== -1 && s.indexOf('::', double + 1) !== -1) return undefined;
  const parse = (part: string, last: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (last && i === pieces.length - 1 && p.includes('.')) {
        if (!IPV4.test(p)) return undefined;
        const [a, b, c, d] = p.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return undefined;
    }
    return out;
  };
  if (double === -1) {
    const all = parse(s, true);
    return all?.length === 8 ? all : undefined;
  }
  const head = parse(s.slice(0, double), false);
  const tail = parse(s.slice(double + 2), true);
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** The canonical text of an IPv6 address (RFC 5952, as Go's netip prints it) from its eight groups. */
function canonicalIPv6(g: readonly number[]): string {
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff)
    return `::ffff:${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  // The longest run of two or more zero groups (the first of equal runs) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: readonly number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best === -1) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** Whether `s` is an IPv6 address (as Go's net.ParseIP reads one, without a zone). */
export function isIPv6(s: string): boolean {
  return s.includes(':') && ipv6Groups(s) !== undefined;
}

/** The canonical form of IPv6 address `s`, or undefined when it is not one. */
export function canonicalIPv6Of(s: string): string | undefined {
  const g = s.includes(':') ? ipv6Groups(s) : undefined;
  return g === undefined ? undefined : canonicalIPv6(g);
}

/** Whether `s` is an IPv4 address in dotted-decimal form without leading zeros. */
export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

/**
 * Addresses an EndpointSlice may not hold (Kubernetes' ValidateEndpointIP): unspecified, loopback, link-local and
 * link-local multicast. `undefined` when the address is allowed.
 */
function specialIpv4Error(a: number, b: number, c: number, d: number): string | undefined {
  if (a === 0 && b === 0 && c === 0 && d === 0) return 'may not be unspecified (0.0.0.0)';
  if (a === 127) return 'may not be in the loopback range (127.0.0.0/8)';
  if (a === 169 && b === 254) return 'may not be in the link-local range (169.254.0.0/16)';
  if (a === 224 && b === 0 && c === 0) return 'may not be in the link-local multicast range (224.0.0.0/24)';
  return undefined;
}

function specialIpError(address: string, v6: boolean): string | undefined {
  if (!v6) {
    // The address passed the dotted-decimal check: prefixes decide (this runs for every endpoint of every export).
    if (address === '0.0.0.0') return 'may not be unspecified (0.0.0.0)';
    if (address.startsWith('127.')) return 'may not be in the loopback range (127.0.0.0/8)';
    if (address.startsWith('169.254.')) return 'may not be in the link-local range (169.254.0.0/16)';
    if (address.startsWith('224.0.0.')) return 'may not be in the link-local multicast range (224.0.0.0/24)';
    return undefined;
  }
  const g = ipv6Groups(address)!;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff)
    return specialIpv4Error(g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff);
  if (g.every((x) => x === 0)) return 'may not be unspecified (::)';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'may not be in the loopback range (::1/128)';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'may not be in the link-local range (fe80::/10)';
  // Go's IsLinkLocalMulticast: ffX2::/16 for any flags X.
  if ((g[0]! & 0xff0f) === 0xff02) return 'may not be in the link-local multicast range (ff02::/16)';
  return undefined;
}

function problem(reason: ImportProblemReason, field: string, what: string): ImportProblem {
  return { reason, field, message: `${field}: ${what}` };
}

function checkLabels(labels: Readonly<Record<string, string>>): ImportProblem | undefined {
  const keys = Object.keys(labels);
  const reason = 'InvalidExportedLabels';
  if (keys.length > MAX_EXPORTED_MAP_ENTRIES)
    return problem(reason, 'spec.exportedLabels', `${keys.length} labels; at most ${MAX_EXPORTED_MAP_ENTRIES}`);
  for (const k of keys) {
    const field = `spec.exportedLabels[${quote(k)}]`;
    const keyError = qualifiedNameError(k);
    if (keyError !== undefined)
      return problem(reason, field, `invalid label key: ${keyError} (labels of the ServiceImport)`);
    const valueError = labelValueError(labels[k]!);
    if (valueError !== undefined)
      return problem(
        reason,
        field,
        `invalid label value ${quote(labels[k]!)}: ${valueError} (labels of the ServiceImport)`,
      );
  }
  return undefined;
}

function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function checkAnnotations(annotations: Readonly<Record<string, string>>): ImportProblem | undefined {
  const keys = Object.keys(annotations);
  const reason = 'InvalidExportedAnnotations';
  if (keys.length > MAX_EXPORTED_MAP_ENTRIES)
    return problem(
      reason,
      'spec.exportedAnnotations',
      `${keys.length} annotations; at most ${MAX_EXPORTED_MAP_ENTRIES}`,
    );
  let total = 0;
  for (const k of keys) {
    // Kubernetes checks annotation keys in lower case.
    const keyError = qualifiedNameError(k.toLowerCase());
    if (keyError !== undefined)
      return problem(
        reason,
        `spec.exportedAnnotations[${quote(k)}]`,
        `invalid annotation key: ${keyError} (annotations of the ServiceImport)`,
      );
    total += utf8Bytes(k) + utf8Bytes(annotations[k]!);
  }
  if (total > MAX_ANNOTATIONS_BYTES)
    return problem(
      reason,
      'spec.exportedAnnotations',
      `${total} bytes in total; annotations may take at most ${MAX_ANNOTATIONS_BYTES} bytes (annotations of the ServiceImport)`,
    );
  return undefined;
}

function checkServicePorts(ports: readonly ServicePort[]): ImportProblem | undefined {
  const reason = 'UnimportableService';
  if (ports.length > MAX_IMPORT_PORTS)
    return problem(
      reason,
      'spec.ports',
      `${ports.length} ports; a ServiceImport holds at most ${MAX_IMPORT_PORTS} (ServiceImport spec.ports)`,
    );
  const names = new Set<string>();
  const protocolPorts = new Set<string>();
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i]!;
    const field = `spec.ports[${i}]`;
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535)
      return problem(reason, `${field}.port`, `${p.port} is not a port number from 1 to 65535`);
    if (!PROTOCOLS.has(p.protocol))
      return problem(reason, `${field}.protocol`, `${quote(p.protocol)} is not TCP, UDP or SCTP`);
    const name = p.name ?? '';
    if (name === '') {
      if (ports.length > 1)
        return problem(reason, `${field}.name`, 'is required when there is more than one port (derived Service)');
    } else {
      const nameError = dns1123LabelError(name);
      if (nameError !== undefined)
        return problem(reason, `${field}.name`, `${quote(name)} ${nameError} (derived Service port name)`);
      if (names.has(name)) return problem(reason, `${field}.name`, `${quote(name)} appears twice`);
      names.add(name);
    }
    const pp = `${p.protocol}/${p.port}`;
    if (protocolPorts.has(pp)) return problem(reason, field, `port ${pp} appears twice`);
    protocolPorts.add(pp);
    if (p.appProtocol !== undefined) {
      const e = qualifiedNameError(p.appProtocol);
      if (e !== undefined)
        return problem(reason, `${field}.appProtocol`, `${quote(p.appProtocol)}: ${e} (derived Service appProtocol)`);
    }
  }
  return undefined;
}

function checkServiceFields(s: ExportedService): ImportProblem | undefined {
  const reason = 'UnimportableService';
  if (s.type !== 'ClusterSetIP' && s.type !== 'Headless')
    return problem(reason, 'spec.type', `${quote(String(s.type))} is not ClusterSetIP or Headless`);
  if (s.sessionAffinity !== 'None' && s.sessionAffinity !== 'ClientIP')
    return problem(reason, 'spec.sessionAffinity', `${quote(s.sessionAffinity)} is not None or ClientIP`);
  const timeout = s.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400))
    return problem(
      reason,
      'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
      `${timeout} is not from 1 to 86400 (ServiceImport spec.sessionAffinityConfig)`,
    );
  if (
    s.internalTrafficPolicy !== undefined &&
    s.internalTrafficPolicy !== 'Cluster' &&
    s.internalTrafficPolicy !== 'Local'
  )
    return problem(reason, 'spec.internalTrafficPolicy', `${quote(s.internalTrafficPolicy)} is not Cluster or Local`);
  if (s.ipFamilies.length > 2) return problem(reason, 'spec.ipFamilies', 'has more than 2 entries');
  for (let i = 0; i < s.ipFamilies.length; i++) {
    const f = s.ipFamilies[i]!;
    if (f !== 'IPv4' && f !== 'IPv6')
      return problem(reason, `spec.ipFamilies[${i}]`, `${quote(f)} is not IPv4 or IPv6`);
  }
  if (s.type === 'ClusterSetIP' && s.ipFamilies.length === 2 && s.ipFamilies[0] === s.ipFamilies[1])
    return problem(reason, 'spec.ipFamilies', `${quote(s.ipFamilies[0]!)} appears twice`);
  if (s.type === 'ClusterSetIP' && s.ports.length === 0)
    return problem(reason, 'spec.ports', 'a ClusterSetIP import needs at least one port (derived Service)');
  return checkServicePorts(s.ports);
}

function checkSlicePorts(ports: readonly EndpointPort[], where: string): ImportProblem | undefined {
  const reason = 'UnimportableEndpoints';
  if (ports.length > MAX_SLICE_PORTS)
    return problem(
      reason,
      `${where}.ports`,
      `${ports.length} ports; an EndpointSlice holds at most ${MAX_SLICE_PORTS}`,
    );
  const names = new Set<string>();
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i]!;
    const field = `${where}.ports[${i}]`;
    const name = p.name ?? '';
    if (name !== '') {
      const e = dns1123LabelError(name);
      if (e !== undefined) return problem(reason, `${field}.name`, `${quote(name)} ${e}`);
    }
    if (names.has(name)) return problem(reason, `${field}.name`, `${quote(name)} appears twice`);
    names.add(name);
    if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol))
      return problem(reason, `${field}.protocol`, `${quote(p.protocol)} is not TCP, UDP or SCTP`);
    // The API server takes any int32 port number in a slice (it validates none), nothing beyond.
    if (p.port !== undefined && (!Number.isInteger(p.port) || p.port < -2_147_483_648 || p.port > 2_147_483_647))
      return problem(reason, `${field}.port`, `${p.port} is not a 32-bit integer`);
    if (p.appProtocol !== undefined) {
      const e = qualifiedNameError(p.appProtocol);
      if (e !== undefined) return problem(reason, `${field}.appProtocol`, `${quote(p.appProtocol)}: ${e}`);
    }
  }
  return undefined;
}

/** Kubernetes' IsFullyQualifiedDomainName: one trailing dot allowed, a DNS-1123 subdomain of two labels or more. */
function fqdnError(address: string): string | undefined {
  const name = address.endsWith('.') ? address.slice(0, -1) : address;
  const e = dns1123SubdomainError(name);
  if (e !== undefined) return e;
  if (!name.includes('.')) return 'must be a domain with at least two segments separated by dots';
  for (const label of name.split('.'))
    if (label.length > 63) return `label ${quote(label)} is longer than 63 characters`;
  return undefined;
}

/**
 * IPv4 in dotted decimal without leading zeros, IPv6 in canonical form: what Kubernetes' strict IP validation
 * (StrictIPCIDRValidation, on by default from 1.36) accepts, so an import is accepted whatever the importer's version.
 */
function addressError(address: string, addressType: EndpointGroup['addressType']): string | undefined {
  if (addressType === 'IPv4')
    return isIPv4(address) ? specialIpError(address, false) : 'is not an IPv4 address in dotted decimal form';
  if (addressType === 'IPv6') {
    const canonical = canonicalIPv6Of(address);
    if (canonical === undefined) return 'is not a valid IPv6 address';
    if (canonical.startsWith('::ffff:') && canonical.includes('.')) return 'must not be an IPv4-mapped IPv6 address';
    if (canonical !== address) return `must be in canonical form (${quote(canonical)})`;
    return specialIpError(address, true);
  }
  return fqdnError(address);
}

function checkEndpoint(
  e: Endpoint,
  addressType: EndpointGroup['addressType'],
  field: string,
): ImportProblem | undefined {
  const reason = 'UnimportableEndpoints';
  if (e.addresses.length === 0 || e.addresses.length > MAX_ENDPOINT_ADDRESSES)
    return problem(reason, `${field}.addresses`, `must have 1 to ${MAX_ENDPOINT_ADDRESSES} addresses`);
  for (let i = 0; i < e.addresses.length; i++) {
    const err = addressError(e.addresses[i]!, addressType);
    if (err !== undefined) return problem(reason, `${field}.addresses[${i}]`, `${quote(e.addresses[i]!)} ${err}`);
  }
  if (e.hostname !== undefined) {
    const err = dns1123LabelError(e.hostname);
    if (err !== undefined) return problem(reason, `${field}.hostname`, `${quote(e.hostname)} ${err}`);
  }
  if (e.nodeName !== undefined) {
    const err = dns1123SubdomainError(e.nodeName);
    if (err !== undefined) return problem(reason, `${field}.nodeName`, `${quote(e.nodeName)} ${err}`);
  }
  return undefined;
}

function checkEndpoints(groups: readonly EndpointGroup[]): ImportProblem | undefined {
  for (let g = 0; g < groups.length; g++) {
    const group = groups[g]!;
    const where = `endpointslices(${group.addressType})`;
    if (group.addressType !== 'IPv4' && group.addressType !== 'IPv6' && group.addressType !== 'FQDN')
      return problem('UnimportableEndpoints', `${where}.addressType`, 'is not IPv4, IPv6 or FQDN');
    const ports = checkSlicePorts(group.ports, where);
    if (ports !== undefined) return ports;
    for (let i = 0; i < group.endpoints.length; i++) {
      const p = checkEndpoint(group.endpoints[i]!, group.addressType, `${where}.endpoints[${i}]`);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}

/**
 * An upper bound of the bytes of `JSON.stringify(s)` (a character takes at most 6 bytes in JSON: `\u0000`), cheap
 * next to the validation walk, so the exact size is computed only for services near the limit.
 */
function sizeBound(s: ExportedService): number {
  let chars = 0;
  const text = (x: string | undefined) => {
    if (x !== undefined) chars += x.length + 8;
  };
  for (const m of [s.exportedLabels, s.exportedAnnotations]) for (const k in m) chars += k.length + m[k]!.length + 6;
  text(s.trafficDistribution);
  chars += 64 * (s.ports.length + 4);
  for (const p of s.ports) chars += (p.name?.length ?? 0) + (p.appProtocol?.length ?? 0);
  for (const g of s.endpointGroups) {
    chars += 64;
    for (const p of g.ports) chars += 96 + (p.name?.length ?? 0) + (p.appProtocol?.length ?? 0);
    for (const e of g.endpoints) {
      chars += 128;
      for (const a of e.addresses) chars += a.length + 3;
      text(e.hostname);
      text(e.zone);
      text(e.nodeName);
    }
  }
  return chars * 6 + 1024;
}

function checkSize(s: ExportedService): ImportProblem | undefined {
  if (sizeBound(s) <= MAX_SERVICE_JSON_BYTES) return undefined;
  const bytes = utf8Bytes(JSON.stringify(s));
  if (bytes <= MAX_SERVICE_JSON_BYTES) return undefined;
  const endpoints = s.endpointGroups.reduce((n, g) => n + g.endpoints.length, 0);
  return problem(
    'UnimportableEndpoints',
    'endpointslices',
    `${endpoints} endpoints make a record of ${Math.ceil(bytes / 1024)} KiB; one export carries at most ${MAX_SERVICE_JSON_BYTES / 1024} KiB`,
  );
}

const memo = new WeakMap<ExportedService, ImportProblem | null>();

/**
 * Why `service` cannot be imported as written (the first problem found), or undefined when every object an importer
 * makes of it passes the API server's validation. Pure, and memoised per (immutable) service object.
 */
export function importProblem(service: ExportedService): ImportProblem | undefined {
  const hit = memo.get(service);
  if (hit !== undefined) return hit ?? undefined;
  const p =
    checkLabels(service.exportedLabels) ??
    checkAnnotations(service.exportedAnnotations) ??
    checkServiceFields(service) ??
    checkEndpoints(service.endpointGroups) ??
    checkSize(service);
  memo.set(service, p ?? null);
  return p;
}

const RFC1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Whether a record's origin and key can name imported objects: the origin is a label value and `status.clusters`
 * entry (a DNS label), the namespace a namespace name, the name a Service name (a DNS-1035 label, as the
 * `multicluster.kubernetes.io/service-name` label value). An origin always sends valid ones; a buggy peer may not.
 */
export function recordKeyProblem(origin: string, namespace: string, name: string): ImportProblem | undefined {
  const reason = 'UnimportableService';
  const o = dns1123LabelError(origin);
  if (o !== undefined) return problem(reason, 'origin', `cluster id ${quote(origin)} ${o}`);
  const n = dns1123LabelError(namespace);
  if (n !== undefined) return problem(reason, 'metadata.namespace', `${quote(namespace)} ${n}`);
  if (name.length > 63 || !RFC1035_LABEL.test(name))
    return problem(reason, 'metadata.name', `${quote(name)} must be a DNS-1035 label (a Service name)`);
  return undefined;
}

/** How good an endpoint is to keep when not all fit: ready first, then serving, then the rest. */
function keepRank(e: Endpoint): number {
  const c = e.conditions;
  return (c.ready !== false ? 2 : 0) + (c.serving !== false ? 1 : 0);
}

/**
 * `service` with as many endpoints as fit in one record (ready ones first, then serving ones, each group's order
 * kept), when its endpoints alone make it too large; undefined when it fits. Deterministic, so every pass of the
 * origin publishes the same record for the same endpoints.
 */
export function fitToRecord(
  service: ExportedService,
): { service: ExportedService; kept: number; total: number } | undefined {
  if (checkSize(service) === undefined) return undefined;
  const all: { g: number; i: number; rank: number }[] = [];
  service.endpointGroups.forEach((group, g) =>
    group.endpoints.forEach((e, i) => all.push({ g, i, rank: keepRank(e) })),
  );
  // Stable: among equal ranks the group and address order stays.
  const order = all.map((x, n) => ({ ...x, n })).sort((a, b) => b.rank - a.rank || a.n - b.n);
  const total = all.length;
  const bytes = utf8Bytes(JSON.stringify(service));
  let keep = Math.max(0, Math.floor((total * MAX_SERVICE_JSON_BYTES * 0.95) / bytes));
  for (;;) {
    const chosen = new Set(order.slice(0, keep).map((x) => `${x.g}/${x.i}`));
    const endpointGroups = service.endpointGroups
      .map((group, g) => ({ ...group, endpoints: group.endpoints.filter((_, i) => chosen.has(`${g}/${i}`)) }))
      .filter((group) => group.endpoints.length > 0);
    const fitted = { ...service, endpointGroups };
    if (keep === 0 || checkSize(fitted) === undefined) return { service: fitted, kept: keep, total };
    keep = Math.floor(keep * 0.9);
  }
}
