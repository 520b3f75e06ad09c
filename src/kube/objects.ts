/** Kubernetes object shapes the adapter reads and writes, beyond the client's generated models. */
import type * as k8s from '@kubernetes/client-node';
import type { Condition } from '../core/index.js';

export interface ServiceExport {
  apiVersion?: string;
  kind?: string;
  metadata: k8s.V1ObjectMeta;
  spec?: { exportedLabels?: Record<string, string>; exportedAnnotations?: Record<string, string> };
  status?: { conditions?: Condition[] };
}

export interface ServiceImportPort {
  name?: string;
  protocol?: string;
  port: number;
  appProtocol?: string;
}

export interface ServiceImport {
  apiVersion?: string;
  kind?: string;
  metadata: k8s.V1ObjectMeta;
  spec?: {
    type?: string;
    ports?: ServiceImportPort[];
    ips?: string[];
    sessionAffinity?: string;
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    ipFamilies?: string[];
    internalTrafficPolicy?: string;
    trafficDistribution?: string;
  };
  status?: { clusters?: { cluster: string }[]; conditions?: Condition[] };
}

export interface ClusterProperty {
  apiVersion?: string;
  kind?: string;
  metadata: k8s.V1ObjectMeta;
  spec?: { value?: string };
}
