// This origin's records on the mesh: plans them from the desired exports, signs them (in batches), merges them and
// publishes them on the topic as coalesced deltas.
import { planOwnRecords, planOwnRecordsFor, serviceKey } from '../core/index.js';
import type { ExportedService, ExportRecord, ServiceKey } from '../core/index.js';
import { DEFAULT_DELTA_COALESCE_MS, TARGET_DELTA_BYTES, WIRE_VERSION } from './constants.js';
import type { GossipContext } from './context.js';
import { keyId, signRecords } from './envelope.js';
import type { EnvelopeSigner, EnvelopeVerifier } from './envelope.js';
import { InvalidMessageError } from './errors.js';
import { TopicMessage } from './wire.js';

export interface PublisherInit {
  readonly signer: EnvelopeSigner;
  readonly verifier: EnvelopeVerifier;
  /** The key id of the previous identity key after a key rotation: its records are issued again. */
  readonly previousKeyId?: string;
}

export class Publisher {
  readonly #ctx: GossipContext;
  readonly #signer: EnvelopeSigner;
  readonly #verifier: EnvelopeVerifier;
  readonly #previousKeyId: string | undefined;
  #desired: ReadonlyMap<ServiceKey, ExportedService> | undefined;
  /** Own envelopes waiting for the mesh: records by key (latest wins), plus the binding. */
  readonly #pending = new Map<string, Uint8Array>();
  #flushTimer: NodeJS.Timeout | undefined;
  #lastFlushAt = Number.NEGATIVE_INFINITY;

  constructor(ctx: GossipContext, init: PublisherInit) {
    this.#ctx = ctx;
    this.#signer = init.signer;
    this.#verifier = init.verifier;
    this.#previousKeyId = init.previousKeyId;
  }

  /** Whether the desired exports were set (published from listed caches): only then is anything known current. */
  hasDesired(): boolean {
    return this.#desired !== undefined;
  }

  /** Queues an own envelope that is not a record (the binding, a rotation) under its own key. */
  queue(key: string, envelope: Uint8Array): void {
    this.#pending.set(key, envelope);
  }

  /** See {@link GossipNode.setLocalExports}. */
  setDesired(desired: ReadonlyMap<ServiceKey, ExportedService>): ExportRecord[] {
    this.#desired = desired;
    return this.reconcile();
  }

  /** See {@link GossipNode.updateLocalExports}. */
  setDesiredKeys(desired: ReadonlyMap<ServiceKey, ExportedService>, keys: Iterable<ServiceKey>): ExportRecord[] {
    if (this.#desired === undefined) return this.setDesired(desired);
    this.#desired = desired;
    const { clusterId, clock, state } = this.#ctx;
    this.#ctx.own.seedClock();
    const plan = planOwnRecordsFor(
      clusterId,
      (key) => state.record(clusterId, key),
      desired,
      keys,
      () => clock.tick(this.#ctx.now()),
    );
    return plan.length === 0 ? [] : this.publishLocal(plan);
  }

  /** Plans, stamps and publishes what the desired exports need (nothing before they were set). */
  reconcile(): ExportRecord[] {
    if (this.#desired === undefined) return [];
    const { clusterId, clock, state } = this.#ctx;
    this.#ctx.own.seedClock();
    const tick = () => clock.tick(this.#ctx.now());
    const own = state.recordsOf(clusterId);
    const plan = planOwnRecords(clusterId, own, this.#desired, tick);
    // After a key rotation, every record still signed by the previous key is issued again under the new one (same
    // content, newer version), so no peer keeps a statement it will not relay once it follows the rotation.
    if (this.#previousKeyId !== undefined) {
      const planned = new Set(plan.map((r) => serviceKey(r.namespace, r.name)));
      for (const r of own) {
        if (planned.has(serviceKey(r.namespace, r.name)) || !this.#signedByPrevious(r)) continue;
        const { proof: _proof, version: _version, ...content } = r;
        plan.push({ ...content, version: tick() } as ExportRecord);
      }
    }
    return plan.length === 0 ? [] : this.publishLocal(plan);
  }

  /** See {@link GossipNode.publishLocal}. */
  publishLocal(records: readonly ExportRecord[]): ExportRecord[] {
    const { clusterId, clock, state, metrics } = this.#ctx;
    for (const r of records) {
      if (r.origin !== clusterId) throw new InvalidMessageError(`cannot publish a record of origin ${r.origin}`);
      clock.seed(r.version);
    }
    // Issued together, signed together: one signature per Merkle tree of up to MAX_SIGNED_BATCH records.
    const { applied } = state.merge(signRecords(this.#signer, records));
    for (const r of applied) this.#pending.set(serviceKey(r.namespace, r.name), r.proof ?? new Uint8Array());
    metrics.records.set(state.size);
    if (applied.length > 0) this.scheduleFlush(DEFAULT_DELTA_COALESCE_MS);
    return [...applied];
  }

  /**
   * Flushes the pending envelopes no sooner than `minIntervalMs` after the last flush: the first change after a quiet
   * period goes out in the next turn of the event loop (no delay added to an isolated change), later ones are
   * coalesced into one delta per interval while changes keep coming.
   */
  scheduleFlush(minIntervalMs: number): void {
    if (this.#flushTimer !== undefined || this.#pending.size === 0 || this.#ctx.stopping()) return;
    const wait = Math.max(0, this.#lastFlushAt + minIntervalMs - performance.now());
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#lastFlushAt = performance.now();
      void this.#flush();
    }, wait);
  }

  /** Publishes own envelopes on the topic; resolves with whether it went out. */
  async publish(envelopes: Uint8Array[], kind: 'delta' | 'heartbeat'): Promise<boolean> {
    const node = this.#ctx.libp2p();
    if (node === undefined) return false;
    const data = TopicMessage.encode({ version: WIRE_VERSION, envelopes: envelopes as Uint8Array<ArrayBuffer>[] });
    try {
      await node.services.pubsub.publish(this.#ctx.topic, data);
      this.#ctx.metrics.published.inc({ kind });
      this.#ctx.metrics.publishedBytes.inc(data.length);
      return true;
    } catch (err) {
      this.#ctx.log.debug({ err, kind }, 'publish failed');
      return false;
    }
  }

  stop(): void {
    clearTimeout(this.#flushTimer);
    // Unset too: a restart of the same node schedules flushes again.
    this.#flushTimer = undefined;
  }

  #signedByPrevious(r: ExportRecord): boolean {
    if (r.proof === undefined) return false;
    try {
      return keyId(this.#verifier.decode(r.proof).publicKey) === this.#previousKeyId;
    } catch {
      return false;
    }
  }

  async #flush(): Promise<void> {
    const node = this.#ctx.libp2p();
    if (node === undefined || this.#pending.size === 0) return;
    // A publish into an empty mesh is lost: wait for a subscriber (subscription-change reschedules us).
    if (node.services.pubsub.getSubscribers(this.#ctx.topic).length === 0) return;
    const batch = [...this.#pending.entries()];
    this.#pending.clear();
    let chunk: Uint8Array[] = [];
    let size = 0;
    const chunks: Uint8Array[][] = [];
    for (const [, env] of batch) {
      if (size + env.length > TARGET_DELTA_BYTES && chunk.length > 0) {
        chunks.push(chunk);
        chunk = [];
        size = 0;
      }
      chunk.push(env);
      size += env.length + 4;
    }
    if (chunk.length > 0) chunks.push(chunk);
    for (const envelopes of chunks) {
      const ok = await this.publish(envelopes, 'delta');
      if (!ok) {
        // Put back what did not go out (newer local changes made since win).
        for (const [k, env] of batch) if (!this.#pending.has(k)) this.#pending.set(k, env);
        this.scheduleFlush(1000);
        return;
      }
    }
  }
}
