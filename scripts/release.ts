// Publishes a release: the node image and the Helm chart, into one OCI registry.
//   npm run release -- --registry HOST[:PORT][/PATH] --version V [--tls-verify=false] [--base IMAGE]
// 1. builds the image from the Dockerfile with podman (e2e/tools/image.sh: cached by inputs), on --base (default the
//    official node:24-bookworm-slim), stamped with V, tagged HOST/PATH/mcs-gossip:V, and pushes it;
// 2. packages charts/mcs-gossip as version V with appVersion V and image.repository HOST/PATH/mcs-gossip (so the
//    chart installs the image it was released with), and pushes it to oci://HOST/PATH/charts.
// Prints what it pushed, with digests. Bad flags: one line on stderr, exit 2. docs/image.md has the details.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_BASE = 'node:24-bookworm-slim';
const USAGE = 'usage: npm run release -- --registry HOST[:PORT][/PATH] --version V [--tls-verify=false] [--base IMAGE]';

export class UsageError extends Error {}

export interface ReleaseOptions {
  /** HOST[:PORT][/PATH], no scheme, no trailing slash. */
  readonly registry: string;
  readonly version: string;
  /** false: the registry speaks plain HTTP (podman --tls-verify=false, helm --plain-http). */
  readonly tlsVerify: boolean;
  readonly base: string;
}

// SemVer 2.0 without build metadata: `+` is not allowed in an OCI tag.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$/;
// A registry host (name or IPv4, optional port), then repository path components as the OCI spec allows them.
const REGISTRY = /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::\d{1,5})?(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

export function parseReleaseArgs(argv: readonly string[]): ReleaseOptions {
  let tlsVerify = true;
  const rest: string[] = [];
  for (const a of argv) {
    // podman's spelling: --tls-verify, --tls-verify=true|false (parseArgs has no boolean with a value).
    const m = /^--tls-verify(?:=(.*))?$/.exec(a);
    if (m === null) rest.push(a);
    else if (m[1] === undefined || m[1] === 'true') tlsVerify = true;
    else if (m[1] === 'false') tlsVerify = false;
    else throw new UsageError(`--tls-verify must be true or false, not "${m[1]}"`);
  }
  let values: { registry?: string; version?: string; base?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: true,
      options: {
        registry: { type: 'string' },
        version: { type: 'string' },
        base: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // Node's message for an unknown flag goes on about positionals after `--`: keep the first sentence.
    throw new UsageError((err as Error).message.split('\n')[0]!.replace(/\. To specify .*$/, ''));
  }
  if (values.help === true) throw new UsageError('help');
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const registry = values.registry?.replace(/\/$/, '');
  if (registry === undefined || registry === '') throw new UsageError('--registry HOST[:PORT][/PATH] is required');
  if (/^[a-z]+:\/\//.test(registry))
    throw new UsageError(`--registry takes HOST[:PORT][/PATH] without a scheme, not "${registry}"`);
  if (!REGISTRY.test(registry))
    throw new UsageError(`--registry "${registry}" is not HOST[:PORT][/PATH] (path components: lowercase a-z0-9._-)`);
  const version = values.version;
  if (version === undefined || version === '') throw new UsageError('--version V is required');
  if (!SEMVER.test(version))
    throw new UsageError(`--version "${version}" is not a SemVer version like 1.2.3 or 1.2.3-rc.1 (no +build)`);
  const base = values.base ?? DEFAULT_BASE;
  if (base === '') throw new UsageError('--base needs an image reference');
  return { registry, version, tlsVerify, base };
}

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const log = (msg: string) => process.stderr.write(`[release ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** Runs a program; its stderr is passed through when `passStderr`, else kept for the error message. */
function exec(cmd: string, args: readonly string[], opts: { passStderr?: boolean } = {}): Promise<Result> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? podmanConf },
      stdio: ['ignore', 'pipe', opts.passStderr === true ? 'inherit' : 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code: code ?? 1, stdout, stderr }));
  });
}

const podmanConf = join(root, 'e2e', 'tools', 'podman', 'containers.conf');
const helmBin = join(root, '.tools', 'bin', 'helm');

class ReleaseError extends Error {}

function check(what: string, r: Result): Result {
  if (r.code !== 0) throw new ReleaseError(`${what} failed (exit ${r.code})${r.stderr ? `:\n${r.stderr.trim()}` : ''}`);
  return r;
}

export interface Released {
  readonly image: string;
  readonly imageDigest: string;
  readonly chart: string;
  readonly chartDigest: string;
}

export async function release(o: ReleaseOptions): Promise<Released> {
  const image = `${o.registry}/mcs-gossip:${o.version}`;
  const tls = `--tls-verify=${o.tlsVerify}`;
  if (!existsSync(helmBin)) throw new ReleaseError(`${helmBin} missing: build it with npm run tools -- helm`);
  if ((await exec('podman', ['--version']).catch(() => undefined))?.code !== 0)
    throw new ReleaseError('podman is required (Debian: bash e2e/tools/debian.sh podman runc)');
  const work = await mkdtemp(join(tmpdir(), 'mcs-gossip-release-'));
  try {
    log(`building ${image} on ${o.base}`);
    const built = await exec('bash', ['e2e/tools/image.sh', '--base', o.base, '--version', o.version, '--tag', image], {
      passStderr: true,
    });
    if (built.code === 3)
      throw new ReleaseError(
        `the base image ${o.base} cannot be pulled on this machine (no access to its registry). ` +
          `Pull it first, or build on the test base: --base "$(bash e2e/tools/image-base.sh)" (docs/image.md)`,
      );
    check('e2e/tools/image.sh', built);

    log(`pushing ${image}`);
    const digestFile = join(work, 'digest');
    check('podman push', await exec('podman', ['push', '-q', tls, '--digestfile', digestFile, image]));
    const imageDigest = (await readFile(digestFile, 'utf8')).trim();

    // The chart as released points at the image released with it; the chart in git keeps its default.
    const chartDir = join(work, 'mcs-gossip');
    await cp(join(root, 'charts', 'mcs-gossip'), chartDir, { recursive: true });
    const valuesFile = join(chartDir, 'values.yaml');
    const values = parseDocument(await readFile(valuesFile, 'utf8'));
    values.setIn(['image', 'repository'], `${o.registry}/mcs-gossip`);
    await writeFile(valuesFile, values.toString());
    const helmArgs = ['package', chartDir, '--version', o.version, '--app-version', o.version, '--destination', work];
    check('helm package', await exec(helmBin, helmArgs));
    const tgz = join(work, `mcs-gossip-${o.version}.tgz`);
    const chartRepo = `oci://${o.registry}/charts`;
    log(`pushing ${tgz.replace(work, '<tmp>')} to ${chartRepo}`);
    const pushed = check(
      'helm push',
      await exec(helmBin, ['push', tgz, chartRepo, ...(o.tlsVerify ? [] : ['--plain-http'])]),
    );
    const chartDigest = /Digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout + pushed.stderr)?.[1];
    if (chartDigest === undefined)
      throw new ReleaseError(`helm push printed no digest:\n${pushed.stdout}${pushed.stderr}`);
    return { image, imageDigest, chart: `${chartRepo}/mcs-gossip`, chartDigest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let o: ReleaseOptions;
  try {
    o = parseReleaseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    process.stderr.write(`release: ${err.message} (${USAGE})\n`);
    return 2;
  }
  if (o.base === DEFAULT_BASE)
    log(`base ${DEFAULT_BASE} (the official Node.js image): this needs access to Docker Hub, or the image pulled`);
  try {
    const r = await release(o);
    process.stdout.write(`pushed image ${r.image}@${r.imageDigest}\n`);
    process.stdout.write(`pushed chart ${r.chart} --version ${o.version} (${r.chartDigest})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ReleaseError)) throw err;
    process.stderr.write(`release: ${err.message}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
