import { describe, expect, it } from 'vitest';
import { dialOptsFor } from './libp2p-node.js';

describe('dialOptsFor', () => {
  it('dials from the one specific IPv4 address a node listens on, else lets the kernel pick', () => {
    expect(dialOptsFor(['/ip4/127.0.0.3/tcp/7946'])).toEqual({ localAddress: '127.0.0.3' });
    expect(dialOptsFor(['/ip4/127.0.0.3/tcp/0', '/ip4/127.0.0.3/tcp/7947'])).toEqual({ localAddress: '127.0.0.3' });
    expect(dialOptsFor(['/ip4/0.0.0.0/tcp/7946'])).toEqual({});
    expect(dialOptsFor(['/ip4/10.0.0.1/tcp/7946', '/ip4/10.0.0.2/tcp/7946'])).toEqual({});
    expect(dialOptsFor(['/ip6/::1/tcp/7946'])).toEqual({});
    expect(dialOptsFor(['/dns4/example.com/tcp/7946'])).toEqual({});
    expect(dialOptsFor([])).toEqual({});
  });
});
