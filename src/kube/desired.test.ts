import { describe, expect, it } from 'vitest';
import {
  ClusterSetState,
  derivedServiceName,
  exportRecordsFromObjects,
  resolve,
  type LocalObjects,
} from '../core/index.js';
import { derivedService, indexResolution, serviceImportBody, sliceBody } from './desired.js';

const objects: LocalObjects = {
  namespaces: [{ metadata: { name: 'web' } }],
  services: [
    {
      metadata: { name: 'web', namespace: 'web' },
      spec: {
        clusterIP: '10.1.0.5',
        ports: [{ name: 'http', protocol: 'TCP', port: 80, appProtocol: 'http' }],
        ipFamilies: ['IPv4'],
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      },
    },
  ],
  serviceExports: [{ metadata: { name: 'web', namespace: 'web', creationTimestamp: '2026-01-01T00:00:00Z' } }],
  endpointSlices: [
    {
      metadata: { name: 'web-abc', namespace: 'web', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.2.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    },
  ],
};

function resolution() {
  const state = new ClusterSetState();
  const local = exportRecordsFromObjects('c1', objects);
  state.merge(local.records);
  return resolve(state, { localCluster: 'c1', namespaces: ['web'], localExports: local.exports });
}

describe('desired objects', () => {
  it('indexes the resolution by service key', () => {
    const byKey = indexResolution(resolution());
    const d = byKey.get('web/web');
    expect(d?.serviceImport?.spec.type).toBe('ClusterSetIP');
    expect(d?.endpointSlices).toHaveLength(1);
    expect(d?.exportConditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
      'Valid=True',
      'Ready=True',
      'Conflict=False',
    ]);
  });

  it('builds a selectorless derived Service, owned by nothing (it is written before its ServiceImport)', () => {
    const si = indexResolution(resolution()).get('web/web')!.serviceImport!;
    const svc = derivedService(si);
    expect(svc.metadata?.name).toBe(derivedServiceName('web', 'web'));
    expect(svc.spec?.selector).toBeUndefined();
    expect(svc.spec?.ports).toEqual([{ name: 'http', protocol: 'TCP', port: 80, appProtocol: 'http' }]);
    expect(svc.spec).toMatchObject({ type: 'ClusterIP', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' });
    expect(svc.spec?.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 60 } });
    expect(svc.metadata?.ownerReferences).toBeUndefined();
  });

  it('puts the derived cluster IPs into spec.ips, never for headless', () => {
    const si = indexResolution(resolution()).get('web/web')!.serviceImport!;
    expect(serviceImportBody(si, ['10.1.0.9']).spec?.ips).toEqual(['10.1.0.9']);
    expect(serviceImportBody({ ...si, spec: { ...si.spec, type: 'Headless' } }, ['10.1.0.9']).spec?.ips).toEqual([]);
  });

  it('writes imported slices owned by nothing, with the core labels', () => {
    const slice = indexResolution(resolution()).get('web/web')!.endpointSlices[0]!;
    const body = sliceBody(slice);
    expect(body.metadata?.labels).toMatchObject({
      'multicluster.kubernetes.io/source-cluster': 'c1',
      'kubernetes.io/service-name': derivedServiceName('web', 'web'),
    });
    expect(body.metadata?.ownerReferences).toBeUndefined();
    expect(body.endpoints).toEqual([{ addresses: ['10.2.0.1'], conditions: { ready: true } }]);
  });
});
