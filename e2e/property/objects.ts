// Phase B's arbitraries: real Kubernetes objects for the exporting cluster — a Service without selector, its
// EndpointSlices (kubernetes.io/service-name, managed by this test) and a ServiceExport — drawn mostly from what the
// API server accepts, with some values it refuses (those cases are discarded) and exported labels and annotations
// from both the valid and the invalid space.
import fc from 'fast-check';
import type * as k8s from '@kubernetes/client-node';
import { annotationsArb, labelsArb } from './content.js';
import {
  appProtocol,
  dns1035Label,
  dnsLabel,
  fqdn,
  fqdnEdge,
  hostnameEdge,
  invalidPortName,
  ipv4,
  ipv4Edge,
  ipv6Canonical,
  ipv6Edge,
  ipv6Text,
  nodeNameEdge,
  rarely,
  subdomain,
} from './strings.js';

export const SLICE_MANAGER = 'property-test.mcs-gossip.x-k8s.io';

export type ServiceKind = 'ClusterIP' | 'Headless' | 'NodePort' | 'LoadBalancer';

export interface PortSpec {
  readonly name?: string;
  readonly protocol?: string;
  readonly port: number;
  readonly appProtocol?: string;
  readonly targetPort?: number | string;
}

export interface ServiceSpec {
  readonly kind: ServiceKind;
  readonly ports: readonly PortSpec[];
  readonly sessionAffinity?: string;
  readonly timeoutSeconds?: number;
  readonly ipFamilyPolicy?: string;
  readonly ipFamilies?: readonly string[];
  readonly internalTrafficPolicy?: string;
  readonly trafficDistribution?: string;
}

export interface EndpointSpec {
  readonly addresses: readonly string[];
  readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
  readonly hostname?: string;
  readonly nodeName?: string;
  readonly zone?: string;
}

export interface SliceSpec {
  readonly addressType: string;
  readonly ports: readonly { name?: string; protocol?: string; port?: number; appProtocol?: string }[];
  readonly endpoints: readonly EndpointSpec[];
}

/** One case: the objects, before a name is given to them (the name is unique per run: `<prefix>-<counter>`). */
export interface CaseSpec {
  readonly prefix: string;
  readonly service: ServiceSpec;
  readonly slices: readonly SliceSpec[];
  readonly exportedLabels?: Readonly<Record<string, string>>;
  readonly exportedAnnotations?: Readonly<Record<string, string>>;
}

const count = (small: number) =>
  fc.oneof(
    { withCrossShrink: true },
    { weight: 14, arbitrary: fc.integer({ min: 1, max: small }) },
    { weight: 1, arbitrary: fc.integer({ min: 95, max: 105 }) },
    { weight: 1, arbitrary: fc.integer({ min: 120, max: 130 }) },
  );

type PortFlaw =
  | { readonly at: number; readonly kind: 'name'; readonly name: string }
  | { readonly at: number; readonly kind: 'dupName' };

/** 1–130 Service ports (0 allowed when headless), unique names and protocol/port pairs; now and then one flaw. */
const portsArb = (headless: boolean): fc.Arbitrary<PortSpec[]> =>
  fc
    .record({
      n: headless
        ? fc.oneof(
            { withCrossShrink: true },
            { weight: 1, arbitrary: fc.constant(0) },
            { weight: 6, arbitrary: count(6) },
          )
        : count(6),
      prefix: fc.oneof(
        { withCrossShrink: true },
        fc.constantFrom('p', 'http-', 'tcp-'),
        dnsLabel(40).map((l) => `${l}-`),
      ),
      protocols: fc.array(fc.option(fc.constantFrom('TCP', 'UDP', 'SCTP'), { nil: undefined }), {
        minLength: 1,
        maxLength: 4,
      }),
      start: fc.integer({ min: 1, max: 65000 }),
      app: rarely(appProtocol, 4),
      target: fc.option(
        fc.oneof({ withCrossShrink: true }, fc.integer({ min: 1, max: 65535 }), fc.constantFrom('http', 'web-port')),
        {
          nil: undefined,
        },
      ),
      unnamedSingle: fc.boolean(),
      flaws: fc.array(
        fc.oneof(
          { withCrossShrink: true },
          fc.record({ at: fc.nat(), kind: fc.constant('name' as const), name: invalidPortName }),
          fc.record({ at: fc.nat(), kind: fc.constant('dupName' as const) }),
        ) as fc.Arbitrary<PortFlaw>,
        { maxLength: 1 },
      ),
      flawed: fc.nat(19),
    })
    .map(({ n, prefix, protocols, start, app, target, unnamedSingle, flaws, flawed }) => {
      const ports: { -readonly [K in keyof PortSpec]: PortSpec[K] }[] = [];
      for (let i = 0; i < n; i++) {
        const p: { -readonly [K in keyof PortSpec]: PortSpec[K] } = {
          name: `${prefix}${i}`,
          port: ((start + i - 1) % 65535) + 1,
        };
        const protocol = protocols[i % protocols.length];
        if (protocol !== undefined) p.protocol = protocol;
        if (app !== undefined && i % 3 === 0) p.appProtocol = app;
        if (target !== undefined) p.targetPort = target;
        ports.push(p);
      }
      if (n === 1 && unnamedSingle) delete ports[0]!.name;
      // One case in twenty has a flaw the API server refuses (discarded, counted).
      if (n > 0 && flawed === 0) {
        for (const f of flaws) {
          const p = ports[f.at % n]!;
          if (f.kind === 'name') p.name = f.name;
          else p.name = ports[(f.at + 1) % n]!.name;
        }
      }
      return ports;
    });

const serviceArb: fc.Arbitrary<ServiceSpec> = fc
  .oneof(
    { weight: 12, arbitrary: fc.constant<ServiceKind>('ClusterIP') },
    { weight: 5, arbitrary: fc.constant<ServiceKind>('Headless') },
    { weight: 1, arbitrary: fc.constant<ServiceKind>('NodePort') },
    { weight: 1, arbitrary: fc.constant<ServiceKind>('LoadBalancer') },
  )
  .chain((kind) =>
    fc.record(
      {
        kind: fc.constant(kind),
        ports: portsArb(kind === 'Headless'),
        sessionAffinity: fc.constantFrom('None', 'ClientIP'),
        timeoutSeconds: fc.oneof(
          { withCrossShrink: true },
          fc.integer({ min: 1, max: 86400 }),
          fc.constantFrom(1, 86400),
        ),
        ipFamilyPolicy: fc.oneof(
          { withCrossShrink: true },
          { weight: 30, arbitrary: fc.constantFrom('SingleStack', 'PreferDualStack') },
          { weight: 1, arbitrary: fc.constant('RequireDualStack') },
        ),
        ipFamilies: fc.constant(['IPv4']),
        internalTrafficPolicy: fc.constantFrom('Cluster', 'Local'),
        trafficDistribution: fc.constantFrom('PreferClose', 'PreferSameZone', 'PreferSameNode'),
      },
      { requiredKeys: ['kind', 'ports'] },
    ),
  )
  .map((s) => s as ServiceSpec);

const endpointPortsArb = fc
  .record({
    n: fc.integer({ min: 0, max: 3 }),
    named: fc.boolean(),
    protocol: fc.option(fc.constantFrom('TCP', 'UDP', 'SCTP'), { nil: undefined }),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    app: fc.option(fc.constantFrom('http', 'kubernetes.io/h2c'), { nil: undefined }),
    odd: rarely(fc.constantFrom(0, 65536, 70000, 2 ** 31 - 1, -1), 12),
  })
  .map(({ n, named, protocol, port, app, odd }) => {
    const ports: { name?: string; protocol?: string; port?: number; appProtocol?: string }[] = [];
    for (let i = 0; i < n; i++) {
      const p: { name?: string; protocol?: string; port?: number; appProtocol?: string } = {};
      if (named || n > 1) p.name = `p${i}`;
      if (protocol !== undefined) p.protocol = protocol;
      if (port !== undefined) p.port = ((port + i - 1) % 65535) + 1;
      if (app !== undefined) p.appProtocol = app;
      ports.push(p);
    }
    // A port number the API server may take although no Service could target it.
    if (n > 0 && odd !== undefined) ports[0]!.port = odd;
    return ports;
  });

function nth(type: string, seed: number, i: number): string {
  if (type === 'IPv6') return `fd00:${((seed % 0xffff) + 1).toString(16)}::${(i + 1).toString(16)}`;
  if (type === 'FQDN') return `e${i}.s${seed}.example.com`;
  return `10.${(seed % 254) + 1}.${(i >> 8) & 255}.${i & 255}`;
}

const endpointCount = fc.oneof(
  { withCrossShrink: true },
  { weight: 14, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 95, max: 105 }) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 300 }) },
);

const conditionsArb = fc.record(
  { ready: fc.boolean(), serving: fc.boolean(), terminating: fc.boolean() },
  { requiredKeys: [] },
);

function sliceArb(): fc.Arbitrary<SliceSpec> {
  return fc
    .oneof(
      { weight: 7, arbitrary: fc.constant('IPv4') },
      { weight: 2, arbitrary: fc.constant('IPv6') },
      { weight: 1, arbitrary: fc.constant('FQDN') },
    )
    .chain((addressType) => {
      const valid = addressType === 'IPv4' ? ipv4 : addressType === 'IPv6' ? ipv6Canonical : fqdn;
      const edge =
        addressType === 'IPv4'
          ? ipv4Edge
          : addressType === 'IPv6'
            ? fc.oneof({ withCrossShrink: true }, ipv6Edge, ipv6Text)
            : fqdnEdge;
      return fc
        .record({
          ports: endpointPortsArb,
          n: endpointCount,
          seed: fc.nat(60000),
          extras: fc.array(
            fc.record(
              {
                address: valid,
                hostname: dnsLabel(20),
                nodeName: fc.oneof(
                  { withCrossShrink: true },
                  fc.constantFrom('kwok-node-0', 'kwok-node-1', 'elsewhere'),
                  subdomain,
                ),
                zone: fc.constantFrom('zone-a', 'zone-b', 'Zone C'),
                conditions: conditionsArb,
              },
              { requiredKeys: [] },
            ),
            { maxLength: 4 },
          ),
          // Rare: an address, hostname or node name at the edge (the API server refuses most: discarded).
          edge: rarely(
            fc.record({
              at: fc.nat(),
              address: fc.option(edge, { nil: undefined }),
              hostname: fc.option(hostnameEdge, { nil: undefined }),
              nodeName: fc.option(nodeNameEdge, { nil: undefined }),
            }),
            10,
          ),
        })
        .map(({ ports, n, seed, extras, edge }): SliceSpec => {
          const endpoints: { -readonly [K in keyof EndpointSpec]: EndpointSpec[K] }[] = [];
          for (let i = 0; i < n; i++) {
            const x = extras[i];
            const e: { -readonly [K in keyof EndpointSpec]: EndpointSpec[K] } = {
              addresses: [x?.address ?? nth(addressType, seed, i)],
            };
            if (x?.conditions !== undefined) e.conditions = x.conditions;
            if (x?.hostname !== undefined) e.hostname = x.hostname;
            if (x?.nodeName !== undefined) e.nodeName = x.nodeName;
            if (x?.zone !== undefined) e.zone = x.zone;
            endpoints.push(e);
          }
          if (edge !== undefined && n > 0) {
            const e = endpoints[edge.at % n]!;
            if (edge.address !== undefined) e.addresses = [edge.address];
            if (edge.hostname !== undefined) e.hostname = edge.hostname;
            if (edge.nodeName !== undefined) e.nodeName = edge.nodeName;
          }
          return { addressType, ports, endpoints };
        });
    });
}

const plainLabels = fc.constantFrom<Record<string, string>>({ app: 'web' }, { 'example.com/tier': 'front', x: '' });
const plainAnnotations = fc.constantFrom<Record<string, string>>(
  { 'example.com/owner': 'team a' },
  { note: 'ünïcødé ✓' },
);

export const caseArb: fc.Arbitrary<CaseSpec> = fc.record(
  {
    prefix: dns1035Label(56),
    service: serviceArb,
    slices: fc.array(sliceArb(), { maxLength: 3 }),
    exportedLabels: fc.oneof(
      { withCrossShrink: true },
      { weight: 3, arbitrary: plainLabels },
      { weight: 2, arbitrary: labelsArb },
    ),
    exportedAnnotations: fc.oneof(
      { withCrossShrink: true },
      { weight: 3, arbitrary: plainAnnotations },
      { weight: 2, arbitrary: annotationsArb },
    ),
  },
  { requiredKeys: ['prefix', 'service', 'slices'] },
);

/** `<prefix>-<suffix>`, cut to 63 characters (a DNS-1035 label: the prefix starts with a letter). */
export function caseName(prefix: string, suffix: string): string {
  return `${prefix.slice(0, 62 - suffix.length)}-${suffix}`;
}

export function serviceBody(name: string, s: ServiceSpec): k8s.V1Service {
  const spec: k8s.V1ServiceSpec = {
    type: s.kind === 'Headless' ? 'ClusterIP' : s.kind,
    ports: s.ports.map((p) => ({ ...p }) as k8s.V1ServicePort),
  };
  if (s.kind === 'Headless') spec.clusterIP = 'None';
  if (s.sessionAffinity !== undefined) spec.sessionAffinity = s.sessionAffinity;
  if (s.sessionAffinity === 'ClientIP' && s.timeoutSeconds !== undefined)
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: s.timeoutSeconds } };
  if (s.ipFamilyPolicy !== undefined) spec.ipFamilyPolicy = s.ipFamilyPolicy;
  if (s.ipFamilies !== undefined) spec.ipFamilies = [...s.ipFamilies];
  if (s.internalTrafficPolicy !== undefined) spec.internalTrafficPolicy = s.internalTrafficPolicy;
  if (s.trafficDistribution !== undefined) spec.trafficDistribution = s.trafficDistribution;
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, labels: { 'property-test': 'case' } }, spec };
}

export function sliceBodies(name: string, slices: readonly SliceSpec[]): k8s.V1EndpointSlice[] {
  return slices.map((s, i) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${name}-${i}`,
      labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': SLICE_MANAGER },
    },
    addressType: s.addressType,
    endpoints: s.endpoints.map((e) => structuredClone(e) as k8s.V1Endpoint),
    ports: s.ports.map((p) => ({ ...p })),
  }));
}

export function serviceExportBody(name: string, c: CaseSpec): object {
  const spec: Record<string, unknown> = {};
  if (c.exportedLabels !== undefined) spec.exportedLabels = c.exportedLabels;
  if (c.exportedAnnotations !== undefined) spec.exportedAnnotations = c.exportedAnnotations;
  return { apiVersion: 'multicluster.x-k8s.io/v1beta1', kind: 'ServiceExport', metadata: { name }, spec };
}
