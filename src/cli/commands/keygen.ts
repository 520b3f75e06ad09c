import { parseArgs } from 'node:util';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Command } from '../command.js';
import { UsageError } from '../usage-error.js';
import { GossipConfigError } from '../../gossip/errors.js';
import { encodeIdentityKey, generateIdentityKey, writeSecretFile } from '../../gossip/keys.js';

export const keygen: Command = {
  name: 'keygen',
  summary: 'create a node identity key (Ed25519) and print its PeerId',
  usage: [
    'Usage: mcs-gossip keygen --out FILE [--force]',
    '',
    'Creates a new Ed25519 libp2p identity key, writes it to FILE (mode 0600, libp2p protobuf encoding)',
    'and prints the PeerId it gives. Refuses to overwrite FILE unless --force is given.',
  ].join('\n'),
  async run(argv) {
    const { out, force } = parseFlags(argv);
    const key = await generateIdentityKey();
    try {
      await writeSecretFile(out, encodeIdentityKey(key), { force });
    } catch (err) {
      if (err instanceof GossipConfigError) throw new UsageError(err.message);
      throw err;
    }
    process.stdout.write(`${peerIdFromPrivateKey(key).toString()}\n`);
    return 0;
  },
};

export function parseFlags(argv: readonly string[]): { out: string; force: boolean } {
  let values: { out?: string | undefined; force?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { out: { type: 'string' }, force: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.out === undefined || values.out === '') throw new UsageError('--out FILE is required');
  return { out: values.out, force: values.force === true };
}
