/**
 * The few fields of Kubernetes objects the core reads and writes, as plain structural types. The core must not
 * depend on a Kubernetes client; objects from `@kubernetes/client-node` (or parsed YAML) fit these shapes.
 */
import type { ConditionData } from './conditions.js';

export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly creationTimestamp?: string | Date;
  /** Set while the object is being deleted: a ServiceExport being deleted no longer exports. */
  readonly deletionTimestamp?: string | Date;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface NamespaceObject {
  readonly apiVersion?: string;
  readonly kind?: 'Namespace';
  readonly metadata: ObjectMeta;
}

export interface ServicePortObject {
  readonly name?: string;
  readonly protocol?: string;
  readonly port: number;
  readonly appProtocol?: string;
  readonly targetPort?: number | string;
  readonly nodePort?: number;
}

export interface ServiceObject {
  readonly apiVersion?: string;
  readonly kind?: 'Service';
  readonly metadata: ObjectMeta;
  readonly spec?: {
    readonly type?: string;
    readonly clusterIP?: string;
    readonly clusterIPs?: readonly string[];
    readonly ports?: readonly ServicePortObject[];
    readonly sessionAffinity?: string;
    readonly sessionAffinityConfig?: { readonly clientIP?: { readonly timeoutSeconds?: number } };
    readonly internalTrafficPolicy?: string;
    readonly trafficDistribution?: string;
    readonly ipFamilies?: readonly string[];
    readonly externalName?: string;
  };
}

/** metav1.Condition. */
export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

export interface ServiceExportObject {
  readonly apiVersion?: string;
  readonly kind?: 'ServiceExport';
  readonly metadata: ObjectMeta;
  readonly spec?: {
    readonly exportedLabels?: Readonly<Record<string, string>>;
    readonly exportedAnnotations?: Readonly<Record<string, string>>;
  };
  readonly status?: { readonly conditions?: readonly Condition[] };
}

export interface EndpointSliceObject {
  readonly apiVersion?: string;
  readonly kind?: 'EndpointSlice';
  readonly metadata: ObjectMeta;
  readonly addressType: string;
  readonly endpoints?: readonly {
    readonly addresses: readonly string[];
    readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly hostname?: string;
    readonly zone?: string;
    readonly nodeName?: string;
  }[];
  readonly ports?: readonly {
    readonly name?: string;
    readonly protocol?: string;
    readonly port?: number;
    readonly appProtocol?: string;
  }[];
}

/** multicluster.x-k8s.io/v1beta1 ServiceImport, as the core computes it (ips left to the shell that allocates them). */
export interface ServiceImportObject {
  readonly apiVersion: 'multicluster.x-k8s.io/v1beta1';
  readonly kind: 'ServiceImport';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly type: 'ClusterSetIP' | 'Headless';
    readonly ports: readonly {
      readonly name?: string;
      readonly protocol: string;
      readonly port: number;
      readonly appProtocol?: string;
    }[];
    readonly ips: readonly string[];
    readonly sessionAffinity: string;
    readonly sessionAffinityConfig?: { readonly clientIP?: { readonly timeoutSeconds?: number } };
    readonly ipFamilies: readonly string[];
    readonly internalTrafficPolicy?: string;
    readonly trafficDistribution?: string;
  };
  readonly status: {
    readonly clusters: readonly { readonly cluster: string }[];
    /** The `Ready` condition as resolution decides it (no `lastTransitionTime`: the writer stamps it). */
    readonly conditions: readonly ConditionData[];
  };
}

/** A discovery.k8s.io/v1 EndpointSlice imported from one source cluster. */
export interface ImportedEndpointSliceObject {
  readonly apiVersion: 'discovery.k8s.io/v1';
  readonly kind: 'EndpointSlice';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  readonly addressType: string;
  readonly endpoints: readonly {
    readonly addresses: readonly string[];
    readonly conditions: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly hostname?: string;
    readonly zone?: string;
    readonly nodeName?: string;
  }[];
  readonly ports: readonly {
    readonly name?: string;
    readonly protocol?: string;
    readonly port?: number;
    readonly appProtocol?: string;
  }[];
}

/** The objects of one cluster that determine what it exports. */
export interface LocalObjects {
  readonly namespaces: readonly NamespaceObject[];
  readonly services: readonly ServiceObject[];
  readonly serviceExports: readonly ServiceExportObject[];
  readonly endpointSlices: readonly EndpointSliceObject[];
}
