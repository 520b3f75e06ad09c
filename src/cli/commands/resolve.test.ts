import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { explain } from './resolve.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TSX = join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const EXAMPLE = join(ROOT, 'docs/examples/port-conflict.yaml');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `mcs-gossip resolve …` as a user would, on the Node running the tests (24, not the one on PATH). */
function cli(args: readonly string[], stdin?: string): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [TSX, join(ROOT, 'src/cli/main.ts'), 'resolve', ...args],
      { cwd: ROOT },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        done({ code, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'mcs-resolve-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

type Output = {
  clusters: Record<
    string,
    {
      serviceImports: { spec: { ports: unknown[] } }[];
      endpointSlices: unknown[];
      serviceExports: {
        metadata: { name: string };
        status: { conditions: { type: string; status: string; reason: string }[] };
      }[];
    }
  >;
};

describe('mcs-gossip resolve', () => {
  it('port conflict, cluster-a oldest: union of ports and Conflict=True PortConflict on both exports, in both sections', async () => {
    const run = await cli([EXAMPLE, '-o', 'json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as Output;
    expect(Object.keys(out.clusters)).toEqual(['cluster-a', 'cluster-b']);
    for (const section of Object.values(out.clusters)) {
      expect(section.serviceImports[0]!.spec.ports).toEqual([
        { name: 'http', protocol: 'TCP', port: 80 },
        { name: 'sctp', protocol: 'SCTP', port: 142 },
      ]);
      expect(section.endpointSlices).toHaveLength(2);
      const conflict = section.serviceExports[0]!.status.conditions.find((c) => c.type === 'Conflict');
      expect(conflict).toMatchObject({ status: 'True', reason: 'PortConflict' });
    }
  });

  it('is deterministic: YAML by default, same bytes from a file and from stdin, whatever the input order', async () => {
    const fromFile = await cli([EXAMPLE]);
    const { readFileSync } = await import('node:fs');
    const fromStdin = await cli(['-'], readFileSync(EXAMPLE, 'utf8'));
    expect(fromFile.code).toBe(0);
    expect(fromStdin.stdout).toBe(fromFile.stdout);
    expect(fromFile.stdout).toContain('reason: PortConflict');
    expect(fromFile.stdout).not.toMatch(/&a\d|\*a\d/); // no YAML anchors for shared objects
    const { parse } = await import('yaml');
    const doc = parse(readFileSync(EXAMPLE, 'utf8')) as { clusters: Record<string, unknown[]> };
    const reversed = {
      clusters: {
        'cluster-b': [...doc.clusters['cluster-b']!].reverse(),
        'cluster-a': [...doc.clusters['cluster-a']!].reverse(),
      },
    };
    expect(stringify(explain(reversed), { aliasDuplicateObjects: false, lineWidth: 0 })).toBe(fromFile.stdout);
  });

  it('ServiceExport in a namespace with no Service: Valid=False NoService in the output', () => {
    const out = explain({
      clusters: {
        'cluster-a': [
          { kind: 'Namespace', metadata: { name: 'demo' } },
          { kind: 'ServiceExport', metadata: { name: 'ghost', namespace: 'demo' } },
        ],
      },
    }) as unknown as Output;
    const conditions = out.clusters['cluster-a']!.serviceExports[0]!.status.conditions;
    expect(conditions.find((c) => c.type === 'Valid')).toMatchObject({ status: 'False', reason: 'NoService' });
    expect(out.clusters['cluster-a']!.serviceImports).toEqual([]);
  });

  const malformed: [string, string, RegExp][] = [
    ['not YAML', 'clusters: [unclosed\n  - {', /InvalidInputError: .*not YAML or JSON/],
    ['clusters as a list', 'clusters:\n  - cluster-a\n', /InvalidInputError: input: clusters: must be a mapping/],
    [
      'a cluster section that is not a list',
      'clusters:\n  cluster-a: { kind: Service }\n',
      /cluster "cluster-a": must be a list/,
    ],
    ['an unknown top-level field', 'clusters: {}\nextra: 1\n', /unknown field "extra"/],
    [
      'a Service without ports',
      'clusters:\n  cluster-a:\n    - kind: Service\n      metadata: { name: web, namespace: demo }\n      spec: { type: ClusterIP }\n',
      /InvalidInputError: cluster "cluster-a": Service "demo\/web": spec.ports: must be a non-empty list/,
    ],
    [
      'a bad port number',
      'clusters:\n  a:\n    - kind: Service\n      metadata: { name: web }\n      spec: { ports: [{ port: 70000 }] }\n',
      /cluster "a": Service "default\/web": spec.ports\[0\].port: must be an integer/,
    ],
    [
      'an object without a name',
      'clusters:\n  a:\n    - kind: ServiceExport\n      metadata: { namespace: demo }\n',
      /cluster "a": ServiceExport "demo\/objects\[0\]": metadata.name: is required/,
    ],
    [
      'a bad creationTimestamp',
      "clusters:\n  a:\n    - kind: ServiceExport\n      metadata: { name: web, creationTimestamp: 'yesterday' }\n",
      /metadata.creationTimestamp: must be an RFC 3339 timestamp/,
    ],
    ['a bad cluster id', 'clusters:\n  Cluster_A: []\n', /cluster "Cluster_A": cluster id must be a DNS label/],
  ];

  for (const [what, text, message] of malformed) {
    it(`exits 2 with a named error and nothing on stdout for ${what}`, async () => {
      const run = await cli([file(`${what.replace(/\W+/g, '-')}.yaml`, text)]);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(message);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    });
  }

  it('exits 2 on bad usage', async () => {
    for (const args of [[], ['-o', 'xml', EXAMPLE], [EXAMPLE, 'other'], ['/nonexistent/file.yaml'], ['--frobnicate']]) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout).toBe('');
    }
  });
});
