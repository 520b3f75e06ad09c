// The ClusterSet key as a libp2p connection protector, wire-compatible with @libp2p/pnet (go-libp2p's and js-libp2p's
// private networks, `/key/swarm/psk/1.0.0/`): each side sends a random 24-byte nonce, then everything it writes is
// XORed with the XSalsa20 keystream of (ClusterSet key, its own nonce).
//
// Why not @libp2p/pnet itself: it runs XSalsa20 through the `xsalsa20` package, whose one WebAssembly memory (640 KiB
// at most) is shared by every connection of the process and copied into whole on each update. A single inbound read
// above ~640 KiB, which anyone who completes the nonce exchange can send before any authentication, throws from an
// event handler and kills the process; and every connection leaks 128 bytes of that memory for good, so a
// long-lived node (or a 100-node benchmark) runs out of it. Here the keystream comes from @noble/ciphers (pure
// TypeScript, audited, already in the tree through Noise), per connection, with no shared arena. See docs/gossip.md.
import { xsalsa20 } from '@noble/ciphers/salsa.js';
import { InvalidParametersError } from '@libp2p/interface';
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface';
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils';
import type { SendResult } from '@libp2p/utils';
import type { Uint8ArrayList } from 'uint8arraylist';
import { GossipConfigError } from './errors.js';

export const PNET_NONCE_BYTES = 24;
export const PNET_KEY_BYTES = 32;
const BLOCK = 64;
/** @noble/ciphers exposes the low 32 bits of Salsa20's block counter: 2^32 blocks = 256 GiB per direction. */
const MAX_BLOCKS = 2 ** 32 - 1;

/** Keystream made ahead for small reads and writes: one cipher call per 64 blocks instead of one per update. */
const KEYSTREAM_BYTES = 64 * BLOCK;
const ZEROS = new Uint8Array(KEYSTREAM_BYTES);

/**
 * An XSalsa20 keystream XORed over a byte stream: consecutive `update`s continue the keystream where the previous
 * one stopped, whatever the chunk sizes (equal to XORing the concatenation at once).
 */
export class XSalsa20Stream {
  readonly #key: Uint8Array;
  readonly #nonce: Uint8Array;
  /** Counter of the next block not yet generated. */
  #block = 0;
  /** Keystream generated ahead, and how much of it is used. */
  readonly #ks = new Uint8Array(KEYSTREAM_BYTES);
  #ksUsed = KEYSTREAM_BYTES;

  constructor(key: Uint8Array, nonce: Uint8Array) {
    if (key.length !== PNET_KEY_BYTES) throw new GossipConfigError(`pnet key must be ${PNET_KEY_BYTES} bytes`);
    if (nonce.length !== PNET_NONCE_BYTES) throw new GossipConfigError(`pnet nonce must be ${PNET_NONCE_BYTES} bytes`);
    this.#key = Uint8Array.from(key);
    this.#nonce = Uint8Array.from(nonce);
  }

  #take(blocks: number): number {
    // Never reuse keystream: a connection this long must be re-established.
    if (this.#block + blocks > MAX_BLOCKS) throw new Error('pnet keystream exhausted (256 GiB on one connection)');
    const at = this.#block;
    this.#block += blocks;
    return at;
  }

  /** Returns `data` XORed with the next `data.length` bytes of keystream (a new array; `data` is not modified). */
  update(data: Uint8Array): Uint8Array {
    const len = data.length;
    const out = new Uint8Array(len);
    const ks = this.#ks;
    let i = 0;
    while (i < len) {
      if (this.#ksUsed < KEYSTREAM_BYTES) {
        const n = Math.min(KEYSTREAM_BYTES - this.#ksUsed, len - i);
        for (let j = 0, k = this.#ksUsed; j < n; j++, k++) out[i + j] = data[i + j]! ^ ks[k]!;
        i += n;
        this.#ksUsed += n;
      } else if (len - i >= KEYSTREAM_BYTES) {
        // Large reads: whole blocks straight from the cipher.
        const whole = Math.floor((len - i) / BLOCK) * BLOCK;
        xsalsa20(
          this.#key,
          this.#nonce,
          data.subarray(i, i + whole),
          out.subarray(i, i + whole),
          this.#take(whole / BLOCK),
        );
        i += whole;
      } else {
        xsalsa20(this.#key, this.#nonce, ZEROS, ks, this.#take(KEYSTREAM_BYTES / BLOCK));
        this.#ksUsed = 0;
      }
    }
    return out;
  }
}

/** A connection after the nonce exchange: reads and writes pass through the two keystreams. */
class PnetConnection extends AbstractMultiaddrConnection {
  readonly #inner: MultiaddrConnection;
  readonly #inbound: XSalsa20Stream;
  readonly #outbound: XSalsa20Stream;

  constructor(inner: MultiaddrConnection, key: Uint8Array, localNonce: Uint8Array, remoteNonce: Uint8Array) {
    super({ remoteAddr: inner.remoteAddr, direction: inner.direction, log: inner.log.newScope('pnet') });
    this.#inner = inner;
    this.#inbound = new XSalsa20Stream(key, remoteNonce);
    this.#outbound = new XSalsa20Stream(key, localNonce);
    inner.addEventListener('message', (evt) => {
      try {
        const data: Uint8Array | Uint8ArrayList = evt.data;
        if (data instanceof Uint8Array) this.onData(this.#inbound.update(data));
        else for (const buf of data) this.onData(this.#inbound.update(buf));
      } catch (err) {
        this.abort(err instanceof Error ? err : new Error(String(err)));
      }
    });
    inner.addEventListener('drain', () => this.onMuxerDrain());
    inner.addEventListener('close', (evt) => {
      if (evt.error == null) this.onTransportClosed();
      else if (evt.local === true) this.abort(evt.error);
      else this.onRemoteReset();
    });
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.#inner.close(options);
  }

  sendData(data: Uint8ArrayList): SendResult {
    return { sentBytes: data.byteLength, canSendMore: this.#inner.send(this.#outbound.update(data.subarray())) };
  }

  sendReset(err: Error): void {
    this.#inner.abort(err);
  }

  sendPause(): void {
    this.#inner.pause();
  }

  sendResume(): void {
    this.#inner.resume();
  }
}

export interface PnetProtectorInit {
  /** The 32-byte ClusterSet key (decoded from the `/key/swarm/psk/1.0.0/` file). */
  readonly key: Uint8Array;
  /** Time allowed for the nonce exchange when the caller gives no signal (ms). Default 5 s. */
  readonly timeoutMs?: number;
}

class PnetProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'mcs-gossip/pnet';
  readonly #key: Uint8Array;
  readonly #timeoutMs: number;

  constructor(init: PnetProtectorInit) {
    if (init.key.length !== PNET_KEY_BYTES) {
      throw new GossipConfigError(`the ClusterSet key must be ${PNET_KEY_BYTES} bytes, got ${init.key.length}`);
    }
    this.#key = Uint8Array.from(init.key);
    this.#timeoutMs = init.timeoutMs ?? 5000;
  }

  async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const inner = connection as Partial<MultiaddrConnection> & MessageStream;
    if (inner.remoteAddr === undefined) throw new InvalidParametersError('pnet protects connections only');
    const abort = options?.signal === undefined ? { signal: AbortSignal.timeout(this.#timeoutMs) } : options;
    const localNonce = crypto.getRandomValues(new Uint8Array(PNET_NONCE_BYTES));
    const bytes = byteStream(connection);
    const [remote] = await Promise.all([
      bytes.read({ bytes: PNET_NONCE_BYTES, ...abort }),
      bytes.write(localNonce, abort),
    ]);
    const remoteNonce = remote.subarray();
    // A reflected nonce would make both directions use one keystream (XOR of the two plaintexts would leak).
    if (Buffer.compare(remoteNonce, localNonce) === 0)
      throw new InvalidParametersError('pnet: the peer echoed our nonce');
    return new PnetConnection(bytes.unwrap() as MultiaddrConnection, this.#key, localNonce, remoteNonce);
  }
}

/** The libp2p `connectionProtector` factory for a ClusterSet key. */
export function pnetProtector(init: PnetProtectorInit): () => ConnectionProtector {
  const protector = new PnetProtector(init);
  return () => protector;
}
