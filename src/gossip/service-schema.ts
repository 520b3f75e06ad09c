// Schema check of the `service` part of a record received from a peer. The service travels as JSON inside the signed
// protobuf payload; a signed record can still come from a buggy origin, so nothing reaches the core unless it has
// exactly the shape of ExportedService, with bounded sizes.
import type {
  Endpoint,
  EndpointGroup,
  EndpointPort,
  ExportedService,
  ServicePort,
  SessionAffinityConfig,
} from '../core/export-record.js';
import { InvalidMessageError } from './errors.js';

const MAX_STRING = 1024;
const MAX_LIST = 100_000;
const MAX_MAP_ENTRIES = 256;

type Json = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw new InvalidMessageError(`service${path}: ${what}`);
}

function obj(v: unknown, path: string, allowed: readonly string[]): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'not an object');
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(path, `unknown field "${k}"`);
  return v as Json;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length > MAX_STRING) fail(path, 'not a string (or too long)');
  return v;
}

function optStr(v: unknown, path: string): string | undefined {
  return v === undefined ? undefined : str(v, path);
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(path, 'not an integer in range');
  return v;
}

function optInt(v: unknown, path: string, min: number, max: number): number | undefined {
  return v === undefined ? undefined : int(v, path, min, max);
}

function optBool(v: unknown, path: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(path, 'not a boolean');
  return v;
}

function list<T>(v: unknown, path: string, item: (x: unknown, p: string) => T): T[] {
  if (!Array.isArray(v) || v.length > MAX_LIST) fail(path, 'not a list (or too long)');
  return v.map((x, i) => item(x, `${path}[${i}]`));
}

function strMap(v: unknown, path: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'not a map');
  const entries = Object.entries(v);
  if (entries.length > MAX_MAP_ENTRIES) fail(path, 'too many entries');
  const out: Record<string, string> = {};
  for (const [k, x] of entries) out[str(k, path)] = str(x, `${path}.${k}`);
  return out;
}

/** Copies only defined optional fields, so the result has exactly the keys the origin set. */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function servicePort(v: unknown, p: string): ServicePort {
  const o = obj(v, p, ['name', 'protocol', 'port', 'appProtocol']);
  return compact({
    name: optStr(o.name, `${p}.name`),
    protocol: str(o.protocol, `${p}.protocol`),
    port: int(o.port, `${p}.port`, 0, 65535),
    appProtocol: optStr(o.appProtocol, `${p}.appProtocol`),
  });
}

function endpointPort(v: unknown, p: string): EndpointPort {
  const o = obj(v, p, ['name', 'protocol', 'port', 'appProtocol']);
  return compact({
    name: optStr(o.name, `${p}.name`),
    protocol: optStr(o.protocol, `${p}.protocol`),
    port: optInt(o.port, `${p}.port`, 0, 65535),
    appProtocol: optStr(o.appProtocol, `${p}.appProtocol`),
  });
}

function endpoint(v: unknown, p: string): Endpoint {
  const o = obj(v, p, ['addresses', 'conditions', 'hostname', 'zone', 'nodeName']);
  const c = obj(o.conditions, `${p}.conditions`, ['ready', 'serving', 'terminating']);
  return compact({
    addresses: list(o.addresses, `${p}.addresses`, str),
    conditions: compact({
      ready: optBool(c.ready, `${p}.conditions.ready`),
      serving: optBool(c.serving, `${p}.conditions.serving`),
      terminating: optBool(c.terminating, `${p}.conditions.terminating`),
    }),
    hostname: optStr(o.hostname, `${p}.hostname`),
    zone: optStr(o.zone, `${p}.zone`),
    nodeName: optStr(o.nodeName, `${p}.nodeName`),
  });
}

function endpointGroup(v: unknown, p: string): EndpointGroup {
  const o = obj(v, p, ['addressType', 'ports', 'endpoints']);
  const addressType = o.addressType;
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN') fail(`${p}.addressType`, 'invalid');
  return {
    addressType,
    ports: list(o.ports, `${p}.ports`, endpointPort),
    endpoints: list(o.endpoints, `${p}.endpoints`, endpoint),
  };
}

function affinityConfig(v: unknown, p: string): SessionAffinityConfig | undefined {
  if (v === undefined) return undefined;
  const o = obj(v, p, ['clientIP']);
  if (o.clientIP === undefined) return {};
  const c = obj(o.clientIP, `${p}.clientIP`, ['timeoutSeconds']);
  return { clientIP: compact({ timeoutSeconds: optInt(c.timeoutSeconds, `${p}.clientIP.timeoutSeconds`, 0, 86400) }) };
}

/** Parses the JSON of a service and checks it is an ExportedService; throws InvalidMessageError. */
export function parseExportedService(json: string): ExportedService {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new InvalidMessageError('service: not JSON');
  }
  const o = obj(v, '', [
    'exportCreatedMs',
    'type',
    'ports',
    'sessionAffinity',
    'sessionAffinityConfig',
    'internalTrafficPolicy',
    'trafficDistribution',
    'ipFamilies',
    'exportedLabels',
    'exportedAnnotations',
    'endpointGroups',
  ]);
  const type = o.type;
  if (type !== 'ClusterSetIP' && type !== 'Headless') fail('.type', 'invalid');
  return compact({
    exportCreatedMs: int(o.exportCreatedMs, '.exportCreatedMs', 0, Number.MAX_SAFE_INTEGER),
    type,
    ports: list(o.ports, '.ports', servicePort),
    sessionAffinity: str(o.sessionAffinity, '.sessionAffinity'),
    sessionAffinityConfig: affinityConfig(o.sessionAffinityConfig, '.sessionAffinityConfig'),
    internalTrafficPolicy: optStr(o.internalTrafficPolicy, '.internalTrafficPolicy'),
    trafficDistribution: optStr(o.trafficDistribution, '.trafficDistribution'),
    ipFamilies: list(o.ipFamilies, '.ipFamilies', str),
    exportedLabels: strMap(o.exportedLabels, '.exportedLabels'),
    exportedAnnotations: strMap(o.exportedAnnotations, '.exportedAnnotations'),
    endpointGroups: list(o.endpointGroups, '.endpointGroups', endpointGroup),
  });
}
