// Signed envelopes: every record, heartbeat and binding is signed by the libp2p key of the cluster that made it, and
// the envelope bytes travel unchanged (relays and anti-entropy forward the `proof` the core keeps), so nobody but the
// origin can forge or alter what it says. Signing and verification use node:crypto directly (Ed25519, ~45 µs /
// ~120 µs here) with public-key objects cached, since verification dominates the cost of a full-state sync. Records
// issued together are signed as one Merkle tree (merkle.ts): one signature per batch, a hash path per record.
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import type { ExportRecord } from '../core/export-record.js';
import type { OriginHeartbeat } from '../core/heartbeat.js';
import { compareHlc } from '../core/hlc.js';
import type { Hlc } from '../core/hlc.js';
import {
  EnvelopeKind,
  MAX_ADDRS_PER_HEARTBEAT,
  MAX_ENVELOPE_BYTES,
  MAX_ID_LENGTH,
  SIGNATURE_DOMAIN,
} from './constants.js';
import { InvalidMessageError, InvalidSignatureError } from './errors.js';
import { MERKLE_HASH_BYTES, merkleDepth, merkleLeaf, merkleRoot, merkleTree } from './merkle.js';
import { parseExportedService } from './service-schema.js';
import { isSoftwareVersion } from './versioning.js';
import { BindingPayload, HeartbeatPayload, RecordPayload, SignedEnvelope } from './wire.js';

const DOMAIN = new TextEncoder().encode(SIGNATURE_DOMAIN);
const UTF8 = new TextDecoder();
const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
/** The `kind` byte of the message a batch signature covers (DOMAIN || 0 || root): no envelope has kind 0. */
const MERKLE_ROOT_KIND = 0;
/** Where the root starts in the message a batch signature covers. */
const ROOT_AT = DOMAIN.length + 1;
/** Most statements one Merkle signature covers: a path of ≤ 6 hashes (192 bytes) per statement. */
export const MAX_SIGNED_BATCH = 64;
/** The deepest path a verifier accepts: what a signer makes, nothing more (a deeper one only costs hashing). */
const MAX_PATH_HASHES = merkleDepth(MAX_SIGNED_BATCH);

function signedBytes(kind: number, payload: Uint8Array): Uint8Array {
  // allocUnsafe takes small buffers from Node's shared pool: a new ArrayBuffer per envelope made a 10,000-record sync
  // spend most of its time allocating (every byte is overwritten below).
  const out = Buffer.allocUnsafe(DOMAIN.length + 1 + payload.length);
  out.set(DOMAIN, 0);
  out[DOMAIN.length] = kind;
  out.set(payload, DOMAIN.length + 1);
  return out;
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** Hex of a raw public key: the identity the binding registry compares. */
export const keyId = (publicKey: Uint8Array): string => Buffer.from(publicKey).toString('hex');

/** PeerId of a raw Ed25519 public key. */
export function peerIdOfKey(publicKey: Uint8Array): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey));
}

/** Signs payloads as one cluster. */
export class EnvelopeSigner {
  readonly publicKey: Uint8Array;
  readonly #key: KeyObject;

  constructor(privateKey: Ed25519PrivateKey) {
    this.publicKey = privateKey.publicKey.raw;
    this.#key = createPrivateKey({
      format: 'jwk',
      key: { kty: 'OKP', crv: 'Ed25519', d: b64u(privateKey.raw.subarray(0, 32)), x: b64u(this.publicKey) },
    });
  }

  /** The encoded SignedEnvelope of `payload`. */
  seal(kind: EnvelopeKind, payload: Uint8Array): Uint8Array {
    const signature = nodeSign(null, signedBytes(kind, payload), this.#key);
    return this.#envelope(kind, payload, signature, new Uint8Array(0), 0);
  }

  /**
   * The encoded SignedEnvelopes of `payloads`, signed together: one Merkle tree (one signature) per
   * MAX_SIGNED_BATCH payloads. A batch of one is sealed alone.
   */
  sealBatch(kind: EnvelopeKind, payloads: readonly Uint8Array[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let at = 0; at < payloads.length; at += MAX_SIGNED_BATCH) {
      const batch = payloads.slice(at, at + MAX_SIGNED_BATCH);
      if (batch.length === 1) {
        out.push(this.seal(kind, batch[0]!));
        continue;
      }
      const leaves = batch.map((p) => merkleLeaf(signedBytes(kind, p)));
      // Two equal leaves at sibling positions would let anyone swap their indexes: a second proof of one statement.
      if (new Set(leaves.map((l) => l.toString('hex'))).size !== leaves.length) {
        throw new RangeError('a signed batch holds the same statement twice');
      }
      const { root, paths } = merkleTree(leaves);
      const signature = nodeSign(null, signedBytes(MERKLE_ROOT_KIND, root), this.#key);
      for (const [i, p] of batch.entries()) out.push(this.#envelope(kind, p, signature, paths[i]!, i));
    }
    return out;
  }

  #envelope(kind: EnvelopeKind, payload: Uint8Array, signature: Uint8Array, path: Uint8Array, index: number) {
    return SignedEnvelope.encode({
      kind,
      payload: payload as Uint8Array<ArrayBuffer>,
      publicKey: this.publicKey as Uint8Array<ArrayBuffer>,
      signature: new Uint8Array(signature),
      merklePath: path as Uint8Array<ArrayBuffer>,
      merkleIndex: index,
    });
  }
}

/** An envelope whose signature verified. */
export interface OpenedEnvelope {
  readonly kind: EnvelopeKind;
  readonly payload: Uint8Array;
  /** Raw Ed25519 public key of the signer. */
  readonly publicKey: Uint8Array;
  /** The envelope exactly as received: what is stored as `proof` and forwarded. */
  readonly bytes: Uint8Array;
}

/** A decoded envelope whose signature is not checked yet, with the exact bytes the signature covers. */
export interface DecodedEnvelope extends OpenedEnvelope {
  readonly signature: Uint8Array;
  /** What the signature covers: DOMAIN || kind || payload, or DOMAIN || 0 || Merkle root for a batch-signed one. */
  readonly message: Uint8Array;
  /** Batch-signed: many envelopes share this signature and message, so a verified one is remembered. */
  readonly batched: boolean;
}

/** Distinct Merkle signatures an EnvelopeVerifier remembers as verified (a few per origin batch; cleared when full). */
const MAX_REMEMBERED_ROOTS = 4096;

/**
 * Verifies envelopes, caching the public-key objects of the (few) clusters of a ClusterSet and the Merkle signatures
 * already verified (exactly: key, signature and signed root), so the records of one batch cost one Ed25519 check.
 */
export class EnvelopeVerifier {
  readonly #keys = new Map<string, KeyObject>();
  readonly #maxKeys: number;
  readonly #verifiedRoots = new Set<string>();

  constructor(maxKeys = 4096) {
    this.#maxKeys = maxKeys;
  }

  /**
   * The identity of a batch signature: key, signature and the signed root (`undefined` if not batched). Derived from
   * the envelope each time it is asked for, so it always names what the signature covers; callers compute it once
   * per envelope and pass it to {@link EnvelopeVerifier.isKnownGood} and {@link EnvelopeVerifier.rememberGood}.
   */
  static rootId(env: DecodedEnvelope): string | undefined {
    if (!env.batched) return undefined;
    // The message is DOMAIN || 0 || root: the root alone names it.
    const root = Buffer.from(env.message.buffer, env.message.byteOffset + ROOT_AT, env.message.byteLength - ROOT_AT);
    return `${keyId(env.publicKey)}:${Buffer.from(env.signature).toString('hex')}:${root.toString('hex')}`;
  }

  /** Whether this exact batch signature (a {@link EnvelopeVerifier.rootId}) was verified before. */
  isKnownGood(rootId: string | undefined): boolean {
    return rootId !== undefined && this.#verifiedRoots.has(rootId);
  }

  /** Remembers a batch signature (a {@link EnvelopeVerifier.rootId}) that verified. */
  rememberGood(rootId: string | undefined): void {
    if (rootId === undefined) return;
    if (this.#verifiedRoots.size >= MAX_REMEMBERED_ROOTS) this.#verifiedRoots.clear();
    this.#verifiedRoots.add(rootId);
  }

  /** Decodes and verifies; throws InvalidMessageError (shape) or InvalidSignatureError (signature). */
  open(bytes: Uint8Array): OpenedEnvelope {
    return this.verify(this.decode(bytes));
  }

  /**
   * Decodes and checks the shape (size, canonical encoding, kind, key and signature lengths), not the signature:
   * the first half of {@link EnvelopeVerifier.open}, so signatures can be checked elsewhere (a VerifyPool).
   */
  decode(bytes: Uint8Array): DecodedEnvelope {
    if (bytes.length > MAX_ENVELOPE_BYTES) throw new InvalidMessageError('envelope too large');
    let env: SignedEnvelope;
    try {
      env = SignedEnvelope.decode(bytes);
    } catch (err) {
      throw new InvalidMessageError(`envelope does not decode: ${(err as Error).message}`);
    }
    // One encoding per statement: unknown fields or reordered bytes would give one signed statement many `proof`s.
    if (Buffer.compare(SignedEnvelope.encode(env), bytes) !== 0)
      throw new InvalidMessageError('non-canonical envelope');
    if (env.kind !== EnvelopeKind.record && env.kind !== EnvelopeKind.heartbeat && env.kind !== EnvelopeKind.binding) {
      throw new InvalidMessageError(`unknown envelope kind ${env.kind}`);
    }
    if (env.publicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new InvalidSignatureError('missing or bad signer key');
    if (env.signature.length !== ED25519_SIGNATURE_BYTES) throw new InvalidSignatureError('missing or bad signature');
    const statement = signedBytes(env.kind, env.payload);
    const path = env.merklePath;
    const batched = path.length > 0;
    if (!batched) {
      // Canonical encoding keeps a non-zero index, so a plain envelope must not carry one.
      if (env.merkleIndex !== 0) throw new InvalidMessageError('Merkle index without a path');
    } else {
      // Only records are signed in batches; heartbeats and bindings are signed one by one.
      if (env.kind !== EnvelopeKind.record)
        throw new InvalidMessageError('Merkle path on a statement that is not a record');
      const depth = path.length / MERKLE_HASH_BYTES;
      if (!Number.isInteger(depth) || depth > MAX_PATH_HASHES) throw new InvalidMessageError('bad Merkle path');
      if (env.merkleIndex >= 2 ** depth) throw new InvalidMessageError('Merkle index beyond the tree');
    }
    return {
      kind: env.kind,
      payload: env.payload,
      publicKey: env.publicKey,
      bytes,
      signature: env.signature,
      message: batched
        ? signedBytes(MERKLE_ROOT_KIND, merkleRoot(merkleLeaf(statement), path, env.merkleIndex))
        : statement,
      batched,
    };
  }

  /** Checks the signature of a decoded envelope; throws InvalidSignatureError. */
  verify(env: DecodedEnvelope): OpenedEnvelope {
    const rootId = EnvelopeVerifier.rootId(env);
    if (!this.isKnownGood(rootId)) {
      const key = this.#keyObject(env.publicKey);
      let ok: boolean;
      try {
        ok = nodeVerify(null, env.message, key, env.signature);
      } catch {
        ok = false;
      }
      if (!ok) throw new InvalidSignatureError('signature does not verify');
      this.rememberGood(rootId);
    }
    return { kind: env.kind, payload: env.payload, publicKey: env.publicKey, bytes: env.bytes };
  }

  #keyObject(raw: Uint8Array): KeyObject {
    const id = keyId(raw);
    let key = this.#keys.get(id);
    if (key === undefined) {
      try {
        key = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64u(raw) } });
      } catch {
        throw new InvalidSignatureError('bad signer key');
      }
      if (this.#keys.size >= this.#maxKeys) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key;
  }
}

function checkId(v: string, what: string): string {
  if (v.length === 0 || v.length > MAX_ID_LENGTH) throw new InvalidMessageError(`bad ${what}`);
  return v;
}

function hlcOf(wallMs: bigint, logical: number): Hlc {
  if (wallMs > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidMessageError('version out of range');
  return { wallMs: Number(wallMs), logical };
}

// ---- records

/** The signed payload of a record (everything but the proof). */
export function encodeRecordPayload(r: ExportRecord): Uint8Array {
  return RecordPayload.encode({
    origin: r.origin,
    namespace: r.namespace,
    name: r.name,
    wallMs: BigInt(r.version.wallMs),
    logical: r.version.logical,
    removed: r.removed,
    service: r.service === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(r.service)),
  });
}

/** Signs a record: the result carries its envelope in `proof`. */
export function signRecord(signer: EnvelopeSigner, r: ExportRecord): ExportRecord {
  const { proof: _drop, ...rest } = r;
  return { ...rest, proof: signer.seal(EnvelopeKind.record, encodeRecordPayload(rest)) };
}

/** Signs records issued together (Merkle trees of ≤ MAX_SIGNED_BATCH): each result carries its envelope in `proof`. */
export function signRecords(signer: EnvelopeSigner, records: readonly ExportRecord[]): ExportRecord[] {
  const bare = records.map(({ proof: _drop, ...rest }) => rest);
  const proofs = signer.sealBatch(EnvelopeKind.record, bare.map(encodeRecordPayload));
  return bare.map((r, i) => ({ ...r, proof: proofs[i]! }));
}

/** The record an opened record envelope states, with the envelope as proof; throws InvalidMessageError. */
export function recordOf(env: OpenedEnvelope): ExportRecord {
  let p: RecordPayload;
  try {
    p = RecordPayload.decode(env.payload);
  } catch (err) {
    throw new InvalidMessageError(`record does not decode: ${(err as Error).message}`);
  }
  const base = {
    origin: checkId(p.origin, 'origin'),
    namespace: checkId(p.namespace, 'namespace'),
    name: checkId(p.name, 'name'),
    version: hlcOf(p.wallMs, p.logical),
    proof: env.bytes,
  };
  if (base.namespace.includes('/')) throw new InvalidMessageError('bad namespace');
  if (p.removed) {
    if (p.service.length > 0) throw new InvalidMessageError('tombstone with a service');
    return { ...base, removed: true };
  }
  if (p.service.length === 0) throw new InvalidMessageError('live record without a service');
  return { ...base, removed: false, service: parseExportedService(UTF8.decode(p.service)) };
}

// ---- heartbeats

/** A heartbeat with what the gossip layer adds: the origin's own-record summary and its addresses. */
export interface HeartbeatInfo {
  readonly heartbeat: OriginHeartbeat;
  readonly recordCount: number;
  readonly maxVersion: Hlc;
  readonly recordsHash: string;
  readonly addrs: readonly string[];
  /** The origin's software version (docs/upgrades.md); absent from nodes before 0.2.0. */
  readonly software?: string;
}

export function signHeartbeat(
  signer: EnvelopeSigner,
  info: Omit<HeartbeatInfo, 'heartbeat'> & { heartbeat: Omit<OriginHeartbeat, 'proof'> },
): OriginHeartbeat {
  const hb = info.heartbeat;
  const payload = HeartbeatPayload.encode({
    origin: hb.origin,
    incarnation: BigInt(hb.incarnation),
    wallMs: BigInt(hb.version.wallMs),
    logical: hb.version.logical,
    recordCount: info.recordCount,
    maxWallMs: BigInt(info.maxVersion.wallMs),
    maxLogical: info.maxVersion.logical,
    recordsHash: info.recordsHash,
    addrs: [...info.addrs],
    ...(info.software === undefined ? {} : { softwareVersion: info.software }),
    ...(hb.floor === undefined ? {} : { floorWallMs: BigInt(hb.floor.wallMs), floorLogical: hb.floor.logical }),
    ...(hb.left === true ? { left: true } : {}),
  });
  return {
    origin: hb.origin,
    incarnation: hb.incarnation,
    version: hb.version,
    ...(hb.floor === undefined ? {} : { floor: hb.floor }),
    ...(hb.left === true ? { left: true } : {}),
    proof: signer.seal(EnvelopeKind.heartbeat, payload),
  };
}

export function heartbeatOf(env: OpenedEnvelope): HeartbeatInfo {
  let p: HeartbeatPayload;
  try {
    p = HeartbeatPayload.decode(env.payload, { limits: { addrs: MAX_ADDRS_PER_HEARTBEAT } });
  } catch (err) {
    throw new InvalidMessageError(`heartbeat does not decode: ${(err as Error).message}`);
  }
  if (p.incarnation > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidMessageError('incarnation out of range');
  if (p.recordsHash.length > 64) throw new InvalidMessageError('bad records hash');
  for (const a of p.addrs) if (a.length > 512) throw new InvalidMessageError('bad address');
  if ((p.floorWallMs === undefined) !== (p.floorLogical === undefined)) throw new InvalidMessageError('bad floor');
  if (p.left === false) throw new InvalidMessageError('non-canonical left flag'); // absent when false
  const version = hlcOf(p.wallMs, p.logical);
  const floor = p.floorWallMs === undefined ? undefined : hlcOf(p.floorWallMs, p.floorLogical ?? 0);
  if (floor !== undefined && compareHlc(floor, version) > 0) throw new InvalidMessageError('floor above the heartbeat');
  if (p.left === true && floor === undefined) throw new InvalidMessageError('a leave without a floor');
  return {
    heartbeat: {
      origin: checkId(p.origin, 'origin'),
      incarnation: Number(p.incarnation),
      version,
      ...(floor === undefined ? {} : { floor }),
      ...(p.left === true ? { left: true } : {}),
      proof: env.bytes,
    },
    recordCount: p.recordCount,
    maxVersion: hlcOf(p.maxWallMs, p.maxLogical),
    recordsHash: p.recordsHash,
    addrs: p.addrs,
    // Shown, never acted on beyond display: a version this build cannot parse (a later format) is left out, and
    // the heartbeat still counts (refusing it would cut liveness across exactly the skew upgrades go through).
    ...(p.softwareVersion !== undefined && isSoftwareVersion(p.softwareVersion) ? { software: p.softwareVersion } : {}),
  };
}

// ---- bindings

/** "Cluster id `clusterId` is the signer's PeerId in ClusterSet `clusterSet`." */
export interface Binding {
  readonly clusterId: string;
  readonly clusterSet: string;
  readonly issuedAtMs: number;
  readonly publicKey: Uint8Array;
  /** A key rotation: signed by the old key (`publicKey`), the cluster id's key is now this one. */
  readonly rotatesTo?: Uint8Array;
  readonly proof: Uint8Array;
}

/** A rotation: the cluster's old key (the signer) hands its cluster id to `newKey` (raw Ed25519 public key). */
export function signRotation(
  oldSigner: EnvelopeSigner,
  clusterId: string,
  clusterSet: string,
  newKey: Uint8Array,
  issuedAtMs: number,
): Binding {
  const payload = BindingPayload.encode({
    clusterId,
    clusterSet,
    issuedAtMs: BigInt(issuedAtMs),
    rotatesTo: new Uint8Array(newKey),
  });
  return {
    clusterId,
    clusterSet,
    issuedAtMs,
    publicKey: oldSigner.publicKey,
    rotatesTo: newKey,
    proof: oldSigner.seal(EnvelopeKind.binding, payload),
  };
}

export function signBinding(
  signer: EnvelopeSigner,
  clusterId: string,
  clusterSet: string,
  issuedAtMs: number,
): Binding {
  const payload = BindingPayload.encode({ clusterId, clusterSet, issuedAtMs: BigInt(issuedAtMs) });
  return {
    clusterId,
    clusterSet,
    issuedAtMs,
    publicKey: signer.publicKey,
    proof: signer.seal(EnvelopeKind.binding, payload),
  };
}

export function bindingOf(env: OpenedEnvelope): Binding {
  let p: BindingPayload;
  try {
    p = BindingPayload.decode(env.payload);
  } catch (err) {
    throw new InvalidMessageError(`binding does not decode: ${(err as Error).message}`);
  }
  const rotatesTo = p.rotatesTo;
  if (rotatesTo !== undefined) {
    if (rotatesTo.length !== ED25519_PUBLIC_KEY_BYTES) throw new InvalidMessageError('bad rotation key');
    if (Buffer.compare(rotatesTo, env.publicKey) === 0) throw new InvalidMessageError('a rotation to the same key');
  }
  return {
    clusterId: checkId(p.clusterId, 'cluster id'),
    clusterSet: checkId(p.clusterSet, 'cluster set'),
    issuedAtMs: hlcOf(p.issuedAtMs, 0).wallMs,
    publicKey: env.publicKey,
    ...(rotatesTo === undefined ? {} : { rotatesTo }),
    proof: env.bytes,
  };
}
