import type { Hlc } from './hlc.js';
import type { ClusterId } from './ids.js';

/** The type of a ServiceImport. NodePort and LoadBalancer Services export as ClusterSetIP; ExternalName never exports. */
export type ServiceImportType = 'ClusterSetIP' | 'Headless';

/** A Service port as the ServiceImport carries it. Defaulted values are copied exactly: absent ≠ "". */
export interface ServicePort {
  readonly name?: string;
  readonly protocol: string;
  readonly port: number;
  readonly appProtocol?: string;
}

/** `spec.sessionAffinityConfig` of a Service. */
export interface SessionAffinityConfig {
  readonly clientIP?: { readonly timeoutSeconds?: number };
}

/** An EndpointSlice port: the target port on the endpoints, as discovery.k8s.io/v1 has it. */
export interface EndpointPort {
  readonly name?: string;
  readonly protocol?: string;
  readonly port?: number;
  readonly appProtocol?: string;
}

/** The conditions of one endpoint; absent `ready`/`serving` mean true, as in discovery.k8s.io/v1. */
export interface EndpointConditions {
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

/**
 * One endpoint in exactly the shape of a discovery.k8s.io/v1 endpoint (minus targetRef, which names a pod of another
 * cluster), so imported slices can share the objects instead of copying a million of them.
 */
export interface Endpoint {
  readonly addresses: readonly string[];
  readonly conditions: EndpointConditions;
  readonly hostname?: string;
  readonly zone?: string;
  readonly nodeName?: string;
}

/** `IPv4`, `IPv6` or `FQDN`, as EndpointSlice `addressType`. */
export type AddressType = 'IPv4' | 'IPv6' | 'FQDN';

/**
 * The endpoints of one address type that share one port list. An EndpointSlice has one port list for all its
 * endpoints, so the origin normalises its slices into such groups (sorted, deduplicated) and importers turn each
 * group into slices of their own.
 */
export interface EndpointGroup {
  readonly addressType: AddressType;
  readonly ports: readonly EndpointPort[];
  readonly endpoints: readonly Endpoint[];
}

/** Everything resolution and the data plane need about one exported Service, as its origin saw it. */
export interface ExportedService {
  /** ServiceExport `metadata.creationTimestamp` in ms since the epoch: the oldest export wins conflicts. */
  readonly exportCreatedMs: number;
  readonly type: ServiceImportType;
  /** Service ports in the order of the Service. */
  readonly ports: readonly ServicePort[];
  /** `None` or `ClientIP`. */
  readonly sessionAffinity: string;
  readonly sessionAffinityConfig?: SessionAffinityConfig;
  readonly internalTrafficPolicy?: string;
  readonly trafficDistribution?: string;
  /** `IPv4`/`IPv6` in the order of the Service (dual-stack has two). */
  readonly ipFamilies: readonly string[];
  /** ServiceExport `spec.exportedLabels`: the only labels that reach the ServiceImport. */
  readonly exportedLabels: Readonly<Record<string, string>>;
  /** ServiceExport `spec.exportedAnnotations`: the only annotations that reach the ServiceImport. */
  readonly exportedAnnotations: Readonly<Record<string, string>>;
  readonly endpointGroups: readonly EndpointGroup[];
}

/**
 * The unit of replication: what one origin exports under one service key, at one version.
 *
 * Only the origin writes its records, so records merge per (origin, namespace/name) by version alone. A removed export
 * stays as a tombstone (`removed: true`, no `service`) so that an older copy held by a long-partitioned peer can never
 * bring it back.
 */
export interface ExportRecord {
  readonly origin: ClusterId;
  readonly namespace: string;
  readonly name: string;
  readonly version: Hlc;
  readonly removed: boolean;
  /** Present exactly when `removed` is false. */
  readonly service?: ExportedService;
  /**
   * Opaque to the core: the gossip layer keeps the origin's signed envelope here so relays and anti-entropy forward
   * the record unaltered. Stored and handed back as is.
   */
  readonly proof?: Uint8Array;
}
