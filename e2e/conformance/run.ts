// `npm run conformance`: runs the MCS conformance specs (e2e/conformance/*.conformance.ts) against two clusters
// and prints a table of every spec: passed / failed / skipped with the reason.
//
// Without --kubeconfig it starts a local ClusterSet of 2 clusters with one mcs-gossip node each (and stops it
// afterwards); with --kubeconfig and --contexts it tests clusters you already run (first context exports).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { down, repoRoot, up } from '../harness/clusterset.js';
import { table } from '../harness/wait.js';

const USAGE = `Usage: npm run conformance -- [--kubeconfig FILE --contexts A,B] [--keep]

Runs the MCS API conformance specs against two clusters and prints passed / failed / skipped per spec.
  --kubeconfig FILE  clusters you already run (default: start a local ClusterSet of 2 clusters with nodes)
  --contexts A,B     the two contexts; A exports (required with --kubeconfig)
  --keep             leave the local ClusterSet running afterwards (in .clusterset-conformance/)
`;

interface AssertionResult {
  fullName: string;
  title: string;
  status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo';
  duration?: number | null;
  failureMessages?: string[];
}

async function runVitest(env: NodeJS.ProcessEnv, out: string): Promise<number> {
  const vitest = join(repoRoot, 'node_modules', '.bin', 'vitest');
  const args = ['run', '--project', 'conformance', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`];
  return new Promise((resolve, reject) => {
    const child = spawn(vitest, args, { cwd: repoRoot, env, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      contexts: { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  let kubeconfig = values.kubeconfig;
  let contexts = values.contexts;
  let dir: string | undefined;
  if (kubeconfig === undefined) {
    dir =
      values.keep === true
        ? join(repoRoot, '.clusterset-conformance')
        : await mkdtemp(join(tmpdir(), 'mcs-conformance-'));
    const state = await up({ dir, clusters: 2, nodes: true, dataPlane: true, clusterSetName: 'conformance' });
    kubeconfig = state.kubeconfig;
    contexts = state.clusters.map((c) => c.name).join(',');
  } else if (contexts === undefined || contexts.split(',').length < 2) {
    process.stderr.write('conformance: --contexts A,B (two contexts) is required with --kubeconfig\n');
    return 2;
  }
  const out = join(await mkdtemp(join(tmpdir(), 'mcs-conformance-report-')), 'report.json');
  try {
    const code = await runVitest(
      { ...process.env, MCS_CONFORMANCE_KUBECONFIG: kubeconfig, MCS_CONFORMANCE_CONTEXTS: contexts },
      out,
    );
    const report = JSON.parse(await readFile(out, 'utf8')) as {
      testResults: { assertionResults: AssertionResult[] }[];
    };
    const results = report.testResults.flatMap((f) => f.assertionResults);
    const rows = [['RESULT', 'SPEC', 'DETAIL']];
    for (const r of results) {
      const detail =
        r.status === 'failed' ? (r.failureMessages?.[0]?.split('\n')[0] ?? '') : `${Math.round(r.duration ?? 0)} ms`;
      rows.push([r.status.toUpperCase(), r.fullName.replace(/^MCS conformance /, ''), detail]);
    }
    const count = (s: string) => results.filter((r) => r.status === s).length;
    process.stdout.write(`\n${table(rows)}\n\n`);
    process.stdout.write(`contexts: ${contexts} (first exports)\n`);
    process.stdout.write(
      `conformance: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped\n`,
    );
    // Every spec must run: a skipped one (e.g. no kubeconfig reached the specs) fails the run.
    return code === 0 && count('passed') > 0 && count('skipped') === 0 ? 0 : 1;
  } finally {
    await rm(join(out, '..'), { recursive: true, force: true });
    if (dir !== undefined && values.keep !== true) {
      await down(dir);
      await rm(dir, { recursive: true, force: true });
    }
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`conformance: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
