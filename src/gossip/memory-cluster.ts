// An in-memory stand-in for a cluster's API server: the local exports of a node come from a map instead of
// informers, so simulations and benchmarks run hundreds of nodes in one process.
import { serviceKey } from '../core/index.js';
import type { Endpoint, ExportedService, ServiceKey } from '../core/index.js';

/** What the in-memory cluster drives: a GossipNode, or anything else that takes the desired local exports. */
export interface LocalExportSink {
  setLocalExports(desired: ReadonlyMap<ServiceKey, ExportedService>): unknown;
}

export class MemoryCluster {
  readonly #exports = new Map<ServiceKey, ExportedService>();

  constructor(private readonly sink: LocalExportSink) {}

  /** Creates or replaces an export, and pushes the new desired set to the node. */
  upsert(namespace: string, name: string, service: ExportedService): void {
    this.#exports.set(serviceKey(namespace, name), service);
    this.sink.setLocalExports(this.#exports);
  }

  /** Removes an export (the node publishes a tombstone). */
  remove(namespace: string, name: string): void {
    if (this.#exports.delete(serviceKey(namespace, name))) this.sink.setLocalExports(this.#exports);
  }

  /** Replaces every export at once (one coalesced delta). */
  replaceAll(exports: ReadonlyMap<ServiceKey, ExportedService>): void {
    this.#exports.clear();
    for (const [k, v] of exports) this.#exports.set(k, v);
    this.sink.setLocalExports(this.#exports);
  }

  get exports(): ReadonlyMap<ServiceKey, ExportedService> {
    return this.#exports;
  }
}

/** A plausible ClusterSetIP service with `endpoints` ready endpoints; `seed` varies addresses and content. */
export function syntheticService(seed: number, endpoints: number, createdMs = 1_700_000_000_000): ExportedService {
  const eps: Endpoint[] = [];
  for (let i = 0; i < endpoints; i++) {
    const n = seed * 1000 + i;
    eps.push({
      addresses: [`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`],
      conditions: { ready: true, serving: true, terminating: false },
      zone: `zone-${i % 3}`,
      nodeName: `node-${i % 16}`,
    });
  }
  return {
    exportCreatedMs: createdMs,
    type: 'ClusterSetIP',
    ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    sessionAffinity: 'None',
    ipFamilies: ['IPv4'],
    exportedLabels: {},
    exportedAnnotations: {},
    endpointGroups: [{ addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }], endpoints: eps }],
  };
}
