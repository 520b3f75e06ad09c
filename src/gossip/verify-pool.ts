// Ed25519 verification of large batches (full-state syncs) in worker threads (one per core, at most 4): ~60–200 µs per
// signature is most of what a bootstrap of thousands of records signed one by one costs, and on the event loop it would
// stall everything else for seconds. Records signed together (one Merkle tree) need one check between them, done once
// per call and remembered by the caller's verifier. Small batches (topic messages, frames of a few trees) are verified
// inline: a round trip to a worker costs more than they do.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { EnvelopeVerifier } from './envelope.js';
import type { DecodedEnvelope } from './envelope.js';

/** Time a worker gets for one batch before the batch is verified inline instead. */
const WORKER_TIMEOUT_MS = 30_000;

/** Batches below this size are verified on the calling thread. */
export const INLINE_VERIFY_MAX = 32;

// Plain JavaScript (eval'd), so it runs the same under tsx, vitest and the built dist/: only node:crypto.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const keys = new Map();
// m.packed holds, per item: 32-byte public key, 64-byte signature, message; m.ends the end offset of each item.
parentPort.on('message', (m) => {
  const buf = Buffer.from(m.packed.buffer, m.packed.byteOffset, m.packed.byteLength);
  const ok = new Uint8Array(m.ends.length);
  let at = 0;
  for (let i = 0; i < m.ends.length; i++) {
    try {
      const pub = buf.subarray(at, at + 32);
      const id = pub.toString('hex');
      let key = keys.get(id);
      if (key === undefined) {
        if (keys.size >= 4096) keys.clear();
        key = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: pub.toString('base64url') } });
        keys.set(id, key);
      }
      ok[i] = verify(null, buf.subarray(at + 96, m.ends[i]), key, buf.subarray(at + 32, at + 96)) ? 1 : 0;
    } catch {
      ok[i] = 0;
    }
    at = m.ends[i];
  }
  parentPort.postMessage({ id: m.id, ok }, [ok.buffer]);
});
`;

interface Pending {
  readonly worker: Worker;
  resolve(ok: Uint8Array): void;
  reject(err: Error): void;
}

/** A few worker threads verifying Ed25519 signatures; started lazily, never keeps the process alive. */
export class VerifyPool {
  readonly #size: number;
  readonly #inline: EnvelopeVerifier;
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #next = 0;
  #closed = false;

  /** @param size worker threads (default: one per core, 1–4: the event loop waits on them during a bootstrap) */
  constructor(inline: EnvelopeVerifier, size = Math.max(1, Math.min(4, availableParallelism()))) {
    this.#inline = inline;
    this.#size = size;
  }

  /**
   * Whether each envelope's signature verifies (same order). Never rejects for a bad signature: that is `false`.
   * `verifier` (the caller's) verifies small batches inline and remembers batch signatures: one already verified is
   * not checked again, and the envelopes of one Merkle tree in a call cost one check between them.
   */
  async verify(envelopes: readonly DecodedEnvelope[], verifier = this.#inline): Promise<boolean[]> {
    const out = Array.from(envelopes, () => false);
    // Which envelopes need an Ed25519 check, and for each batch signature, the envelopes waiting on it.
    const todo: DecodedEnvelope[] = [];
    const at: number[] = [];
    const sameRoot = new Map<string, number[]>();
    const roots = envelopes.map((e) => EnvelopeVerifier.rootId(e));
    for (const [i, e] of envelopes.entries()) {
      const root = roots[i];
      if (root === undefined) {
        todo.push(e);
        at.push(i);
      } else if (verifier.isKnownGood(root)) {
        out[i] = true;
      } else {
        const waiting = sameRoot.get(root);
        if (waiting !== undefined) waiting.push(i);
        else {
          sameRoot.set(root, [i]);
          todo.push(e);
          at.push(i);
        }
      }
    }
    const ok = await this.#verifyAll(todo, verifier);
    for (const [j, i] of at.entries()) {
      if (!ok[j]) continue;
      const root = roots[i];
      verifier.rememberGood(root);
      for (const k of root === undefined ? [i] : sameRoot.get(root)!) out[k] = true;
    }
    return out;
  }

  async #verifyAll(envelopes: readonly DecodedEnvelope[], verifier: EnvelopeVerifier): Promise<boolean[]> {
    if (envelopes.length <= INLINE_VERIFY_MAX || this.#closed) return envelopes.map((e) => verifyInline(verifier, e));
    // Split over the workers so a big batch uses them all.
    const parts = Math.min(this.#size, Math.ceil(envelopes.length / INLINE_VERIFY_MAX));
    const per = Math.ceil(envelopes.length / parts);
    const results = await Promise.all(
      Array.from({ length: parts }, (_, p) => this.#run(envelopes.slice(p * per, (p + 1) * per), verifier)),
    );
    const out: boolean[] = [];
    for (const r of results) for (const b of r) out.push(b === 1);
    return out;
  }

  /** Stops the workers; later calls verify inline. */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#workers.splice(0);
    for (const p of this.#pending.values()) p.reject(new Error('verify pool closed'));
    this.#pending.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #worker(): Worker {
    if (this.#workers.length < this.#size) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on('message', (m: { id: number; ok: Uint8Array }) => {
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        p?.resolve(m.ok);
      });
      w.on('error', (err) => this.#fail(w, err));
      w.on('exit', (code) => this.#fail(w, new Error(`verify worker exited with code ${code}`)));
      this.#workers.push(w);
      return w;
    }
    return this.#workers[this.#next++ % this.#workers.length]!;
  }

  #fail(w: Worker, err: Error): void {
    const i = this.#workers.indexOf(w);
    if (i >= 0) this.#workers.splice(i, 1);
    // A dead worker fails the batches in flight (the caller verifies them inline), and a new one replaces it.
    for (const [id, p] of this.#pending) {
      if (p.worker === w) {
        this.#pending.delete(id);
        p.reject(err);
      }
    }
  }

  async #run(envelopes: readonly DecodedEnvelope[], verifier: EnvelopeVerifier): Promise<Uint8Array> {
    const w = this.#worker();
    const id = this.#nextId++;
    try {
      return await new Promise<Uint8Array>((resolve, reject) => {
        // A worker that does not answer in time (hung, starved) is not waited for: the batch is verified inline.
        const timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new Error('verify worker timed out'));
        }, WORKER_TIMEOUT_MS);
        timer.unref();
        this.#pending.set(id, {
          worker: w,
          resolve: (ok) => {
            clearTimeout(timer);
            resolve(ok);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        });
        // One packed buffer, transferred (not cloned): views of frames would clone whole frame buffers.
        let total = 0;
        for (const e of envelopes) total += 96 + e.message.length;
        const packed = new Uint8Array(total);
        const ends = new Uint32Array(envelopes.length);
        let at = 0;
        for (const [i, e] of envelopes.entries()) {
          packed.set(e.publicKey, at);
          packed.set(e.signature, at + 32);
          packed.set(e.message, at + 96);
          at += 96 + e.message.length;
          ends[i] = at;
        }
        w.postMessage({ id, packed, ends }, [packed.buffer, ends.buffer]);
      });
    } catch {
      return Uint8Array.from(envelopes, (e) => (verifyInline(verifier, e) ? 1 : 0));
    }
  }
}

function verifyInline(verifier: EnvelopeVerifier, e: DecodedEnvelope): boolean {
  try {
    verifier.verify(e);
    return true;
  } catch {
    return false;
  }
}

let shared: VerifyPool | undefined;

/**
 * The process-wide pool (created on first use, never closed: its workers do not keep the process alive). Every node
 * of a process shares it, so a simulation of 100 nodes in one process runs a few workers, not 100.
 */
export function sharedVerifyPool(): VerifyPool {
  shared ??= new VerifyPool(new EnvelopeVerifier());
  return shared;
}
