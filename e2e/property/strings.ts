// The string spaces the property test draws from: names, keys, values and addresses, valid and invalid by the
// rules of the Kubernetes API server (each arbitrary mixes both, weighted so most draws are valid).
import fc from 'fast-check';

const LOWER = [...'abcdefghijklmnopqrstuvwxyz'];
const DIGITS = [...'0123456789'];
const UPPER = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'];
const ALNUM_LOWER = [...LOWER, ...DIGITS];
const ALNUM = [...ALNUM_LOWER, ...UPPER];

/** Strings of `minLength`…`maxLength` characters taken from `chars`. */
export function from(chars: readonly string[], minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...chars), minLength, maxLength });
}

/** `arb` one time in `oneIn`, else undefined (fc.option's `freq` is the other way round: nil one time in freq). */
export function rarely<T>(arb: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> {
  return fc.oneof(
    { withCrossShrink: true },
    { weight: oneIn - 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: arb },
  );
}

/** `'a'.repeat(n)` for n in [min, max]: length boundaries, shrinking towards the shorter side. */
export function ofLength(char: string, min: number, max: number): fc.Arbitrary<string> {
  return fc.integer({ min, max }).map((n) => char.repeat(n));
}

/** A valid DNS subdomain of exactly `n` characters (labels of 62 "a", dots between). */
export function subdomainOfLength(n: number): string {
  let s = ('a'.repeat(62) + '.').repeat(Math.ceil(n / 63)).slice(0, n);
  if (s.endsWith('.')) s = s.slice(0, -1) + 'b';
  return s;
}

/** A valid DNS-1123 label of 1 to `max` characters. */
export function dnsLabel(max = 20): fc.Arbitrary<string> {
  return fc.oneof(
    { withCrossShrink: true },
    from(ALNUM_LOWER, 1, 1),
    fc
      .tuple(from(ALNUM_LOWER, 1, 1), from([...ALNUM_LOWER, '-'], 0, max - 2), from(ALNUM_LOWER, 1, 1))
      .map(([a, m, b]) => a + m + b),
  );
}

/** A valid DNS-1035 label (a Service name): starts with a letter. */
export function dns1035Label(max = 20): fc.Arbitrary<string> {
  return fc
    .tuple(from(LOWER, 1, 1), from([...ALNUM_LOWER, '-'], 0, max - 2), from(ALNUM_LOWER, 1, 1))
    .map(([a, m, b]) => a + m + b);
}

/** A valid DNS subdomain of one to four short labels. */
export const subdomain: fc.Arbitrary<string> = fc
  .array(dnsLabel(10), { minLength: 1, maxLength: 4 })
  .map((labels) => labels.join('.'));

/** A valid name part of a qualified name (label or annotation key without prefix, label value): 1–22 chars. */
export const qualifiedPart: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  from(ALNUM, 1, 1),
  fc.tuple(from(ALNUM, 1, 1), from([...ALNUM, '-', '_', '.'], 0, 20), from(ALNUM, 1, 1)).map(([a, m, b]) => a + m + b),
);

/** A qualified-name part made invalid: a character outside the set, or a bad first or last character. */
export const brokenPart: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  fc.tuple(qualifiedPart, fc.constantFrom(' ', '!', '@', 'é', ':', '%', '\t', '*'), fc.nat()).map(([s, c, i]) => {
    const at = i % (s.length + 1);
    return s.slice(0, at) + c + s.slice(at);
  }),
  fc.tuple(fc.constantFrom('-', '_', '.'), qualifiedPart).map(([c, s]) => c + s),
  fc.tuple(qualifiedPart, fc.constantFrom('-', '_', '.')).map(([s, c]) => s + c),
);

/**
 * Label and annotation keys: `[prefix/]name`, valid (plain, prefixed, kubernetes.io) and invalid (name part 64+
 * characters, prefix over 253, uppercase prefix — valid for annotations, whose keys Kubernetes checks in lower case —
 * spaces and bad characters, empty parts, two slashes, a prefix label over 63 characters).
 */
export const mapKey: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  { weight: 8, arbitrary: qualifiedPart },
  { weight: 5, arbitrary: fc.tuple(subdomain, qualifiedPart).map(([p, n]) => `${p}/${n}`) },
  { weight: 1, arbitrary: qualifiedPart.map((n) => `kubernetes.io/${n}`) },
  { weight: 1, arbitrary: ofLength('k', 61, 66) },
  { weight: 1, arbitrary: ofLength('k', 61, 66).map((n) => `example.com/${n}`) },
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 256 }).map((n) => `${subdomainOfLength(n)}/x`) },
  {
    weight: 1,
    arbitrary: fc.tuple(subdomain, qualifiedPart).map(([p, n]) => `${p.charAt(0).toUpperCase()}${p.slice(1)}/${n}`),
  },
  { weight: 1, arbitrary: fc.tuple(subdomain, qualifiedPart).map(([p, n]) => `${p.toUpperCase()}/${n.toUpperCase()}`) },
  { weight: 2, arbitrary: brokenPart },
  { weight: 1, arbitrary: fc.tuple(subdomain, brokenPart).map(([p, n]) => `${p}/${n}`) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      '/x',
      'x/',
      '/',
      'a/b/c',
      'my_domain.com/x',
      'a..b/x',
      '-a.com/x',
      'a.com-/x',
      `${'a'.repeat(64)}.com/x`,
      'ключ',
      'x y',
      'é',
      'a.b.c',
      '1',
      '_',
    ),
  },
);

/** Label values: empty, valid, around the 63-character bound, invalid characters, any Unicode. */
export const labelValue: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  { weight: 8, arbitrary: qualifiedPart },
  { weight: 2, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: ofLength('v', 61, 66) },
  { weight: 2, arbitrary: brokenPart },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);

/** Annotation values: anything, multi-byte Unicode included. */
export const annotationValue: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 2, arbitrary: qualifiedPart },
  { weight: 1, arbitrary: fc.constant('') },
);

/** Port names: valid DNS-1123 labels mostly; uppercase, "_", too long, dots, empty, non-ASCII. */
export const invalidPortName: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  fc.constantFrom('HTTP', 'Http', 'a_b', '-x', 'x-', 'a.b', '', 'ü', 'a b', '1_2'),
  ofLength('n', 64, 66),
);

/** appProtocol: a qualified name (valid), or not (empty, spaces, three parts, too long, uppercase prefix). */
export const appProtocol: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  { weight: 6, arbitrary: fc.constantFrom('http', 'https', 'grpc', 'kubernetes.io/h2c', 'kubernetes.io/ws', 'h2c') },
  { weight: 2, arbitrary: fc.tuple(subdomain, qualifiedPart).map(([p, n]) => `${p}/${n}`) },
  { weight: 1, arbitrary: qualifiedPart },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      'bad proto',
      'a/b/c',
      'Example.com/X',
      'example.com/',
      '/x',
      'kubernetes.io/unknown',
      'HTTP',
    ),
  },
  { weight: 1, arbitrary: ofLength('p', 62, 65) },
);

// ---- addresses

/** A valid IPv4 address in dotted decimal. */
export const ipv4: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((b) => b.join('.'));

/** IPv4 addresses the API server may refuse, or accept only in part: leading zeros, special ranges, other forms. */
export const ipv4Edge: fc.Arbitrary<string> = fc.constantFrom(
  '10.01.2.3',
  '010.1.2.3',
  '1.2.3.04',
  '00.1.2.3',
  '127.0.0.1',
  '127.255.255.254',
  '169.254.0.1',
  '169.253.0.1',
  '0.0.0.0',
  '0.1.2.3',
  '224.0.0.1',
  '224.0.1.1',
  '239.1.2.3',
  '255.255.255.255',
  '1.2.3',
  '1.2.3.4.5',
  '1.2.3.256',
  ' 1.2.3.4',
  '1.2.3.4/32',
  '::ffff:1.2.3.4',
  'fd00::1',
  '',
);

/** IPv4 addresses in or next to the ranges an EndpointSlice may not hold, and with a leading zero. */
export const ipv4Special: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('127', '169.254', '224.0.0', '0', '169.253', '224.0.1', '128', '126'),
    fc.array(fc.nat(255), { minLength: 3, maxLength: 3 }),
    fc.boolean(),
  )
  .map(([head, rest, zero]) => {
    const parts = [...head.split('.'), ...rest.map(String)].slice(0, 4);
    if (zero) parts[3] = `0${parts[3]}`;
    return parts.join('.');
  });

function hex(g: number, pad: boolean): string {
  const h = g.toString(16);
  return pad ? h.padStart(4, '0') : h;
}

/** The zero runs of eight groups, as [start, length]. */
function zeroRuns(groups: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    runs.push([i, j - i]);
    i = j;
  }
  return runs;
}

function compress(groups: readonly number[], run: [number, number] | undefined, pad: boolean): string {
  const text = (xs: readonly number[]) => xs.map((g) => hex(g, pad)).join(':');
  if (run === undefined) return text(groups);
  return `${text(groups.slice(0, run[0]))}::${text(groups.slice(run[0] + run[1]))}`;
}

export type Ipv6Style = 'canonical' | 'full' | 'padded' | 'upper' | 'firstRun' | 'lastRun';

/**
 * An IPv6 address in one of several textual forms (RFC 5952 canonical, uncompressed, zero-padded, uppercase, or
 * compressing the first or last zero run, which may be a single group or not the longest): the canonical form is
 * written here independently of src/, the API server being the judge of each.
 */
export function formatIpv6(groups: readonly number[], style: Ipv6Style): string {
  const runs = zeroRuns(groups);
  let longest: [number, number] | undefined;
  for (const r of runs) if (r[1] >= 2 && (longest === undefined || r[1] > longest[1])) longest = r;
  switch (style) {
    case 'canonical':
      return compress(groups, longest, false);
    case 'full':
      return compress(groups, undefined, false);
    case 'padded':
      return compress(groups, longest, true);
    case 'upper':
      return compress(groups, longest, false).toUpperCase();
    case 'firstRun':
      return compress(groups, runs[0], false);
    case 'lastRun':
      return compress(groups, runs[runs.length - 1], false);
  }
}

const group16 = fc.oneof(
  { withCrossShrink: true },
  { weight: 4, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 0xffff }) },
  { weight: 1, arbitrary: fc.constantFrom(1, 0xffff, 0xfe80, 0xff02, 0xfd00, 0x2001, 0xdb8) },
);

/** An IPv6 address in a random textual form (canonical or not). */
export const ipv6Text: fc.Arbitrary<string> = fc
  .tuple(
    fc.integer({ min: 0x2000, max: 0xfdff }),
    fc.array(group16, { minLength: 7, maxLength: 7 }),
    fc.constantFrom<Ipv6Style>('canonical', 'canonical', 'canonical', 'full', 'padded', 'upper', 'firstRun', 'lastRun'),
  )
  .map(([first, rest, style]) => formatIpv6([first, ...rest], style));

/** A canonical IPv6 address outside the special ranges. */
export const ipv6Canonical: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 0x2000, max: 0xfdff }), fc.array(group16, { minLength: 7, maxLength: 7 }))
  .map(([first, rest]) => formatIpv6([first, ...rest], 'canonical'));

/** IPv6 texts at the edges: special ranges, IPv4-mapped and -compatible forms, zones, malformed ones. */
export const ipv6Edge: fc.Arbitrary<string> = fc.constantFrom(
  '::1',
  '::',
  '::2',
  'fe80::1',
  'febf:ffff::1',
  'fec0::1',
  'ff02::1',
  'ff02::1:2',
  'ff05::1',
  '::ffff:10.1.2.3',
  '::ffff:127.0.0.1',
  '::ffff:a01:203',
  '::10.1.2.3',
  '64:ff9b::10.1.2.3',
  '64:ff9b::a01:203',
  'fd00::1%eth0',
  '1:2:3:4:5:6:7:8:9',
  'fd00:::1',
  'fd00::1::2',
  '[fd00::1]',
  'fd00::g',
  '2001:db8::',
  '::2001:db8',
  'fd00:0:0:1::1',
  '2001:db8:0:0:1:0:0:1',
  '2001:db8::1:0:0:1',
  '2001:db8:0:1:1:1:1:1',
  '2001:db8::1:1:1:1:1',
  'fd00::01',
  '10.1.2.3',
);

/** IPv6 texts embedding an IPv4 address: IPv4-mapped (::ffff:a.b.c.d, also in hex), IPv4-compatible, NAT64. */
export const ipv6Embedding: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('::ffff:', '::ffff:', '::ffff:', '::', '64:ff9b::', '::ffff:0:', 'fd00::'), ipv4, fc.boolean())
  .map(([head, v4, asHex]) => {
    if (!asHex) return head + v4;
    const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
    return `${head}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  });

/** IPv6 addresses in or next to the special ranges: loopback, unspecified, link-local, multicast. */
export const ipv6Special: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('fe80', 'febf', 'fec0', 'fe7f', 'ff02', 'ff12', 'ff32', 'ff01', 'ff05', 'ff22', '0'),
    fc.integer({ min: 0, max: 0xffff }),
  )
  .map(([head, g]) => (head === '0' ? `::${g.toString(16)}` : `${head}::${g.toString(16)}`));

/** A valid FQDN address (two to four labels). */
export const fqdn: fc.Arbitrary<string> = fc
  .array(dnsLabel(12), { minLength: 2, maxLength: 4 })
  .map((labels) => labels.join('.'));

export const fqdnEdge: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  fc.constantFrom(
    'foo',
    'Foo.example.com',
    'foo.example.com.',
    'foo..example.com',
    'foo.example.com..',
    '-a.example.com',
    'a_b.example.com',
    '1.2.3.4',
    'fd00::1',
    '.example.com',
    `${'a'.repeat(64)}.com`,
    `${'a'.repeat(63)}.com`,
  ),
  fc.integer({ min: 251, max: 255 }).map((n) => subdomainOfLength(n)),
  fc.integer({ min: 251, max: 255 }).map((n) => `${subdomainOfLength(n)}.`),
);

/** Endpoint hostnames: DNS-1123 labels, valid or not. */
export const hostnameEdge: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  fc.constantFrom('Web-0', 'a.b', '-a', 'a-', '', 'a_b', 'ü'),
  ofLength('h', 62, 65),
);

/** Endpoint node names: DNS subdomains, valid or not. */
export const nodeNameEdge: fc.Arbitrary<string> = fc.oneof(
  { withCrossShrink: true },
  fc.constantFrom('Node-1', 'node_1', '', 'node.', 'node..1', '-node', 'kwok-node-0.', 'a b'),
  fc.integer({ min: 252, max: 255 }).map((n) => subdomainOfLength(n)),
);
