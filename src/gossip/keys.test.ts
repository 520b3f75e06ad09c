import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { GossipConfigError } from './errors.js';
import {
  encodeIdentityKey,
  generateIdentityKey,
  generatePsk,
  loadIdentityKey,
  loadPsk,
  parsePsk,
  writeSecretFile,
} from './keys.js';

describe('key files', () => {
  it('write an identity key with mode 0600, refuse to overwrite, and load the same PeerId', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mcs-keys-'));
    const path = join(dir, 'identity.key');
    const key = await generateIdentityKey();
    await writeSecretFile(path, encodeIdentityKey(key));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await expect(writeSecretFile(path, encodeIdentityKey(key))).rejects.toThrow(GossipConfigError);
    const loaded = await loadIdentityKey(path);
    expect(peerIdFromPrivateKey(loaded).equals(peerIdFromPrivateKey(key))).toBe(true);
    await writeFile(path, 'garbage', { mode: 0o644 });
    await expect(loadIdentityKey(path)).rejects.toThrow(GossipConfigError);
    await writeSecretFile(path, generatePsk(), { force: true });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await expect(loadIdentityKey(join(dir, 'missing'))).rejects.toThrow(GossipConfigError);
  });

  it('generate, normalise and validate ClusterSet keys', async () => {
    const psk = generatePsk();
    expect(parsePsk(psk)).toEqual(psk);
    const text = new TextDecoder().decode(psk);
    expect(parsePsk(new TextEncoder().encode(text.replaceAll('\n', '\r\n') + '\n'))).toEqual(psk);
    for (const bad of ['', '/key/swarm/psk/1.0.0/\n/base16/\nabc', text.replace('/base16/', '/base64/')]) {
      expect(() => parsePsk(new TextEncoder().encode(bad))).toThrow(GossipConfigError);
    }
    const dir = await mkdtemp(join(tmpdir(), 'mcs-psk-'));
    await writeSecretFile(join(dir, 'psk'), psk);
    expect(await loadPsk(join(dir, 'psk'))).toEqual(psk);
    expect(new Uint8Array(await readFile(join(dir, 'psk')))).toEqual(psk);
  });
});
