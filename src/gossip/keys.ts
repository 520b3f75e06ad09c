// The node's persistent identity (an Ed25519 libp2p key: it gives the PeerId) and the ClusterSet pre-shared key
// (libp2p pnet format). Both live in files written with mode 0600; later they come from Kubernetes Secrets.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { generateKey as generatePskInto } from '@libp2p/pnet';
import type { Ed25519PrivateKey, PrivateKey } from '@libp2p/interface';
import { GossipConfigError } from './errors.js';

const PSK_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';
const PSK_HEX = /^[0-9a-f]{64}$/;
/** Length of a pnet key file as written by `generatePsk`: header + 64 hex characters. */
export const PSK_LENGTH = PSK_HEADER.length + 64;

/** Creates a new Ed25519 identity. */
export async function generateIdentityKey(): Promise<Ed25519PrivateKey> {
  return generateKeyPair('Ed25519');
}

/** Creates a new ClusterSet key in the `/key/swarm/psk/1.0.0/` format that @libp2p/pnet reads. */
export function generatePsk(): Uint8Array {
  const psk = new Uint8Array(PSK_LENGTH);
  generatePskInto(psk);
  return psk;
}

/** Parses and normalises a ClusterSet key (tolerates CRLF and a trailing newline); throws GossipConfigError. */
export function parsePsk(bytes: Uint8Array): Uint8Array {
  const lines = new TextDecoder().decode(bytes).trim().split(/\r?\n/);
  const [tag, codec, hex] = lines;
  if (lines.length !== 3 || tag !== '/key/swarm/psk/1.0.0/' || codec !== '/base16/' || !PSK_HEX.test(hex ?? '')) {
    throw new GossipConfigError('not a ClusterSet key: expected "/key/swarm/psk/1.0.0/", "/base16/", 64 hex digits');
  }
  return new TextEncoder().encode(PSK_HEADER + hex);
}

/** The 32 key bytes of a ClusterSet key file (validated as by {@link parsePsk}). */
export function pskKeyBytes(bytes: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(parsePsk(bytes));
  return Uint8Array.from(Buffer.from(text.slice(PSK_HEADER.length).trim(), 'hex'));
}

/** Decodes an identity key file (libp2p protobuf encoding); only Ed25519 keys are accepted. */
export function parseIdentityKey(bytes: Uint8Array): Ed25519PrivateKey {
  let key: PrivateKey;
  try {
    key = privateKeyFromProtobuf(bytes);
  } catch (err) {
    throw new GossipConfigError(`not a libp2p private key: ${(err as Error).message}`);
  }
  if (key.type !== 'Ed25519') throw new GossipConfigError(`identity key must be Ed25519, not ${key.type}`);
  return key;
}

export function encodeIdentityKey(key: PrivateKey): Uint8Array {
  return privateKeyToProtobuf(key);
}

export async function loadIdentityKey(path: string): Promise<Ed25519PrivateKey> {
  return parseIdentityKey(await readKeyFile(path, 'identity key'));
}

export async function loadPsk(path: string): Promise<Uint8Array> {
  return parsePsk(await readKeyFile(path, 'ClusterSet key'));
}

export interface WriteKeyOptions {
  /** Replace an existing file (default false: refuse). */
  readonly force?: boolean;
}

/** Writes secret bytes with mode 0600; without `force` an existing file is never replaced. */
export async function writeSecretFile(path: string, bytes: Uint8Array, options: WriteKeyOptions = {}): Promise<void> {
  try {
    await writeFile(path, bytes, { mode: 0o600, flag: options.force === true ? 'w' : 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new GossipConfigError(`${path} exists; pass --force to overwrite it`);
    if (code === 'ENOENT') throw new GossipConfigError(`cannot write ${path}: its directory does not exist`);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EROFS')
      throw new GossipConfigError(`cannot write ${path}: ${code}`);
    throw err;
  }
  if (options.force === true) {
    // An overwritten file keeps its old mode: tighten it.
    await chmod(path, 0o600);
  }
}

async function readKeyFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new GossipConfigError(`cannot read ${what} file ${path}: ${(err as Error).message}`);
  }
}
