// Workaround for two defects of `xsalsa20` 1.2 as @libp2p/pnet 3 uses it (one WebAssembly memory of at most 10 pages,
// 640 KiB, shared by every stream in the process):
// 1. `update()` copies its whole input into that memory, so one inbound read larger than ~640 KiB (a paused
//    connection dispatches everything buffered at once) throws `Memory.grow(): Maximum memory size exceeded` from an
//    event handler and kills the process. Anyone who completes the 24-byte nonce exchange can trigger it: pnet
//    decrypts before any authentication.
// 2. pnet never calls `finalize()`, so every connection leaks 2×64 bytes of that memory; after ~5,000 connections
//    in the life of the process every update fails the same way.
// We split updates into 32 KiB pieces (the keystream continues across calls, so the output is identical) and return
// an instance's slot when it is garbage-collected. Remove once pnet or xsalsa20 is fixed upstream.
import { createRequire } from 'node:module';

interface Xor {
  finalize(): void;
}

interface XSalsa20Instance {
  _xor: Xor | null;
  update(input: Uint8Array, output?: Uint8Array): Uint8Array;
}

const MAX_PIECE = 32 * 1024;
const PATCHED = Symbol.for('mcs-gossip.xsalsa20-guard');

/** Installs the guard once per process (idempotent). */
export function installPnetGuard(): void {
  const require = createRequire(import.meta.url);
  // Resolve xsalsa20 from @libp2p/pnet, so we patch the copy pnet actually uses.
  const pnetRequire = createRequire(require.resolve('@libp2p/pnet'));
  const XSalsa20 = pnetRequire('xsalsa20') as { prototype: XSalsa20Instance & { [PATCHED]?: true } };
  const proto = XSalsa20.prototype;
  if (proto[PATCHED] === true) return;
  proto[PATCHED] = true;
  const original = proto.update;
  const registered = new WeakSet<object>();
  const slots = new FinalizationRegistry<Xor>((xor) => {
    try {
      xor.finalize();
    } catch {
      // the slot is lost, as it was without the guard
    }
  });
  proto.update = function (this: XSalsa20Instance, input: Uint8Array, output?: Uint8Array): Uint8Array {
    if (!registered.has(this) && this._xor !== null) {
      registered.add(this);
      slots.register(this, this._xor);
    }
    if (input.length <= MAX_PIECE) return original.call(this, input, output);
    const out = output ?? new Uint8Array(input.length);
    for (let i = 0; i < input.length; i += MAX_PIECE) {
      original.call(this, input.subarray(i, i + MAX_PIECE), out.subarray(i, i + MAX_PIECE));
    }
    return out;
  };
}
