import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { describeError } from './errors.js';

describe('describeError', () => {
  it('gives one line for an API error', () => {
    const body = JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', message: 'storage is (re)initializing' });
    const err = new k8s.ApiException(429, 'Unknown API Status Code!', body, { 'retry-after': '1' });
    expect(describeError(err)).toBe('HTTP 429 TooManyRequests: storage is (re)initializing');
    expect(describeError(new k8s.ApiException(500, 'x', 'not json', {}))).toBe('HTTP 500 not json');
  });

  it('passes other errors through', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError({ message: 'watch closed' })).toBe('watch closed');
    expect(describeError('plain')).toBe('plain');
  });

  it('keeps the causes fetch hides behind "fetch failed"', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    expect(describeError(new TypeError('fetch failed', { cause: refused }))).toBe(
      'fetch failed: connect ECONNREFUSED 127.0.0.1:6443',
    );
    const tls = new Error('request to https://x failed', { cause: { code: 'CERT_HAS_EXPIRED' } });
    expect(describeError(tls)).toBe('request to https://x failed: CERT_HAS_EXPIRED');
    // A cause already in the message is not repeated.
    expect(describeError(new Error('connect ECONNREFUSED x', { cause: { code: 'ECONNREFUSED' } }))).toBe(
      'connect ECONNREFUSED x',
    );
  });
});
