import type { Command } from '../command.js';
import { UsageError } from '../usage-error.js';
import { GossipConfigError } from '../../gossip/errors.js';
import { generatePsk, writeSecretFile } from '../../gossip/keys.js';
import { parseFlags } from './keygen.js';

export const psk: Command = {
  name: 'psk',
  summary: 'create a ClusterSet pre-shared key (libp2p pnet)',
  usage: [
    'Usage: mcs-gossip psk --out FILE [--force]',
    '',
    'Creates a new ClusterSet key in the /key/swarm/psk/1.0.0/ format and writes it to FILE (mode 0600).',
    'Every cluster of the ClusterSet needs the same key; nodes without it cannot connect.',
    'Refuses to overwrite FILE unless --force is given.',
  ].join('\n'),
  async run(argv) {
    const { out, force } = parseFlags(argv);
    try {
      await writeSecretFile(out, generatePsk(), { force });
    } catch (err) {
      if (err instanceof GossipConfigError) throw new UsageError(err.message);
      throw err;
    }
    process.stderr.write(`wrote ClusterSet key to ${out}\n`);
    return 0;
  },
};
