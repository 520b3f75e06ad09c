import { readFileSync } from 'node:fs';
import type { Command } from '../command.js';

/** The version of package.json, as `mcs-gossip version` prints it. */
export function packageVersion(): string {
  // Works from src/ (tsx) and from dist/ (built): package.json is two levels up from either commands/ folder.
  const url = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

export const version: Command = {
  name: 'version',
  summary: 'print the version',
  usage: 'Usage: mcs-gossip version\n\nPrints the mcs-gossip version.',
  async run() {
    process.stdout.write(`mcs-gossip ${packageVersion()}\n`);
    return 0;
  },
};
