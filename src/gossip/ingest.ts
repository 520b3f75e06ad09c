// Taking in what peers send: the topic validator, and the verification and application of batches of envelopes
// (topic messages, sync RECORDS frames). Nothing touches state before the whole batch is checked.
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { Message } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import { serviceKey } from '../core/index.js';
import type { ExportRecord, OriginHeartbeat } from '../core/index.js';
import {
  EnvelopeKind,
  MAX_ENVELOPES_PER_FRAME,
  MAX_TOPIC_MESSAGE_BYTES,
  MIN_WIRE_VERSION,
  REPLAY_WINDOW_MS,
  WIRE_VERSION,
} from './constants.js';
import type { GossipContext } from './context.js';
import { bindingOf, heartbeatOf, keyId, peerIdOfKey, recordOf } from './envelope.js';
import type { Binding, DecodedEnvelope, EnvelopeVerifier, HeartbeatInfo, OpenedEnvelope } from './envelope.js';
import { InvalidMessageError, InvalidSignatureError } from './errors.js';
import type { Beat } from './liveness.js';
import type { PeerVersions } from './peer-versions.js';
import type { Settledness } from './settledness.js';
import { sharedVerifyPool } from './verify-pool.js';
import { TopicMessage } from './wire.js';

/** Outcome of taking in one batch of envelopes. */
export interface IngestResult {
  /** Set when the batch must be rejected (nothing of it was applied). */
  readonly reject?: string;
  /** Envelopes that are replays (older than held by more than the replay window). */
  readonly replays: number;
  readonly applied: number;
  /** Bytes of the record envelopes in the batch (for repair accounting). */
  readonly recordBytes: number;
}

export interface IngestInit {
  readonly verifier: EnvelopeVerifier;
  readonly versions: PeerVersions;
  readonly settledness: Settledness;
  /** An origin's announced addresses (its peer is redialled through them). */
  readonly learnAddrs: (origin: string, addrs: readonly string[]) => void;
  /** A fresher signed heartbeat of another origin, for the liveness exchange to relay. */
  readonly relayBeat: (beat: Beat) => void;
  /** A heartbeat showed records we lack: pull from the peer that relayed it. */
  readonly gapSync: (from: PeerId) => void;
  /** Own records came back from a peer: plan own records again, above them. */
  readonly reconcileOwn: () => void;
  /**
   * How the validator and sync frames take in a batch: GossipNode.ingest (which calls {@link Ingest.ingest}), so a
   * replaced `GossipNode.ingest` (tests inject internal faults that way) sees every batch.
   */
  readonly viaNode: (
    envelopes: readonly Uint8Array[],
    publisherKey: Uint8Array | undefined,
    from?: PeerId,
    opened?: readonly (OpenedEnvelope | Error)[],
  ) => IngestResult;
}

type Kind = 'record' | 'heartbeat' | 'binding';
const KIND_NAME: Record<number, Kind> = { 1: 'record', 2: 'heartbeat', 3: 'binding' };

export class Ingest {
  readonly #ctx: GossipContext;
  readonly #init: IngestInit;
  readonly #verifier: EnvelopeVerifier;
  readonly #verifyPool = sharedVerifyPool();
  /** Sync frames are verified in parallel but applied one after another, in the order they arrived. */
  #applyChain: Promise<unknown> = Promise.resolve();

  constructor(ctx: GossipContext, init: IngestInit) {
    this.#ctx = ctx;
    this.#init = init;
    this.#verifier = init.verifier;
  }

  /** The gossipsub topic validator. */
  validateTopicMessage(from: PeerId, msg: Message): TopicValidatorResult {
    try {
      if (msg.type !== 'signed') return this.#topicResult(TopicValidatorResult.Reject, from, 'unsigned message');
      if (msg.data.length > MAX_TOPIC_MESSAGE_BYTES) {
        return this.#topicResult(TopicValidatorResult.Reject, from, 'message too large');
      }
      let decoded: TopicMessage;
      try {
        decoded = TopicMessage.decode(msg.data, { limits: { envelopes: MAX_ENVELOPES_PER_FRAME } });
      } catch {
        return this.#topicResult(TopicValidatorResult.Reject, from, 'message does not decode');
      }
      if (this.#init.versions.isIncompatible(from.toString())) {
        return this.#topicResult(TopicValidatorResult.Ignore, from, 'incompatible peer');
      }
      if (decoded.version < MIN_WIRE_VERSION || decoded.version > WIRE_VERSION || decoded.envelopes.length === 0) {
        return this.#topicResult(TopicValidatorResult.Reject, from, 'bad message version');
      }
      // Honest reordering stays within the replay window; anything older is a replay: refused (nothing of it
      // merged) and the relay scored down.
      const result = this.#init.viaNode(decoded.envelopes, msg.key.raw, from);
      if (result.reject !== undefined) return this.#topicResult(TopicValidatorResult.Reject, from, result.reject);
      return this.#topicResult(TopicValidatorResult.Accept, from);
    } catch (err) {
      // Never crash on input. An unexpected failure is ours, not the relay's: ignore the message (not relayed, no
      // penalty) instead of rejecting it, which would score an honest relay down.
      this.#ctx.metrics.ingestErrors.inc();
      this.#ctx.log.error({ err, peer: from.toString() }, 'topic message failed (internal error)');
      return this.#topicResult(TopicValidatorResult.Ignore, from, 'internal error');
    }
  }

  /** See {@link GossipNode.ingest}. */
  ingest(
    envelopes: readonly Uint8Array[],
    publisherKey: Uint8Array | undefined,
    from?: PeerId,
    opened?: readonly (OpenedEnvelope | Error)[],
  ): IngestResult {
    const { clusterId, clusterSetName, state, bindings, metrics, log } = this.#ctx;
    const records: ExportRecord[] = [];
    const heartbeats: HeartbeatInfo[] = [];
    let recordBytes = 0;
    const publisher = publisherKey === undefined ? undefined : keyId(publisherKey);
    for (const [i, bytes] of envelopes.entries()) {
      let kind: Kind = 'record';
      try {
        const pre = opened?.[i];
        if (pre instanceof Error) throw pre;
        const env = pre ?? this.#verifier.open(bytes);
        kind = KIND_NAME[env.kind] ?? 'record';
        // A key rotation is signed by the key it hands over from: on the topic it rides with its new key's messages.
        const rotation = env.kind === EnvelopeKind.binding ? bindingOf(env) : undefined;
        if (rotation?.rotatesTo !== undefined) {
          if (rotation.clusterSet !== clusterSetName) {
            return this.#rejectBatch(kind, 'invalid', 'rotation for another ClusterSet');
          }
          if (publisher !== undefined && keyId(rotation.rotatesTo) !== publisher) {
            return this.#rejectBatch(kind, 'invalid', 'rotation to a key other than the publisher');
          }
          this.#applyRotation(rotation, from);
          continue;
        }
        if (publisher !== undefined && keyId(env.publicKey) !== publisher) {
          return this.#rejectBatch(kind, 'invalid', 'envelope not signed by the publisher');
        }
        let origin: string;
        let record: ExportRecord | undefined;
        let heartbeat: HeartbeatInfo | undefined;
        if (env.kind === EnvelopeKind.record) {
          record = recordOf(env);
          origin = record.origin;
        } else if (env.kind === EnvelopeKind.heartbeat) {
          heartbeat = heartbeatOf(env);
          origin = heartbeat.heartbeat.origin;
        } else {
          const b = bindingOf(env);
          if (b.clusterSet !== clusterSetName) {
            return this.#rejectBatch(kind, 'invalid', 'binding for another ClusterSet');
          }
          origin = b.clusterId;
        }
        const check = bindings.check(origin, env.publicKey);
        if (!check.ok && check.superseded && publisher === undefined) {
          // Signed by a key the cluster rotated away from: a relay's old copy, replaced by what the new key issues.
          metrics.envelopes.inc({ kind, result: 'superseded_key' });
          continue;
        }
        if (!check.ok) {
          metrics.bindingConflicts.inc({ cluster_id: origin });
          log.warn(
            {
              clusterId: origin,
              boundTo: check.boundTo,
              claimedBy: peerIdOfKey(env.publicKey).toString(),
              peer: from?.toString(),
            },
            'refused a second PeerId claiming a bound cluster id',
          );
          // A publisher speaking for someone else's cluster id is at fault; a relay (sync) may just have bound the
          // id differently: skip that statement and keep the rest.
          if (publisher !== undefined) return this.#rejectBatch(kind, 'binding_conflict', 'binding conflict');
          metrics.envelopes.inc({ kind, result: 'binding_conflict' });
          continue;
        }
        if (record !== undefined) {
          records.push(record);
          recordBytes += bytes.length;
        }
        if (heartbeat !== undefined) heartbeats.push(heartbeat);
        if (env.kind === EnvelopeKind.binding) bindings.remember(bindingOf(env));
      } catch (err) {
        if (err instanceof InvalidSignatureError) return this.#rejectBatch(kind, 'bad_signature', err.message);
        if (err instanceof InvalidMessageError) return this.#rejectBatch(kind, 'invalid', err.message);
        throw err;
      }
    }
    const now = this.#ctx.now();
    // Replays are judged before anything touches state: a replayed topic message is refused whole, not after its
    // other statements were merged. (Anti-entropy may legitimately carry old records: there they are only counted.)
    let replays = 0;
    for (const r of records) {
      const held = state.record(r.origin, serviceKey(r.namespace, r.name));
      if (held !== undefined && held.version.wallMs - r.version.wallMs > REPLAY_WINDOW_MS) replays++;
    }
    for (const info of heartbeats) {
      // Anti-entropy relays the heartbeat that carried an origin's floor, however old: not a replay there.
      if (publisher === undefined && info.heartbeat.floor !== undefined) continue;
      const held = state.heartbeatOf(info.heartbeat.origin)?.heartbeat.version;
      if (held !== undefined && held.wallMs - info.heartbeat.version.wallMs > REPLAY_WINDOW_MS) replays++;
    }
    if (replays > 0) {
      metrics.replays.inc(replays);
      metrics.envelopes.inc({ kind: 'record', result: 'replay' }, replays);
      if (publisher !== undefined) return { reject: 'replayed message', replays, applied: 0, recordBytes };
    }
    const merged = state.merge(records);
    const sizeBeforeBeats = state.size;
    metrics.envelopes.inc({ kind: 'record', result: 'accepted' }, merged.applied.length);
    metrics.envelopes.inc({ kind: 'record', result: 'stale' }, merged.stale);
    if (merged.invalid > 0) metrics.envelopes.inc({ kind: 'record', result: 'invalid' }, merged.invalid);
    let gapFrom = false;
    let ownChanged = false;
    const remote: ExportRecord[] = [];
    for (const r of merged.applied) {
      if (r.origin === clusterId) ownChanged = true;
      else remote.push(r);
    }
    const { settledness, versions } = this.#init;
    for (const info of heartbeats) {
      const hb: OriginHeartbeat = info.heartbeat;
      if (hb.origin !== clusterId) this.#init.learnAddrs(hb.origin, info.addrs);
      if (state.observeHeartbeat(hb, now)) {
        // Only a fresher heartbeat says which version the origin runs now (an old one, relayed late, would roll it
        // back); a signed heartbeat always carries the version of a node that announces one: none means none.
        if (hb.origin !== clusterId) versions.announced(hb.origin, info.software);
        metrics.envelopes.inc({ kind: 'heartbeat', result: 'accepted' });
        if (hb.origin === clusterId) {
          this.#ctx.clock.seed(hb.version);
          continue;
        }
        this.#init.relayBeat({
          origin: hb.origin,
          incarnation: hb.incarnation,
          version: hb.version,
          beatAtMs: now,
          recordCount: info.recordCount,
          maxVersion: info.maxVersion,
          addrs: info.addrs,
        });
        this.#ctx.emit('heartbeat', { origin: hb.origin, incarnation: hb.incarnation });
        if (settledness.hasGap(hb.origin, info.recordCount, info.maxVersion, info.recordsHash)) gapFrom = true;
        else settledness.settleIfComplete(hb.origin, info.recordCount, info.maxVersion, info.recordsHash);
      } else {
        metrics.envelopes.inc({ kind: 'heartbeat', result: 'stale' });
      }
    }
    if (ownChanged) {
      // Our own records came back from a peer (after a restart): continue above them, and re-issue what differs.
      this.#ctx.own.seedClock();
      this.#init.reconcileOwn();
    }
    // A heartbeat's floor (collected tombstones, or a leave) may have dropped records.
    const floorDropped = state.size < sizeBeforeBeats;
    metrics.records.set(state.size);
    if (remote.length > 0 || floorDropped) this.#ctx.emit('state:change', { records: remote });
    if (gapFrom && from !== undefined) this.#init.gapSync(from);
    return { replays, applied: merged.applied.length, recordBytes };
  }

  /** See {@link GossipNode.ingestFrame}. */
  ingestFrame(envelopes: readonly Uint8Array[], from: PeerId): Promise<IngestResult> {
    const opened: (OpenedEnvelope | Error | undefined)[] = [];
    const decoded: DecodedEnvelope[] = [];
    const at: number[] = [];
    for (const [i, bytes] of envelopes.entries()) {
      try {
        decoded.push(this.#verifier.decode(bytes));
        at.push(i);
        opened.push(undefined);
      } catch (err) {
        opened.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    const verified = this.#verifyPool.verify(decoded, this.#verifier).then((ok) => {
      for (const [j, i] of at.entries()) {
        opened[i] = ok[j] === true ? decoded[j]! : new InvalidSignatureError('signature does not verify');
      }
    });
    const applied = Promise.all([verified, this.#applyChain]).then(() =>
      this.#init.viaNode(envelopes, undefined, from, opened as (OpenedEnvelope | Error)[]),
    );
    this.#applyChain = applied.catch(() => undefined);
    return applied;
  }

  #topicResult(result: TopicValidatorResult, from: PeerId, reason?: string): TopicValidatorResult {
    this.#ctx.metrics.topicMessages.inc({ result });
    if (reason !== undefined) this.#ctx.log.debug({ peer: from.toString(), reason }, 'topic message rejected');
    return result;
  }

  #applyRotation(rotation: Binding, from: PeerId | undefined): void {
    const result = this.#ctx.bindings.rotate(rotation);
    this.#ctx.metrics.envelopes.inc({ kind: 'binding', result: `rotation_${result}` });
    if (result === 'rotated') {
      this.#ctx.log.warn(
        {
          clusterId: rotation.clusterId,
          from: peerIdOfKey(rotation.publicKey).toString(),
          to: peerIdOfKey(rotation.rotatesTo!).toString(),
          peer: from?.toString(),
        },
        'a cluster rotated its identity key',
      );
    } else if (result === 'refused') {
      this.#ctx.metrics.bindingConflicts.inc({ cluster_id: rotation.clusterId });
      this.#ctx.log.warn(
        { clusterId: rotation.clusterId, signedBy: peerIdOfKey(rotation.publicKey).toString(), peer: from?.toString() },
        'refused a key rotation signed by a key that does not speak for the cluster id',
      );
    }
  }

  #rejectBatch(kind: Kind, result: string, reason: string): IngestResult {
    this.#ctx.metrics.envelopes.inc({ kind, result });
    return { reject: reason, replays: 0, applied: 0, recordBytes: 0 };
  }
}
