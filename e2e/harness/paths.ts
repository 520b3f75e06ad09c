import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root, and where the built tools (symlinks into the cache) and the CRDs are. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const toolsBin = join(repoRoot, '.tools', 'bin');
export const crdDir = join(repoRoot, 'crds');
