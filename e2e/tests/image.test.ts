// The node image and the release path (docs/image.md): build the test base and the image with podman (both
// cached), release them into a local registry (distribution, built from Go modules) with `npm run release`, pull
// the image back and run it hardened (read-only root without even a writable /tmp, uid 65532, no capabilities,
// no-new-privileges: what the chart's securityContext asks for), check tini is PID 1 and a SIGTERM stops the node
// at once, and pull the chart back with helm. Skipped only where podman is absent.
import { RUNTIME_NODE_FLAGS } from '../../src/node/runtime-flags.js';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { encodeIdentityKey, generateIdentityKey, generatePsk } from '../../src/gossip/keys.js';
import { repoRoot, toolsBin } from '../harness/paths.js';
import { eventually } from '../harness/wait.js';
import { startRegistry, type LocalRegistry } from '../tools/local-registry.js';
import { hasPodman, sh, shOk } from '../tools/podman.js';

const skip = hasPodman()
  ? undefined
  : 'podman is not installed (Debian: bash e2e/tools/debian.sh podman runc mmdebstrap tini uidmap)';
if (skip !== undefined) console.warn(`e2e/tests/image.test.ts skipped: ${skip}`);

const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const version = `${pkg.version}-e2e`;
const helm = join(toolsBin, 'helm');
const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
/** The hardening of every run here; --read-only-tmpfs=false leaves not even /tmp writable. */
const hardened = [
  '--network=host',
  '--read-only',
  '--read-only-tmpfs=false',
  '--user=65532:65532',
  '--cap-drop=ALL',
  '--security-opt=no-new-privileges',
];

describe.skipIf(skip !== undefined)(`image and release${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  let registry: LocalRegistry | undefined;
  let base: string;
  let work: string;
  let image: string;
  let imageDigest: string | undefined;

  beforeAll(async () => {
    // Each step is cached: seconds when warm; cold, the registry build takes ~2 min, the base ~2 min.
    await shOk('bash', ['e2e/tools/build.sh', 'registry', 'helm']);
    base = (await shOk('bash', ['e2e/tools/image-base.sh'])).stdout.trim();
    registry = await startRegistry();
    image = `${registry.host}/e2e/mcs-gossip:${version}`;
    work = await mkdtemp(join(tmpdir(), 'mcs-gossip-image-'));
  }, 900_000);

  afterAll(async () => {
    await registry?.stop();
    if (image !== undefined) await sh('podman', ['rmi', image]);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('npm run release builds the image, pushes it and the chart, and prints both with digests', async () => {
    const r = await sh('npm', [
      'run',
      '-s',
      'release',
      '--',
      `--registry=${registry?.host}/e2e`,
      `--version=${version}`,
      '--tls-verify=false',
      `--base=${base}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const m = /^pushed image (\S+)@(sha256:[0-9a-f]{64})$/.exec(lines[0] ?? '');
    expect(m?.[1]).toBe(image);
    imageDigest = m?.[2];
    expect(lines[1]).toMatch(
      new RegExp(
        `^pushed chart oci://${registry?.host}/e2e/charts/mcs-gossip --version ${version} \\(sha256:[0-9a-f]{64}\\)$`,
      ),
    );
  }, 900_000);

  it('refuses bad flags with one line on stderr and exit status 2', async () => {
    const cases: [string[], string][] = [
      [['--version', '1.0.0'], '--registry HOST[:PORT][/PATH] is required'],
      [['--registry', 'localhost:5000'], '--version V is required'],
      [['--registry', 'localhost:5000', '--version', 'v1'], '--version "v1" is not a SemVer version'],
      [
        ['--registry', 'http://localhost:5000', '--version', '1.0.0'],
        '--registry takes HOST[:PORT][/PATH] without a scheme',
      ],
      [
        ['--registry', 'localhost:5000', '--version', '1.0.0', '--tls-verify=maybe'],
        '--tls-verify must be true or false',
      ],
      [['--registry', 'localhost:5000', '--version', '1.0.0', '--bogus'], "Unknown option '--bogus'"],
    ];
    for (const [args, message] of cases) {
      const r = await sh(tsx, ['scripts/release.ts', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toContain(`release: ${message}`);
    }
  });

  it('the image pulled back from the registry runs `mcs-gossip version` hardened', async () => {
    expect(imageDigest).toBeDefined();
    await shOk('podman', ['rmi', image]);
    expect((await sh('podman', ['image', 'exists', image])).code).toBe(1);
    await shOk('podman', ['pull', '-q', '--tls-verify=false', image]);
    // The digest the release printed is the manifest the registry serves (podman's own .Digest may be the
    // manifest it built locally, before the push compressed the layers).
    const format = '{{json .RepoDigests}} {{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}';
    const [digests, ...config] = (await shOk('podman', ['image', 'inspect', '--format', format, image])).stdout
      .trim()
      .split(' ');
    expect(JSON.parse(digests ?? '[]')).toContain(`${image.replace(/:[^:/]+$/, '')}@${imageDigest}`);
    expect(config.join(' ')).toBe(
      `65532:65532 ${JSON.stringify(['/usr/bin/tini', '--', 'node', ...RUNTIME_NODE_FLAGS, '/app/dist/cli/main.js'])} ["run"]`,
    );
    const r = await shOk('podman', ['run', '--rm', ...hardened, image, 'version']);
    expect(r.stdout).toBe(`mcs-gossip ${version}\n`);
  });

  it('the image runs from a store that holds nothing but what the registry served', async () => {
    // The pull above found the layers already present; a fresh podman store proves the registry has them all.
    const store = ['--root', join(work, 'store'), '--runroot', join(work, 'runroot')];
    try {
      await shOk('podman', [...store, 'pull', '-q', '--tls-verify=false', image]);
      const r = await shOk('podman', [...store, 'run', '--rm', ...hardened, image, 'version']);
      expect(r.stdout).toBe(`mcs-gossip ${version}\n`);
    } finally {
      await sh('podman', [...store, 'rmi', '--all', '--force']);
    }
  });

  it('runs the node under tini as PID 1, and SIGTERM stops it gracefully within seconds', async () => {
    // Keys and a kubeconfig whose API server is unreachable: the node starts, serves /metrics and retries its
    // watches until it is stopped. The files must be readable by uid 65532.
    const dir = join(work, 'etc');
    await mkdir(dir);
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'identity.key'), encodeIdentityKey(await generateIdentityKey()), { mode: 0o644 });
    await writeFile(join(dir, 'clusterset.key'), generatePsk(), { mode: 0o644 });
    const kubeconfig = [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n');
    await writeFile(join(dir, 'kubeconfig'), kubeconfig, { mode: 0o644 });
    const name = `mcs-gossip-e2e-${randomBytes(4).toString('hex')}`;
    try {
      await shOk('podman', [
        'run',
        '-d',
        `--name=${name}`,
        ...hardened,
        `--volume=${dir}:/etc/mcs-gossip:ro`,
        image,
        'run',
        '--identity-key=/etc/mcs-gossip/identity.key',
        '--clusterset-key=/etc/mcs-gossip/clusterset.key',
        '--kubeconfig=/etc/mcs-gossip/kubeconfig',
        '--listen=/ip4/127.0.0.1/tcp/0',
        '--metrics-addr=127.0.0.1:0',
      ]);
      await eventually(
        'the node serves /metrics',
        async () => ((await sh('podman', ['logs', name])).stdout.includes('serving /metrics') ? true : undefined),
        20_000,
      );
      const cmdline = (await shOk('podman', ['exec', name, 'cat', '/proc/1/cmdline'])).stdout.split('\0');
      expect(cmdline.slice(0, 7)).toEqual([
        '/usr/bin/tini',
        '--',
        'node',
        ...RUNTIME_NODE_FLAGS,
        '/app/dist/cli/main.js',
        'run',
      ]);
      const start = Date.now();
      await shOk('podman', ['stop', '--time=20', name]);
      const took = Date.now() - start;
      expect(took).toBeLessThan(5_000);
      expect((await shOk('podman', ['inspect', '--format', '{{.State.ExitCode}}', name])).stdout.trim()).toBe('0');
      const logs = (await sh('podman', ['logs', name])).stdout;
      expect(logs).toContain('"signal":"SIGTERM"');
      expect(logs).toContain('"msg":"stopped"');
    } finally {
      await sh('podman', ['rm', '-f', name]);
    }
  });

  it('helm pulls the chart back: version and appVersion V, pointing at the released image', async () => {
    const dest = join(work, 'charts');
    await mkdir(dest);
    const chart = `oci://${registry?.host}/e2e/charts/mcs-gossip`;
    await shOk(helm, ['pull', chart, '--version', version, '--plain-http', '--destination', dest]);
    const tgz = join(dest, `mcs-gossip-${version}.tgz`);
    const meta = parse((await shOk(helm, ['show', 'chart', tgz])).stdout) as { version: string; appVersion: string };
    expect(meta.version).toBe(version);
    expect(meta.appVersion).toBe(version);
    const values = parse((await shOk(helm, ['show', 'values', tgz])).stdout) as { image: { repository: string } };
    expect(values.image.repository).toBe(`${registry?.host}/e2e/mcs-gossip`);
  });
});
