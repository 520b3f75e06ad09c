import type { ClusterId } from './ids.js';
import type {
  EndpointSliceObject,
  LocalObjects,
  NamespaceObject,
  ServiceExportObject,
  ServiceObject,
} from './kube-objects.js';

/** Input that does not describe a ClusterSet: the message names the cluster, the object and the field. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

/** The objects of one cluster of an offline ClusterSet description (the `resolve` command's input). */
export interface ClusterInput extends LocalObjects {
  readonly clusterId: ClusterId;
  /** Namespaces that exist: Namespace objects plus the namespace of every namespaced object given. */
  readonly namespaceNames: readonly string[];
}

type Json = Record<string, unknown>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);
const SERVICE_TYPES = new Set(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']);
const ADDRESS_TYPES = new Set(['IPv4', 'IPv6', 'FQDN']);
const KINDS = new Set(['Namespace', 'Service', 'ServiceExport', 'EndpointSlice']);

function isMap(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Checks one object's fields, throwing with `where` (cluster and object) and the field path. */
class Checker {
  constructor(readonly where: string) {}

  fail(field: string, problem: string): never {
    throw new InvalidInputError(`${this.where}: ${field}: ${problem}`);
  }

  map(o: Json, field: string, path = field): Json | undefined {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    if (!isMap(v)) this.fail(path, 'must be a mapping');
    return v;
  }

  list(o: Json, field: string, path = field): unknown[] | undefined {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) this.fail(path, 'must be a list');
    return v;
  }

  str(o: Json, field: string, path = field): string | undefined {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(path, 'must be a string');
    return v;
  }

  int(o: Json, field: string, path: string, min: number, max: number): number | undefined {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path, `must be an integer from ${min} to ${max}`);
    }
    return v;
  }

  bool(o: Json, field: string, path: string): boolean | undefined {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(path, 'must be true or false');
    return v;
  }

  stringMap(o: Json, field: string, path: string): Record<string, string> | undefined {
    const m = this.map(o, field, path);
    if (m === undefined) return undefined;
    for (const [k, v] of Object.entries(m)) if (typeof v !== 'string') this.fail(`${path}.${k}`, 'must be a string');
    return m as Record<string, string>;
  }

  timestamp(o: Json, field: string, path: string): string | undefined {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    // YAML parsers may already have turned an unquoted timestamp into a Date.
    const text = v instanceof Date ? v.toISOString() : v;
    if (typeof text !== 'string' || !Number.isFinite(Date.parse(text)))
      this.fail(path, 'must be an RFC 3339 timestamp');
    return text;
  }
}

function checkMetadata(c: Checker, o: Json, namespaced: boolean): Json {
  const meta = c.map(o, 'metadata');
  if (meta === undefined) c.fail('metadata', 'is required');
  const name = c.str(meta, 'name', 'metadata.name');
  if (name === undefined || name === '') c.fail('metadata.name', 'is required');
  const namespace = c.str(meta, 'namespace', 'metadata.namespace');
  c.stringMap(meta, 'labels', 'metadata.labels');
  c.stringMap(meta, 'annotations', 'metadata.annotations');
  const out: Json = { ...meta, name };
  const created = c.timestamp(meta, 'creationTimestamp', 'metadata.creationTimestamp');
  if (created !== undefined) out['creationTimestamp'] = created;
  const deleted = c.timestamp(meta, 'deletionTimestamp', 'metadata.deletionTimestamp');
  if (deleted !== undefined) out['deletionTimestamp'] = deleted;
  // Like `kubectl apply`, a namespaced object without a namespace lives in "default".
  if (namespaced) out['namespace'] = namespace === undefined || namespace === '' ? 'default' : namespace;
  return out;
}

function checkService(c: Checker, o: Json): void {
  const spec = c.map(o, 'spec') ?? {};
  const type = c.str(spec, 'type', 'spec.type');
  if (type !== undefined && !SERVICE_TYPES.has(type)) c.fail('spec.type', `unknown Service type "${type}"`);
  const clusterIP = c.str(spec, 'clusterIP', 'spec.clusterIP');
  c.list(spec, 'clusterIPs', 'spec.clusterIPs')?.forEach((ip, i) => {
    if (typeof ip !== 'string') c.fail(`spec.clusterIPs[${i}]`, 'must be a string');
  });
  const ports = c.list(spec, 'ports', 'spec.ports');
  // Headless and ExternalName Services may have no ports; every other Service needs at least one.
  if ((ports === undefined || ports.length === 0) && clusterIP !== 'None' && type !== 'ExternalName') {
    c.fail('spec.ports', 'must be a non-empty list');
  }
  ports?.forEach((p, i) => {
    const path = `spec.ports[${i}]`;
    if (!isMap(p)) c.fail(path, 'must be a mapping');
    if (p['port'] === undefined) c.fail(`${path}.port`, 'is required');
    c.int(p, 'port', `${path}.port`, 1, 65535);
    c.str(p, 'name', `${path}.name`);
    c.str(p, 'appProtocol', `${path}.appProtocol`);
    const protocol = c.str(p, 'protocol', `${path}.protocol`);
    if (protocol !== undefined && !PROTOCOLS.has(protocol)) c.fail(`${path}.protocol`, 'must be TCP, UDP or SCTP');
  });
  const affinity = c.str(spec, 'sessionAffinity', 'spec.sessionAffinity');
  if (affinity !== undefined && affinity !== 'None' && affinity !== 'ClientIP') {
    c.fail('spec.sessionAffinity', 'must be None or ClientIP');
  }
  const config = c.map(spec, 'sessionAffinityConfig', 'spec.sessionAffinityConfig');
  const clientIP = config && c.map(config, 'clientIP', 'spec.sessionAffinityConfig.clientIP');
  if (clientIP) c.int(clientIP, 'timeoutSeconds', 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 1, 86400);
  c.str(spec, 'internalTrafficPolicy', 'spec.internalTrafficPolicy');
  c.str(spec, 'trafficDistribution', 'spec.trafficDistribution');
  const families = c.list(spec, 'ipFamilies', 'spec.ipFamilies');
  families?.forEach((f, i) => {
    if (f !== 'IPv4' && f !== 'IPv6') c.fail(`spec.ipFamilies[${i}]`, 'must be IPv4 or IPv6');
  });
  if (families !== undefined && families.length > 2) c.fail('spec.ipFamilies', 'must have at most 2 entries');
}

function checkServiceExport(c: Checker, o: Json): void {
  const spec = c.map(o, 'spec') ?? {};
  c.stringMap(spec, 'exportedLabels', 'spec.exportedLabels');
  c.stringMap(spec, 'exportedAnnotations', 'spec.exportedAnnotations');
  const status = c.map(o, 'status');
  c.list(status ?? {}, 'conditions', 'status.conditions')?.forEach((cond, i) => {
    if (!isMap(cond)) c.fail(`status.conditions[${i}]`, 'must be a mapping');
    for (const f of ['type', 'status', 'reason', 'message', 'lastTransitionTime']) {
      c.str(cond, f, `status.conditions[${i}].${f}`);
    }
  });
}

function checkEndpointSlice(c: Checker, o: Json): void {
  const addressType = c.str(o, 'addressType');
  if (addressType === undefined || !ADDRESS_TYPES.has(addressType)) c.fail('addressType', 'must be IPv4, IPv6 or FQDN');
  c.list(o, 'endpoints')?.forEach((e, i) => {
    const path = `endpoints[${i}]`;
    if (!isMap(e)) c.fail(path, 'must be a mapping');
    const addresses = c.list(e, 'addresses', `${path}.addresses`);
    if (addresses === undefined || addresses.length === 0) c.fail(`${path}.addresses`, 'must be a non-empty list');
    addresses.forEach((a, j) => {
      if (typeof a !== 'string' || a === '') c.fail(`${path}.addresses[${j}]`, 'must be a non-empty string');
    });
    const cond = c.map(e, 'conditions', `${path}.conditions`);
    if (cond) for (const f of ['ready', 'serving', 'terminating']) c.bool(cond, f, `${path}.conditions.${f}`);
    for (const f of ['hostname', 'zone', 'nodeName']) c.str(e, f, `${path}.${f}`);
  });
  c.list(o, 'ports')?.forEach((p, i) => {
    const path = `ports[${i}]`;
    if (!isMap(p)) c.fail(path, 'must be a mapping');
    c.str(p, 'name', `${path}.name`);
    c.str(p, 'protocol', `${path}.protocol`);
    c.str(p, 'appProtocol', `${path}.appProtocol`);
    c.int(p, 'port', `${path}.port`, 0, 65535);
  });
}

/** Flattens `kind: List` (what `kubectl get -o yaml` prints) into its items. */
function flatten(objects: readonly unknown[], where: string): unknown[] {
  const out: unknown[] = [];
  objects.forEach((o, i) => {
    if (isMap(o) && o['kind'] === 'List') {
      const items = o['items'];
      if (!Array.isArray(items)) throw new InvalidInputError(`${where}: objects[${i}]: List items must be a list`);
      for (const x of flatten(items, where)) out.push(x);
    } else out.push(o);
  });
  return out;
}

function clusterInput(clusterId: string, section: unknown): ClusterInput {
  const where = `cluster "${clusterId}"`;
  if (!DNS_LABEL.test(clusterId) || clusterId.length > 63) {
    throw new InvalidInputError(`${where}: cluster id must be a DNS label (lowercase, at most 63 characters)`);
  }
  if (section === null || section === undefined) section = [];
  if (!Array.isArray(section)) throw new InvalidInputError(`${where}: must be a list of Kubernetes objects`);
  const namespaces: NamespaceObject[] = [];
  const services: ServiceObject[] = [];
  const serviceExports: ServiceExportObject[] = [];
  const endpointSlices: EndpointSliceObject[] = [];
  const seen = new Set<string>();
  const namespaceNames = new Set<string>();
  flatten(section, where).forEach((raw, i) => {
    if (!isMap(raw)) throw new InvalidInputError(`${where}: objects[${i}]: must be a Kubernetes object (a mapping)`);
    const kind = raw['kind'];
    if (typeof kind !== 'string' || kind === '')
      throw new InvalidInputError(`${where}: objects[${i}]: kind: is required`);
    // Other kinds (Deployments, ClusterProperties, …) may come along in a dump: they do not affect exports.
    if (!KINDS.has(kind)) return;
    const meta = raw['metadata'];
    const label = isMap(meta) && typeof meta['name'] === 'string' ? meta['name'] : `objects[${i}]`;
    const ns =
      isMap(meta) && typeof meta['namespace'] === 'string' && meta['namespace'] !== '' ? meta['namespace'] : 'default';
    const c = new Checker(`${where}: ${kind} "${kind === 'Namespace' ? label : `${ns}/${label}`}"`);
    const metadata = checkMetadata(c, raw, kind !== 'Namespace');
    const object = { ...raw, metadata };
    const id = `${kind}/${String(metadata['namespace'] ?? '')}/${String(metadata['name'])}`;
    if (seen.has(id)) c.fail('metadata.name', 'appears twice in this cluster');
    seen.add(id);
    if (kind === 'Namespace') {
      namespaceNames.add(String(metadata['name']));
      namespaces.push(object as unknown as NamespaceObject);
      return;
    }
    namespaceNames.add(String(metadata['namespace']));
    if (kind === 'Service') {
      checkService(c, raw);
      services.push(object as unknown as ServiceObject);
    } else if (kind === 'ServiceExport') {
      checkServiceExport(c, raw);
      serviceExports.push(object as unknown as ServiceExportObject);
    } else {
      checkEndpointSlice(c, raw);
      endpointSlices.push(object as unknown as EndpointSliceObject);
    }
  });
  return {
    clusterId,
    namespaces,
    services,
    serviceExports,
    endpointSlices,
    namespaceNames: [...namespaceNames].sort(),
  };
}

/**
 * Checks a parsed `{ clusters: { <clusterId>: [objects…] } }` document and returns its clusters sorted by id.
 * Throws {@link InvalidInputError} naming the cluster, object and field of the first problem.
 */
export function parseClusterSetInput(doc: unknown): ClusterInput[] {
  if (!isMap(doc)) throw new InvalidInputError('input: must be a mapping with a "clusters" field');
  for (const key of Object.keys(doc)) {
    if (key !== 'clusters') throw new InvalidInputError(`input: unknown field "${key}" (expected only "clusters")`);
  }
  const clusters = doc['clusters'];
  if (!isMap(clusters)) {
    throw new InvalidInputError('input: clusters: must be a mapping of cluster id to a list of Kubernetes objects');
  }
  return Object.keys(clusters)
    .sort()
    .map((id) => clusterInput(id, clusters[id]));
}
