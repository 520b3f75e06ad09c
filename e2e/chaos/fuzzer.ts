/**
 * A mutation fuzzer of every decoder and validator a peer's bytes reach: topic messages (the gossipsub validator's
 * path: TopicMessage → envelopes → records, heartbeats, bindings, rotations → service schema), sync frames (SyncFrame,
 * deflated RECORDS, digests) and liveness frames. A corpus of valid messages is held by the node first, so any
 * accepted mutation can only be one of them again: the state must not change, and nothing may throw past the
 * node's own error handling or hang.
 *
 * `npx tsx e2e/chaos/fuzzer.ts --count 100000` (also a chaos scenario); the unit test runs a short form.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PeerId } from '@libp2p/interface';
import { pino } from 'pino';
import { ClusterSetState, type ExportRecord } from '../../src/core/index.js';
import { EnvelopeSigner, signBinding, signHeartbeat, signRecords, signRotation } from '../../src/gossip/envelope.js';
import { GossipNode } from '../../src/gossip/gossip-node.js';
import type { GossipLibp2p } from '../../src/gossip/libp2p-node.js';
import { LivenessExchange, unpackEntries } from '../../src/gossip/liveness.js';
import { GossipMetrics } from '../../src/gossip/metrics.js';
import { syntheticService } from '../../src/gossip/memory-cluster.js';
import { digestFromWire, envelopesOf } from '../../src/gossip/sync.js';
import { LivenessFrame, SyncFrame, TopicMessage } from '../../src/gossip/wire.js';
import { MAX_ENVELOPES_PER_FRAME, WIRE_VERSION } from '../../src/gossip/constants.js';

export interface FuzzOptions {
  /** Messages to try (random and mutated). */
  readonly count: number;
  /** Seed of the deterministic generator (a failure is replayed with the same seed). */
  readonly seed?: number;
}

export interface FuzzResult {
  readonly tried: number;
  /** Per target: how many inputs reached it, and how many it accepted (only a corpus message again may be). */
  readonly targets: Readonly<Record<string, { readonly tried: number; readonly accepted: number }>>;
  /** Exceptions that escaped a target's own error handling (must be 0). */
  readonly escaped: readonly string[];
  /** Whether the node's state equals what it held before the fuzzing (must be true). */
  readonly stateUnchanged: boolean;
  readonly ms: number;
}

/** xorshift32: small, fast and reproducible. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function snapshot(state: ClusterSetState): string {
  return JSON.stringify({
    digest: state.digest(),
    floors: state.origins().map((o) => state.floorOf(o)),
    heartbeats: state.origins().map((o) => state.heartbeatOf(o)?.heartbeat.version),
  });
}

/** The generated codecs type their byte fields as plain ArrayBuffer views. */
const wire = (xs: readonly Uint8Array[]) => xs as Uint8Array<ArrayBuffer>[];

interface Corpus {
  readonly topic: Uint8Array[];
  readonly sync: Uint8Array[];
  readonly liveness: Uint8Array[];
  readonly envelopes: Uint8Array[];
}

async function corpusFor(clusterSet: string): Promise<{ corpus: Corpus; publisherKey: Uint8Array; peer: PeerId }> {
  const oldKey = await generateKeyPair('Ed25519');
  const key = await generateKeyPair('Ed25519');
  const old = new EnvelopeSigner(oldKey);
  const signer = new EnvelopeSigner(key);
  const records: ExportRecord[] = [];
  for (let i = 0; i < 12; i++) {
    records.push({
      origin: 'cluster-f',
      namespace: 'default',
      name: `svc-${i}`,
      version: { wallMs: 1_000_000 + i, logical: 0 },
      removed: i % 5 === 4,
      ...(i % 5 === 4 ? {} : { service: syntheticService(i, 1 + (i % 3)) }),
    } as ExportRecord);
  }
  const batched = signRecords(signer, records.slice(0, 8)).map((r) => r.proof!);
  const single = records.slice(8).map((r) => signRecords(signer, [r])[0]!.proof!);
  const heartbeat = signHeartbeat(signer, {
    heartbeat: {
      origin: 'cluster-f',
      incarnation: 7,
      version: { wallMs: 1_000_100, logical: 0 },
      floor: { wallMs: 1_000_000, logical: 0 },
    },
    recordCount: 12,
    maxVersion: { wallMs: 1_000_011, logical: 0 },
    recordsHash: 'ab'.repeat(8),
    addrs: ['/ip4/127.0.0.9/tcp/7946'],
  }).proof!;
  const binding = signBinding(signer, 'cluster-f', clusterSet, 1_000_000).proof;
  const rotation = signRotation(old, 'cluster-f', clusterSet, signer.publicKey, 999_000).proof;
  const envelopes = [rotation, binding, ...batched, ...single, heartbeat];
  const topic = [
    TopicMessage.encode({ version: WIRE_VERSION, envelopes: wire([rotation, binding]) }),
    TopicMessage.encode({ version: WIRE_VERSION, envelopes: wire(batched) }),
    TopicMessage.encode({ version: WIRE_VERSION, envelopes: wire([...single, heartbeat]) }),
  ];
  const digest = {
    origin: 'cluster-f',
    count: 12,
    maxWallMs: 1_000_011n,
    maxLogical: 0,
    hash: 'cd'.repeat(8),
    heartbeatWallMs: 1_000_100n,
    heartbeatLogical: 0,
    heartbeatAgeMs: 1500n,
  };
  const frame = (f: Partial<SyncFrame> & Pick<SyncFrame, 'type'>) =>
    SyncFrame.encode({
      version: WIRE_VERSION,
      digests: [],
      envelopes: [],
      buckets: [],
      pullMe: false,
      deflated: new Uint8Array(0),
      ...f,
    });
  const sync = [
    frame({ type: SyncFrame.Type.HELLO, digests: [digest] }),
    frame({ type: SyncFrame.Type.RECORDS, envelopes: wire(envelopes) }),
    frame({ type: SyncFrame.Type.DIGESTS, digests: [digest] }),
    frame({
      type: SyncFrame.Type.BUCKETS,
      buckets: [{ origin: 'cluster-f', buckets: [{ index: 3, count: 1, hash: 'ef' }] }],
    }),
    frame({ type: SyncFrame.Type.DONE, digests: [digest] }),
  ];
  const beat = {
    origin: 'cluster-f',
    incarnation: 7n,
    wallMs: 1_000_200n,
    logical: 0,
    ageMs: 10,
    recordCount: 12,
    softwareVersion: '',
    maxWallMs: 1_000_011n,
    maxLogical: 0,
    addrs: [],
    sameSummary: false,
    wallMsDelta: 0n,
    originRef: 0,
  };
  const liveness = [
    LivenessFrame.encode({ version: WIRE_VERSION, entries: [beat] }),
    // The packed encoding (liveness/1.1.0): a full entry, then a repeat of it by its place.
    LivenessFrame.encode({ version: WIRE_VERSION, entries: [beat], repeats: Uint8Array.from([1, 10, 100, 0]) }),
  ];
  return {
    corpus: { topic, sync, liveness, envelopes },
    publisherKey: signer.publicKey,
    peer: peerIdFromPrivateKey(await generateKeyPair('Ed25519')),
  };
}

/** One mutation of `input` (or fresh random bytes, or a splice with `other`). */
function mutate(input: Uint8Array, other: Uint8Array, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  const bytes = Uint8Array.from(input);
  switch (pick(9)) {
    case 0: {
      const out = new Uint8Array(1 + pick(600));
      for (let i = 0; i < out.length; i++) out[i] = pick(256);
      return out;
    }
    case 1: // bit flips
      for (let i = 0, n = 1 + pick(4); i < n && bytes.length > 0; i++) bytes[pick(bytes.length)]! ^= 1 << pick(8);
      return bytes;
    case 2: // a random byte
      if (bytes.length > 0) bytes[pick(bytes.length)] = pick(256);
      return bytes;
    case 3: // truncation
      return bytes.slice(0, pick(bytes.length + 1));
    case 4: {
      // insertion
      const at = pick(bytes.length + 1);
      const extra = new Uint8Array(1 + pick(8)).map(() => pick(256));
      return Uint8Array.from([...bytes.slice(0, at), ...extra, ...bytes.slice(at)]);
    }
    case 5: {
      // deletion
      const at = pick(bytes.length + 1);
      return Uint8Array.from([...bytes.slice(0, at), ...bytes.slice(at + 1 + pick(8))]);
    }
    case 6: // splice with another message
      return Uint8Array.from([...bytes.slice(0, pick(bytes.length + 1)), ...other.slice(pick(other.length + 1))]);
    case 7: {
      // a huge varint (length or count field overflow)
      const at = pick(bytes.length + 1);
      return Uint8Array.from([...bytes.slice(0, at), 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, ...bytes.slice(at)]);
    }
    default: // duplicated tail (repeated fields)
      return Uint8Array.from([...bytes, ...bytes.slice(pick(bytes.length + 1))]);
  }
}

export async function fuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now();
  const random = rng(options.seed ?? 1);
  const clusterSet = 'fuzz';
  const state = new ClusterSetState();
  const nodeKey = await generateKeyPair('Ed25519');
  // The node is never started: ingest, the validator's work, runs on its state alone.
  const node = new GossipNode({
    clusterId: 'cluster-me',
    clusterSetName: clusterSet,
    privateKey: nodeKey,
    psk: undefined,
    state,
    logger: pino({ level: 'silent' }),
  });
  const { corpus, publisherKey, peer } = await corpusFor(clusterSet);
  const host = {
    node: undefined as unknown as GossipLibp2p,
    topic: 't',
    self: 'cluster-me',
    now: () => 1_000_300,
    ttlMs: 30_000,
    flushDelayMs: 60_000,
    isMember: () => true,
    isBound: (o: string) => o === 'cluster-f',
    onBeat: () => undefined,
    metrics: new GossipMetrics(),
    log: pino({ level: 'silent' }),
  };
  const liveness = new LivenessExchange(host);
  // Everything valid is held first: a mutation that is accepted must be one of these statements again.
  for (const m of corpus.topic) {
    const r = node.ingest(TopicMessage.decode(m).envelopes, publisherKey, peer);
    if (r.reject !== undefined) throw new Error(`corpus topic message refused: ${r.reject}`);
  }
  await node.ingestFrame(corpus.envelopes, peer);
  const before = snapshot(state);

  const targets: Record<string, { tried: number; accepted: number }> = {};
  const count = (t: string, accepted: boolean) => {
    const c = (targets[t] ??= { tried: 0, accepted: 0 });
    c.tried++;
    if (accepted) c.accepted++;
  };
  const escaped: string[] = [];
  const guard = async (target: string, fn: () => boolean | Promise<boolean>) => {
    try {
      count(target, await fn());
    } catch (err) {
      // Decoders throw on malformed bytes: expected. Anything else must be one of our typed errors.
      const name = (err as Error).name;
      if (!['InvalidMessageError', 'InvalidSignatureError', 'RangeError', 'Error'].includes(name)) {
        escaped.push(`${target}: ${name}: ${(err as Error).message}`);
      }
      count(target, false);
    }
  };
  const all = [...corpus.topic, ...corpus.sync, ...corpus.liveness, ...corpus.envelopes];
  for (let i = 0; i < options.count; i++) {
    const family = i % 4;
    const pool =
      family === 0 ? corpus.topic : family === 1 ? corpus.sync : family === 2 ? corpus.liveness : corpus.envelopes;
    const input = mutate(pool[i % pool.length]!, all[Math.floor(random() * all.length)]!, random);
    if (family === 0) {
      // The gossipsub validator's path: decode, then ingest with the publisher's key.
      await guard('topic', () => {
        const m = TopicMessage.decode(input, { limits: { envelopes: MAX_ENVELOPES_PER_FRAME } });
        if (m.version !== WIRE_VERSION || m.envelopes.length === 0) return false;
        return node.ingest(m.envelopes, publisherKey, peer).reject === undefined;
      });
    } else if (family === 1) {
      await guard('sync', async () => {
        const f = SyncFrame.decode(input);
        for (const d of f.digests) digestFromWire(d);
        const envelopes = await envelopesOf(f);
        if (envelopes.length === 0) return false;
        return (await node.ingestFrame(envelopes, peer)).reject === undefined;
      });
    } else if (family === 2) {
      await guard('liveness', () => {
        const f = LivenessFrame.decode(input);
        // As a packed stream's first frame when it uses the packed fields, else as an unpacked one.
        const packed = f.repeats.length > 0 || f.entries.some((e) => e.originRef !== 0);
        return liveness.ingest(packed ? unpackEntries(f, new Map(), []) : f.entries, peer) > 0;
      });
    } else {
      await guard('envelope', () => node.ingest([input], undefined, peer).reject === undefined);
    }
  }
  liveness.stop();
  return {
    tried: options.count,
    targets,
    escaped,
    stateUnchanged: snapshot(state) === before,
    ms: Math.round(performance.now() - started),
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const at = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const count = Number(at('--count') ?? '100000');
  const seed = Number(at('--seed') ?? String(Date.now() % 0xffffffff));
  if (!Number.isSafeInteger(count) || count <= 0) {
    process.stderr.write('fuzzer: --count must be a positive integer\n');
    return 2;
  }
  const r = await fuzz({ count, seed });
  process.stdout.write(`fuzzed ${r.tried} messages (seed ${seed}) in ${r.ms} ms\n`);
  for (const [t, c] of Object.entries(r.targets))
    process.stdout.write(`  ${t}: ${c.tried} tried, ${c.accepted} accepted\n`);
  process.stdout.write(`escaped exceptions: ${r.escaped.length}; state unchanged: ${r.stateUnchanged}\n`);
  for (const e of r.escaped.slice(0, 10)) process.stdout.write(`  ${e}\n`);
  return r.escaped.length === 0 && r.stateUnchanged ? 0 : 1;
}

if (process.argv[1]?.endsWith('fuzzer.ts')) process.exitCode = await main(process.argv.slice(2));
