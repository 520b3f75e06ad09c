// Schema check of the `service` part of a record received from a peer. The service travels as JSON inside the signed
// protobuf payload; a signed record can still come from a buggy origin, so nothing reaches the core unless it has
// exactly the shape of ExportedService, with bounded sizes.
//
// The check walks the parsed JSON in place and hands that same object graph to the core: JSON has no `undefined`, so
// a value that passes has exactly the keys the origin set. A bootstrap parses thousands of services at once; building
// a second copy of every one, and a path string for every field checked, was a large share of its time and garbage.
// The path of the value being checked is a stack of segments, rendered only when a check fails.
import type { ExportedService } from '../core/export-record.js';
import { MAX_ANNOTATIONS_BYTES, MAX_EXPORTED_MAP_ENTRIES } from '../core/importability.js';
import { InvalidMessageError } from './errors.js';

const MAX_STRING = 1024;
const MAX_LIST = 100_000;

type Json = Record<string, unknown>;

/** Where the checker is: field names and list indexes from the root of the service. Reset by every parse. */
const path: (string | number)[] = [];

function fail(what: string): never {
  const at = path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');
  throw new InvalidMessageError(`service${at}: ${what}`);
}

/** Checks `o[name]` with `check`, with `name` on the path while it runs. */
function field(o: Json, name: string, check: (v: unknown) => void): void {
  path.push(name);
  check(o[name]);
  path.pop();
}

function obj(v: unknown, allowed: ReadonlySet<string>): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('not an object');
  for (const k in v) if (!allowed.has(k)) fail(`unknown field "${k}"`);
  return v as Json;
}

function str(v: unknown): void {
  if (typeof v !== 'string' || v.length > MAX_STRING) fail('not a string (or too long)');
}

function optStr(v: unknown): void {
  if (v !== undefined) str(v);
}

function int(v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail('not an integer in range');
}

function port(v: unknown): void {
  int(v, 0, 65535);
}

function optBool(v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') fail('not a boolean');
}

function list(item: (x: unknown) => void): (v: unknown) => void {
  return (v) => {
    if (!Array.isArray(v) || v.length > MAX_LIST) fail('not a list (or too long)');
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      item(v[i]);
      path.pop();
    }
  };
}

/** An annotation value may be long (Kubernetes bounds the total, which the importability check applies). */
function annotationValue(v: unknown): void {
  if (typeof v !== 'string' || v.length > MAX_ANNOTATIONS_BYTES) fail('not a string (or too long)');
}

function strMapOf(value: (v: unknown) => void): (v: unknown) => void {
  return (v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('not a map');
    let n = 0;
    for (const k in v) {
      if (++n > MAX_EXPORTED_MAP_ENTRIES) fail('too many entries');
      str(k);
      field(v as Json, k, value);
    }
  };
}
const labelMap = strMapOf(str);
const annotationMap = strMapOf(annotationValue);

const SERVICE_PORT = new Set(['name', 'protocol', 'port', 'appProtocol']);
function servicePort(v: unknown): void {
  const o = obj(v, SERVICE_PORT);
  field(o, 'name', optStr);
  field(o, 'protocol', str);
  field(o, 'port', port);
  field(o, 'appProtocol', optStr);
}

/** An EndpointSlice port number: the API server takes any int32 there. */
function optSlicePort(v: unknown): void {
  if (v !== undefined) int(v, -2_147_483_648, 2_147_483_647);
}

function endpointPort(v: unknown): void {
  const o = obj(v, SERVICE_PORT);
  field(o, 'name', optStr);
  field(o, 'protocol', optStr);
  field(o, 'port', optSlicePort);
  field(o, 'appProtocol', optStr);
}

const CONDITIONS = new Set(['ready', 'serving', 'terminating']);
function conditions(v: unknown): void {
  const c = obj(v, CONDITIONS);
  field(c, 'ready', optBool);
  field(c, 'serving', optBool);
  field(c, 'terminating', optBool);
}

const ENDPOINT = new Set(['addresses', 'conditions', 'hostname', 'zone', 'nodeName']);
const addresses = list(str);
function endpoint(v: unknown): void {
  const o = obj(v, ENDPOINT);
  field(o, 'addresses', addresses);
  field(o, 'conditions', conditions);
  field(o, 'hostname', optStr);
  field(o, 'zone', optStr);
  field(o, 'nodeName', optStr);
}

const ENDPOINT_GROUP = new Set(['addressType', 'ports', 'endpoints']);
const endpointPorts = list(endpointPort);
const endpoints = list(endpoint);
function endpointGroup(v: unknown): void {
  const o = obj(v, ENDPOINT_GROUP);
  field(o, 'addressType', (t) => {
    if (t !== 'IPv4' && t !== 'IPv6' && t !== 'FQDN') fail('invalid');
  });
  field(o, 'ports', endpointPorts);
  field(o, 'endpoints', endpoints);
}

const AFFINITY = new Set(['clientIP']);
const CLIENT_IP = new Set(['timeoutSeconds']);
function clientIP(v: unknown): void {
  if (v === undefined) return;
  const c = obj(v, CLIENT_IP);
  field(c, 'timeoutSeconds', (t) => {
    if (t !== undefined) int(t, 0, 86400);
  });
}

function affinityConfig(v: unknown): void {
  if (v === undefined) return;
  field(obj(v, AFFINITY), 'clientIP', clientIP);
}

const SERVICE = new Set([
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
const servicePorts = list(servicePort);
const ipFamilies = list(str);
const endpointGroups = list(endpointGroup);

/** Parses the JSON of a service and checks it is an ExportedService; throws InvalidMessageError. */
export function parseExportedService(json: string): ExportedService {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new InvalidMessageError('service: not JSON');
  }
  path.length = 0;
  const o = obj(v, SERVICE);
  field(o, 'exportCreatedMs', (t) => int(t, 0, Number.MAX_SAFE_INTEGER));
  field(o, 'type', (t) => {
    if (t !== 'ClusterSetIP' && t !== 'Headless') fail('invalid');
  });
  field(o, 'ports', servicePorts);
  field(o, 'sessionAffinity', str);
  field(o, 'sessionAffinityConfig', affinityConfig);
  field(o, 'internalTrafficPolicy', optStr);
  field(o, 'trafficDistribution', optStr);
  field(o, 'ipFamilies', ipFamilies);
  field(o, 'exportedLabels', labelMap);
  field(o, 'exportedAnnotations', annotationMap);
  field(o, 'endpointGroups', endpointGroups);
  return o as unknown as ExportedService;
}
