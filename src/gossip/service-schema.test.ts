import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExportedService } from '../core/index.js';
import { exported, exportedServiceArb } from '../core/test-support/fixtures.js';
import { InvalidMessageError } from './errors.js';
import { syntheticService } from './memory-cluster.js';
import { parseExportedService } from './service-schema.js';

const withEndpoints: ExportedService = {
  ...exported(),
  sessionAffinity: 'ClientIP',
  sessionAffinityConfig: { clientIP: { timeoutSeconds: 10 } },
  exportedLabels: { tier: 'web' },
  endpointGroups: [
    {
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true }, zone: 'z1' }],
    },
  ],
};

/** The JSON of `withEndpoints` with one value replaced (found by a path of keys and indexes). */
function mutated(at: readonly (string | number)[], value: unknown): string {
  const root = JSON.parse(JSON.stringify(withEndpoints)) as Record<string | number, unknown>;
  let o = root;
  for (const k of at.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[at.at(-1)!] = value;
  return JSON.stringify(root);
}

describe('parseExportedService', () => {
  it('accepts every service the adapters produce, unchanged', () => {
    fc.assert(
      fc.property(exportedServiceArb, (s) => {
        expect(parseExportedService(JSON.stringify(s))).toEqual(s);
      }),
    );
    expect(parseExportedService(JSON.stringify(withEndpoints))).toEqual(withEndpoints);
    const synthetic = syntheticService(7, 10);
    expect(parseExportedService(JSON.stringify(synthetic))).toEqual(synthetic);
  });

  it('names the field that is wrong', () => {
    const cases: [readonly (string | number)[], unknown, string][] = [
      [['type'], 'LoadBalancer', 'service.type: invalid'],
      [['ports', 0, 'port'], 70000, 'service.ports[0].port: not an integer in range'],
      [['ports', 0, 'extra'], 1, 'service.ports[0]: unknown field "extra"'],
      [['exportedLabels', 'tier'], 5, 'service.exportedLabels.tier: not a string (or too long)'],
      [['exportedAnnotations'], [], 'service.exportedAnnotations: not a map'],
      [
        ['sessionAffinityConfig', 'clientIP', 'timeoutSeconds'],
        -1,
        'service.sessionAffinityConfig.clientIP.timeoutSeconds: not an integer in range',
      ],
      [
        ['endpointGroups', 0, 'endpoints', 0, 'conditions', 'ready'],
        'yes',
        'service.endpointGroups[0].endpoints[0].conditions.ready: not a boolean',
      ],
      [
        ['endpointGroups', 0, 'endpoints', 0, 'addresses', 0],
        null,
        'service.endpointGroups[0].endpoints[0].addresses[0]: not a string (or too long)',
      ],
      [['endpointGroups', 0, 'addressType'], 'IPv5', 'service.endpointGroups[0].addressType: invalid'],
      [['ipFamilies'], 'IPv4', 'service.ipFamilies: not a list (or too long)'],
    ];
    for (const [at, value, message] of cases) {
      expect(() => parseExportedService(mutated(at, value)), message).toThrow(InvalidMessageError);
      expect(() => parseExportedService(mutated(at, value))).toThrow(message);
    }
    const proto = `{"__proto__":{},${JSON.stringify(withEndpoints).slice(1)}`;
    expect(() => parseExportedService(proto)).toThrow('service: unknown field "__proto__"');
    // The path of a failed parse does not leak into the next one.
    expect(() => parseExportedService(JSON.stringify({ ...withEndpoints, type: 'x' }))).toThrow(/^service\.type: /);
    expect(() => parseExportedService('[')).toThrow('service: not JSON');
  });

  it('a "__proto__" label is an ordinary key, not a prototype', () => {
    const s = parseExportedService(JSON.stringify(withEndpoints).replace('"tier"', '"__proto__"'));
    expect(Object.getPrototypeOf(s.exportedLabels)).toBe(Object.prototype);
    expect(Object.keys(s.exportedLabels)).toEqual(['__proto__']);
  });

  it('throws nothing but InvalidMessageError on any JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          parseExportedService(JSON.stringify(v) ?? 'null');
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidMessageError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
