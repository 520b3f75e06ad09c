// Phase A's arbitraries: exported-service content (what an origin publishes, src/core/export-record.ts) across valid
// and invalid values of every field an importer writes. Each area can be stressed alone ("focus") while the others
// stay plainly valid, so a disagreement found in one area does not hide the others.
import fc from 'fast-check';
import type {
  AddressType,
  Endpoint,
  EndpointGroup,
  EndpointPort,
  ExportedService,
  ServicePort,
  SessionAffinityConfig,
} from '../../src/core/index.js';
import {
  annotationValue,
  appProtocol,
  dnsLabel,
  fqdn,
  fqdnEdge,
  hostnameEdge,
  invalidPortName,
  ipv4,
  ipv4Edge,
  ipv6Canonical,
  ipv6Edge,
  ipv6Embedding,
  ipv6Special,
  ipv6Text,
  ipv4Special,
  labelValue,
  mapKey,
  nodeNameEdge,
  subdomain,
  qualifiedPart,
  rarely,
} from './strings.js';

export const FOCI = ['labels', 'annotations', 'ports', 'fields', 'endpoints', 'mixed'] as const;
export type Focus = (typeof FOCI)[number];

/** Kubernetes' limit on the total size of an object's annotations (keys + values, UTF-8 bytes). */
export const ANNOTATIONS_LIMIT = 256 * 1024;

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

function mapOf(key: fc.Arbitrary<string>, value: fc.Arbitrary<string>, maxLength: number) {
  return fc.array(fc.tuple(key, value), { maxLength }).map((e) => Object.fromEntries(e) as Record<string, string>);
}

/** 250–262 valid entries: around the wire's bound of 256 entries per map (not an API server rule). */
const manyEntries = (value: string) =>
  fc
    .integer({ min: 250, max: 262 })
    .map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value])) as Record<string, string>);

export const labelsArb: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { withCrossShrink: true },
  { weight: 10, arbitrary: mapOf(mapKey, labelValue, 5) },
  { weight: 1, arbitrary: manyEntries('v') },
);

/**
 * Adds one annotation `filler.example.com/big` so that the annotations total exactly `limit + delta` bytes, its value
 * made of `unit` (1 to 4 UTF-8 bytes) padded with "a".
 */
export function withFiller(
  base: Record<string, string>,
  unit: string,
  delta: number,
  limit = ANNOTATIONS_LIMIT,
): Record<string, string> {
  const key = 'filler.example.com/big';
  const rest = { ...base };
  delete rest[key];
  let others = utf8(key);
  for (const [k, v] of Object.entries(rest)) others += utf8(k) + utf8(v);
  const need = Math.max(0, limit + delta - others);
  const b = utf8(unit);
  return { ...rest, [key]: unit.repeat(Math.floor(need / b)) + 'a'.repeat(need % b) };
}

export const annotationsArb: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { withCrossShrink: true },
  { weight: 8, arbitrary: mapOf(mapKey, annotationValue, 5) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        mapOf(mapKey, annotationValue, 3),
        fc.constantFrom('a', 'é', '€', '😀'),
        fc.oneof(
          { withCrossShrink: true },
          { weight: 3, arbitrary: fc.integer({ min: -3, max: 3 }) },
          fc.integer({ min: -5000, max: 5000 }),
        ),
      )
      .map(([base, unit, delta]) => withFiller(base, unit, delta)),
  },
  { weight: 1, arbitrary: manyEntries('') },
);

/** Mostly none or one mutation (so a single flaw is not hidden behind another), now and then up to `max`. */
function mutationsOf<T>(m: fc.Arbitrary<T>, max: number): fc.Arbitrary<T[]> {
  return fc.oneof(
    { withCrossShrink: true },
    { weight: 3, arbitrary: fc.constant<T[]>([]) },
    { weight: 4, arbitrary: fc.array(m, { minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.array(m, { maxLength: max }) },
  );
}

// ---- Service ports

type PortMutation =
  | { readonly at: number; readonly kind: 'name'; readonly name: string }
  | { readonly at: number; readonly kind: 'dupName' | 'noName' | 'dupPort' }
  | { readonly at: number; readonly kind: 'protocol'; readonly protocol: string }
  | { readonly at: number; readonly kind: 'port'; readonly port: number }
  | { readonly at: number; readonly kind: 'appProtocol'; readonly appProtocol: string };

const portMutation: fc.Arbitrary<PortMutation> = fc.oneof(
  { withCrossShrink: true },
  fc.record({ at: fc.nat(), kind: fc.constant('name' as const), name: invalidPortName }),
  fc.record({ at: fc.nat(), kind: fc.constantFrom('dupName' as const, 'noName' as const, 'dupPort' as const) }),
  fc.record({ at: fc.nat(), kind: fc.constant('protocol' as const), protocol: fc.constantFrom('tcp', 'HTTP', '') }),
  fc.record({ at: fc.nat(), kind: fc.constant('port' as const), port: fc.constantFrom(0, 65536, -1, 65535, 1) }),
  fc.record({ at: fc.nat(), kind: fc.constant('appProtocol' as const), appProtocol }),
);

const portCount = fc.oneof(
  { withCrossShrink: true },
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 95, max: 105 }) },
  { weight: 1, arbitrary: fc.integer({ min: 120, max: 130 }) },
);

/**
 * 0–130 Service ports: a valid list (unique names `<prefix><i>` and protocol/port pairs; an only port may be
 * unnamed), then up to three mutations (invalid, duplicate or missing names, duplicate protocol/port, odd protocols,
 * out-of-range ports, appProtocol values). Shrinks towards fewer ports and fewer mutations.
 */
export const servicePortsArb: fc.Arbitrary<ServicePort[]> = fc
  .record({
    n: portCount,
    prefix: fc.oneof(
      { withCrossShrink: true },
      fc.constantFrom('p', 'http-', 'port'),
      dnsLabel(30).map((l) => `${l}-`),
    ),
    protocols: fc.array(fc.constantFrom('TCP', 'UDP', 'SCTP'), { minLength: 1, maxLength: 4 }),
    start: fc.integer({ min: 1, max: 65000 }),
    app: fc.option(fc.constantFrom('http', 'kubernetes.io/h2c', 'example.com/custom'), { nil: undefined }),
    unnamedSingle: fc.boolean(),
    mutations: mutationsOf(portMutation, 3),
  })
  .map(({ n, prefix, protocols, start, app, unnamedSingle, mutations }) => {
    const ports: { name?: string; protocol: string; port: number; appProtocol?: string }[] = [];
    for (let i = 0; i < n; i++) {
      const p: { name?: string; protocol: string; port: number; appProtocol?: string } = {
        name: `${prefix}${i}`,
        protocol: protocols[i % protocols.length]!,
        port: ((start + i - 1) % 65535) + 1,
      };
      if (app !== undefined && i % 2 === 0) p.appProtocol = app;
      ports.push(p);
    }
    if (n === 1 && unnamedSingle) delete ports[0]!.name;
    if (n > 0) {
      for (const m of mutations) {
        const p = ports[m.at % n]!;
        const other = ports[(m.at + 1) % n]!;
        switch (m.kind) {
          case 'name':
            p.name = m.name;
            break;
          case 'dupName':
            if (other.name !== undefined) p.name = other.name;
            else delete p.name;
            break;
          case 'noName':
            delete p.name;
            break;
          case 'dupPort':
            p.protocol = other.protocol;
            p.port = other.port;
            break;
          case 'protocol':
            p.protocol = m.protocol;
            break;
          case 'port':
            p.port = m.port;
            break;
          case 'appProtocol':
            p.appProtocol = m.appProtocol;
            break;
        }
      }
    }
    return ports;
  });

// ---- the Service's other fields

export interface Fields {
  readonly type: ExportedService['type'];
  readonly sessionAffinity: string;
  readonly sessionAffinityConfig?: SessionAffinityConfig;
  readonly internalTrafficPolicy?: string;
  readonly trafficDistribution?: string;
  readonly ipFamilies: readonly string[];
}

const timeout = fc.oneof(
  { withCrossShrink: true },
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 86400 }) },
  { weight: 2, arbitrary: fc.constantFrom(1, 86400, 10800) },
  { weight: 2, arbitrary: fc.constantFrom(0, 86401, -1, 1.5, 2 ** 31) },
);

/**
 * Type, session affinity (+ timeouts), traffic policy and distribution, IP families. The families are those a
 * single-stack IPv4 cluster (the harness's, see cidrsOf) can give a derived Service, and invalid ones: IPv6-only and
 * dual-stack families are valid but depend on the importing cluster, which importProblem cannot know.
 */
export const fieldsArb: fc.Arbitrary<Fields> = fc
  .record(
    {
      type: fc.oneof(
        { withCrossShrink: true },
        { weight: 6, arbitrary: fc.constantFrom('ClusterSetIP' as const, 'Headless' as const) },
        {
          weight: 1,
          arbitrary: fc.constantFrom('LoadBalancer', 'clustersetip') as unknown as fc.Arbitrary<'ClusterSetIP'>,
        },
      ),
      sessionAffinity: fc.oneof(
        { withCrossShrink: true },
        { weight: 6, arbitrary: fc.constantFrom('None', 'ClientIP') },
        { weight: 1, arbitrary: fc.constantFrom('clientip', '') },
      ),
      sessionAffinityConfig: fc.oneof(
        { withCrossShrink: true },
        fc.constant({}),
        fc.constant({ clientIP: {} }),
        timeout.map((t) => ({ clientIP: { timeoutSeconds: t } })),
      ),
      internalTrafficPolicy: fc.oneof(
        { withCrossShrink: true },
        { weight: 6, arbitrary: fc.constantFrom('Cluster', 'Local') },
        { weight: 1, arbitrary: fc.constantFrom('local', 'Foo') },
      ),
      trafficDistribution: fc.oneof(
        { withCrossShrink: true },
        { weight: 4, arbitrary: fc.constantFrom('PreferClose', 'PreferSameZone', 'PreferSameNode') },
        { weight: 1, arbitrary: qualifiedPart },
        { weight: 1, arbitrary: fc.integer({ min: 1020, max: 1030 }).map((n) => 'd'.repeat(n)) },
      ),
      ipFamilies: fc.oneof(
        { withCrossShrink: true },
        { weight: 8, arbitrary: fc.constant(['IPv4']) },
        { weight: 1, arbitrary: fc.constantFrom([], ['IPv4', 'IPv4'], ['ipv4'], ['IPv4', 'IPv6', 'IPv4'], ['IPv5']) },
      ),
    },
    { requiredKeys: ['type', 'sessionAffinity', 'ipFamilies'] },
  )
  .map((f) => f as Fields);

// ---- endpoints

type EndpointMutation =
  | { readonly at: number; readonly kind: 'address'; readonly address: string }
  | { readonly at: number; readonly kind: 'addresses'; readonly count: number }
  | { readonly at: number; readonly kind: 'hostname'; readonly hostname: string }
  | { readonly at: number; readonly kind: 'nodeName'; readonly nodeName: string };

function edgeAddress(type: string): fc.Arbitrary<string> {
  if (type === 'IPv4')
    return fc.oneof(
      { withCrossShrink: true },
      { weight: 2, arbitrary: ipv4Edge },
      { weight: 1, arbitrary: ipv4Special },
    );
  if (type === 'IPv6')
    return fc.oneof(
      { withCrossShrink: true },
      { weight: 2, arbitrary: ipv6Edge },
      { weight: 1, arbitrary: ipv6Text },
      { weight: 2, arbitrary: ipv6Embedding },
      { weight: 1, arbitrary: ipv6Special },
    );
  return fqdnEdge;
}

function endpointMutation(type: string): fc.Arbitrary<EndpointMutation> {
  return fc.oneof(
    { withCrossShrink: true },
    {
      weight: 4,
      arbitrary: fc.record({ at: fc.nat(), kind: fc.constant('address' as const), address: edgeAddress(type) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        at: fc.nat(),
        kind: fc.constant('addresses' as const),
        count: fc.constantFrom(0, 2, 3, 100, 101),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ at: fc.nat(), kind: fc.constant('hostname' as const), hostname: hostnameEdge }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ at: fc.nat(), kind: fc.constant('nodeName' as const), nodeName: nodeNameEdge }),
    },
  );
}

/** The i-th valid address of a group of type `type` ("seed" varies the range). */
function nthAddress(type: string, seed: number, i: number): string {
  if (type === 'IPv6') return `fd00:${((seed % 0xffff) + 1).toString(16)}::${(i + 1).toString(16)}`;
  if (type === 'FQDN') return `e${i}.s${seed}.example.com`;
  return `10.${(seed % 254) + 1}.${(i >> 8) & 255}.${i & 255}`;
}

/** At least one endpoint: an origin never publishes an empty group (local-exports.ts drops them). */
const endpointCount = fc.oneof(
  { withCrossShrink: true },
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 5 }) },
  { weight: 1, arbitrary: fc.integer({ min: 95, max: 105 }) },
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 300 }) },
);

type EndpointPortMutation =
  | { readonly at: number; readonly kind: 'name'; readonly name: string }
  | { readonly at: number; readonly kind: 'dupName' | 'noName' }
  | { readonly at: number; readonly kind: 'protocol'; readonly protocol: string }
  | { readonly at: number; readonly kind: 'port'; readonly port: number }
  | { readonly at: number; readonly kind: 'appProtocol'; readonly appProtocol: string };

const endpointPortMutation: fc.Arbitrary<EndpointPortMutation> = fc.oneof(
  { withCrossShrink: true },
  fc.record({ at: fc.nat(), kind: fc.constant('name' as const), name: invalidPortName }),
  fc.record({ at: fc.nat(), kind: fc.constantFrom('dupName' as const, 'noName' as const) }),
  fc.record({ at: fc.nat(), kind: fc.constant('protocol' as const), protocol: fc.constantFrom('tcp', 'HTTP', '') }),
  fc.record({
    at: fc.nat(),
    kind: fc.constant('port' as const),
    // Any int32 (the API server takes all); numbers outside int32 are left out: the API server cannot decode them,
    // the wire schema refuses them (src/gossip/service-schema.ts) and importProblem does not look (reported).
    port: fc.constantFrom(-1, 0, 65535, 65536, 70000, 2 ** 31 - 1, -(2 ** 31)),
  }),
  fc.record({ at: fc.nat(), kind: fc.constant('appProtocol' as const), appProtocol }),
);

/** 0–3 EndpointSlice ports (unnamed when alone, or named `<prefix><i>`), then mutations. */
const endpointPortsArb: fc.Arbitrary<EndpointPort[]> = fc
  .record({
    n: fc.integer({ min: 0, max: 3 }),
    named: fc.boolean(),
    protocol: fc.option(fc.constantFrom('TCP', 'UDP', 'SCTP'), { nil: undefined }),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    mutations: mutationsOf(endpointPortMutation, 2),
  })
  .map(({ n, named, protocol, port, mutations }) => {
    const ports: { name?: string; protocol?: string; port?: number; appProtocol?: string }[] = [];
    for (let i = 0; i < n; i++) {
      const p: { name?: string; protocol?: string; port?: number; appProtocol?: string } = {};
      if (named || n > 1) p.name = `p${i}`;
      if (protocol !== undefined) p.protocol = protocol;
      if (port !== undefined) p.port = ((port + i - 1) % 65535) + 1;
      ports.push(p);
    }
    if (n > 0) {
      for (const m of mutations) {
        const p = ports[m.at % n]!;
        const other = ports[(m.at + 1) % n]!;
        if (m.kind === 'name') p.name = m.name;
        else if (m.kind === 'dupName') {
          if (other.name === undefined) delete p.name;
          else p.name = other.name;
        } else if (m.kind === 'noName') delete p.name;
        else if (m.kind === 'protocol') p.protocol = m.protocol;
        else if (m.kind === 'port') p.port = m.port;
        else if (m.kind === 'appProtocol') p.appProtocol = m.appProtocol;
      }
    }
    return ports;
  });

const conditionsArb = fc.record(
  { ready: fc.boolean(), serving: fc.boolean(), terminating: fc.boolean() },
  { requiredKeys: [] },
);

/** Per-endpoint details for the first few endpoints of a group: random valid addresses, hostnames, zones, nodes. */
function extraArb(type: string) {
  const address = type === 'IPv4' ? ipv4 : type === 'IPv6' ? ipv6Canonical : fqdn;
  return fc.record(
    {
      address,
      hostname: dnsLabel(20),
      nodeName: fc.oneof({ withCrossShrink: true }, fc.constantFrom('kwok-node-0', 'kwok-node-1'), subdomain),
      zone: fc.oneof(
        { withCrossShrink: true },
        fc.constantFrom('zone-a', 'zone-b'),
        fc.string({ unit: 'binary', maxLength: 10 }),
      ),
      conditions: conditionsArb,
    },
    { requiredKeys: [] },
  );
}

function groupArb(): fc.Arbitrary<EndpointGroup> {
  return fc
    .oneof(
      { weight: 12, arbitrary: fc.constantFrom<AddressType>('IPv4', 'IPv4', 'IPv6', 'FQDN') },
      { weight: 1, arbitrary: fc.constant('IPX') },
    )
    .chain((addressType: string) =>
      fc
        .record({
          ports: endpointPortsArb,
          n: endpointCount,
          seed: fc.nat(60000),
          extras: fc.array(extraArb(addressType), { maxLength: 4 }),
          mutations: mutationsOf(endpointMutation(addressType === 'IPX' ? 'IPv4' : addressType), 3),
        })
        .map(({ ports, n, seed, extras, mutations }): EndpointGroup => {
          const endpoints: {
            addresses: string[];
            conditions: Endpoint['conditions'];
            hostname?: string;
            nodeName?: string;
            zone?: string;
          }[] = [];
          const base = addressType === 'IPX' ? 'IPv4' : addressType;
          for (let i = 0; i < n; i++) {
            const x = extras[i];
            const e: (typeof endpoints)[number] = {
              addresses: [x?.address ?? nthAddress(base, seed, i)],
              conditions: x?.conditions ?? { ready: true },
            };
            if (x?.hostname !== undefined) e.hostname = x.hostname;
            if (x?.nodeName !== undefined) e.nodeName = x.nodeName;
            if (x?.zone !== undefined) e.zone = x.zone;
            endpoints.push(e);
          }
          if (n > 0) {
            for (const m of mutations) {
              const i = m.at % n;
              const e = endpoints[i]!;
              if (m.kind === 'address') e.addresses = [m.address];
              else if (m.kind === 'addresses')
                e.addresses = Array.from({ length: m.count }, (_, j) => nthAddress(base, seed + 1 + j, i));
              else if (m.kind === 'hostname') e.hostname = m.hostname;
              else e.nodeName = m.nodeName;
            }
          }
          return { addressType: addressType as AddressType, ports, endpoints };
        }),
    );
}

export const groupsArb: fc.Arbitrary<EndpointGroup[]> = fc.array(groupArb(), { maxLength: 3 });

// ---- plainly valid parts (when another area is the focus)

const plainLabels = fc.constantFrom<Record<string, string>>({}, { app: 'web' }, { 'example.com/tier': 'front' });
const plainAnnotations = fc.constantFrom<Record<string, string>>({}, { 'example.com/owner': 'team a' });
const plainPorts = fc.constantFrom<ServicePort[]>(
  [{ name: 'http', protocol: 'TCP', port: 80 }],
  [
    { name: 'http', protocol: 'TCP', port: 80, appProtocol: 'http' },
    { name: 'dns', protocol: 'UDP', port: 53 },
  ],
  [{ protocol: 'TCP', port: 8080 }],
);
const plainFields = fc.constantFrom<Fields>(
  { type: 'ClusterSetIP', sessionAffinity: 'None', ipFamilies: ['IPv4'] },
  { type: 'Headless', sessionAffinity: 'None', ipFamilies: ['IPv4'] },
  {
    type: 'ClusterSetIP',
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
    internalTrafficPolicy: 'Cluster',
    ipFamilies: ['IPv4'],
  },
);
const plainGroups = fc.integer({ min: 0, max: 3 }).map((n): EndpointGroup[] =>
  n === 0
    ? []
    : [
        {
          addressType: 'IPv4',
          ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
          endpoints: Array.from({ length: n }, (_, i) => ({
            addresses: [`10.201.0.${i + 1}`],
            conditions: { ready: true },
            nodeName: 'kwok-node-0',
          })),
        },
      ],
);

/** A big record: annotations near their 256 KiB limit and ~2,000 endpoints (over the 448 KiB record bound). */
const bigRecord = fc.integer({ min: 2000, max: 3500 }).map((n) => ({
  annotations: withFiller({}, 'a', -100),
  groups: [
    {
      addressType: 'IPv4' as const,
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: Array.from({ length: n }, (_, i) => ({
        addresses: [`10.202.${i >> 8}.${i & 255}`],
        conditions: { ready: true },
        nodeName: 'kwok-node-0',
      })),
    },
  ],
}));

/** Exported-service content with `focus` stressed ("mixed": any areas at once, and now and then a big record). */
export function exportedServiceArb(focus: Focus): fc.Arbitrary<ExportedService> {
  // "mixed" stresses each area half of the time, so that combinations stay importable now and then.
  const pick = <T>(area: Focus, stressed: fc.Arbitrary<T>, plain: fc.Arbitrary<T>) =>
    focus === area ? stressed : focus === 'mixed' ? fc.oneof({ withCrossShrink: true }, plain, stressed) : plain;
  const parts = fc.record({
    labels: pick('labels', labelsArb, plainLabels),
    annotations: pick('annotations', annotationsArb, plainAnnotations),
    ports: pick('ports', servicePortsArb, plainPorts),
    fields: pick('fields', fieldsArb, plainFields),
    groups: pick('endpoints', groupsArb, plainGroups),
    big: focus === 'mixed' ? rarely(bigRecord, 30) : fc.constant(undefined),
  });
  return parts.map(({ labels, annotations, ports, fields, groups, big }): ExportedService => {
    const s: ExportedService = {
      exportCreatedMs: 1_700_000_000_000,
      ...fields,
      ports,
      exportedLabels: labels,
      exportedAnnotations: big?.annotations ?? annotations,
      endpointGroups: big?.groups ?? groups,
    };
    return s;
  });
}
