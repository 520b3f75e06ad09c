import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { gossipsubMetricsRegister } from './gossipsub-metrics.js';
import { agentVersion, compatibility, isSoftwareVersion, parseAgentVersion } from './versioning.js';

describe('versioning', () => {
  it('announces and parses the identify agent', () => {
    expect(agentVersion('0.2.0')).toBe('mcs-gossip/0.2.0 wire/1');
    expect(parseAgentVersion('mcs-gossip/0.2.0 wire/1')).toEqual({ software: '0.2.0', wire: 1 });
    expect(parseAgentVersion('mcs-gossip/1.4.0-rc.1 wire/3')).toEqual({ software: '1.4.0-rc.1', wire: 3 });
    // Nodes before 0.2.0 send libp2p's default agent: wire 1, no version.
    expect(parseAgentVersion('js-libp2p/3.1.0 UserAgent=v24.21.0')).toEqual({ wire: 1 });
    expect(parseAgentVersion(undefined)).toEqual({ wire: 1 });
    expect(parseAgentVersion(`mcs-gossip/${'9'.repeat(80)} wire/1`)).toEqual({ wire: 1 });
  });

  it('accepts the previous and the next minor, and refuses two minors or a major apart', () => {
    expect(compatibility('0.2.0', { software: '0.2.5', wire: 1 })).toEqual({ ok: true });
    expect(compatibility('0.2.0', { software: '0.1.0', wire: 1 })).toEqual({ ok: true });
    expect(compatibility('0.2.0', { software: '0.3.1', wire: 1 })).toEqual({ ok: true });
    // A node that announced nothing is a 0.1: fine for 0.2, two minors behind 0.3.
    expect(compatibility('0.2.0', { wire: 1 })).toEqual({ ok: true });
    const old = compatibility('0.3.0', { wire: 1 });
    expect(old).toMatchObject({ ok: false, reason: 'SoftwareVersion' });
    expect(old.ok ? '' : old.message).toContain('an unannounced version (before 0.2.0)');
    expect(compatibility('0.2.0', { software: '0.4.0', wire: 1 })).toMatchObject({
      ok: false,
      reason: 'SoftwareVersion',
    });
    expect(compatibility('1.0.0', { software: '0.9.0', wire: 1 })).toMatchObject({
      ok: false,
      reason: 'SoftwareVersion',
    });
    // A development build on either side: the wire alone decides.
    expect(compatibility('1.2.0', { software: 'unknown', wire: 1 })).toEqual({ ok: true });
  });

  it('checks the wire range first, and only the wire for a development build', () => {
    const r = compatibility('0.2.0', { software: '0.2.0', wire: 2 });
    expect(r).toMatchObject({ ok: false, reason: 'WireVersion' });
    expect(r.ok ? '' : r.message).toBe('speaks wire version 2, this node 1');
    expect(compatibility('0.2.0', { software: '0.2.0', wire: 2 }, { min: 1, max: 2 })).toEqual({ ok: true });
    expect(compatibility('unknown', { software: '7.0.0', wire: 1 })).toEqual({ ok: true });
    expect(compatibility('unknown', { wire: 0 })).toMatchObject({ ok: false, reason: 'WireVersion' });
  });

  it('bounds the versions a peer may announce', () => {
    expect(isSoftwareVersion('0.2.0')).toBe(true);
    expect(isSoftwareVersion('0.2.0+build.7')).toBe(true);
    expect(isSoftwareVersion('0.2')).toBe(false);
    expect(isSoftwareVersion('0.2.0 ')).toBe(false);
    expect(isSoftwareVersion(`0.2.0-${'a'.repeat(70)}`)).toBe(false);
  });
});

describe('gossipsub metrics register', () => {
  it('puts gauges, histograms and avg/min/max series on the registry, collected at scrape time', async () => {
    const registry = new Registry();
    const reg = gossipsubMetricsRegister(registry);
    const g = reg.gauge<{ topic: string }>({ name: 'gossipsub_t_gauge', help: 'h', labelNames: ['topic'] });
    const plain = reg.gauge({ name: 'gossipsub_t_plain', help: 'h' });
    let scrapes = 0;
    plain.addCollect(() => {
      scrapes++;
      plain.set(42);
    });
    g.inc({ topic: 'clusterset' }, 2);
    g.inc({ topic: 'clusterset' });
    const h = reg.histogram({ name: 'gossipsub_t_hist', help: 'h', buckets: [0.1, 1] });
    h.observe(0.5);
    const s = reg.avgMinMax({ name: 'gossipsub_t_score', help: 'h' });
    s.set([1, 2, 6]);
    const text = await registry.metrics();
    expect(scrapes).toBe(1);
    expect(text).toContain('gossipsub_t_gauge{topic="clusterset"} 3');
    expect(text).toContain('gossipsub_t_plain 42');
    expect(text).toContain('gossipsub_t_hist_bucket{le="1"} 1');
    expect(text).toContain('gossipsub_t_score{stat="avg"} 3');
    expect(text).toContain('gossipsub_t_score{stat="min"} 1');
    expect(text).toContain('gossipsub_t_score{stat="max"} 6');
  });
});
