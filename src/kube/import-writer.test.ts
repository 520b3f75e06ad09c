import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ConditionData } from '../core/index.js';
import { importReady, isIpFamilyRefusal, WriteError } from './import-writer.js';

const READY: ConditionData = {
  type: 'Ready',
  status: 'True',
  reason: 'Ready',
  message: 'Imported from 1 cluster(s): a.',
};

function failure(resource: string, code: number, message: string): WriteError {
  const body = JSON.stringify({ kind: 'Status', reason: code === 422 ? 'Invalid' : 'Forbidden', message });
  return new WriteError(resource, 'create', 'lb/x', new k8s.ApiException(code, 'refused', body, {}));
}

describe('importReady: the Ready condition of a ServiceImport as the importing cluster sees it', () => {
  it("is the core's when nothing failed, or only failures that are retried", () => {
    expect(importReady([READY], [])).toEqual([READY]);
    expect(importReady([READY], [failure('services', 409, 'conflict'), failure('endpointslices', 500, 'x')])).toEqual([
      READY,
    ]);
  });

  it('is False IPFamilyNotSupported with the API server message when the derived Service is refused for families', () => {
    const msg =
      'Service "derived-x" is invalid: spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster';
    const f = failure('services', 422, msg);
    expect(isIpFamilyRefusal(f)).toBe(true);
    expect(importReady([READY], [failure('endpointslices', 422, 'bad slice'), f])).toEqual([
      { type: 'Ready', status: 'False', reason: 'IPFamilyNotSupported', message: msg },
    ]);
    expect(isIpFamilyRefusal(failure('services', 422, 'spec.ports: Required value'))).toBe(false);
    expect(isIpFamilyRefusal(failure('endpointslices', 422, 'ipFamilies'))).toBe(false);
    expect(isIpFamilyRefusal(failure('services', 403, 'dual-stack'))).toBe(false);
  });

  it('is False WriteRefused with the first refusal, cut to 1000 characters', () => {
    const long = 'x'.repeat(5000);
    const [ready] = importReady([READY], [failure('services', 500, 'boom'), failure('endpointslices', 403, long)]);
    expect(ready).toMatchObject({ type: 'Ready', status: 'False', reason: 'WriteRefused' });
    expect(ready!.message.startsWith('create endpointslices lb/x: HTTP 403 Forbidden: xxx')).toBe(true);
    expect(ready!.message.length).toBeLessThanOrEqual(1000);
  });
});
