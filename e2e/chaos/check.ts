// `npx tsx e2e/chaos/check.ts --dir DIR`: reads every cluster of the local ClusterSet in DIR, computes with the oracle
// what each must hold, and prints the differences as a table. Exit 0 when there are none, 1 when any, 2 on bad usage.
import { parseArgs } from 'node:util';
import { readState } from '../harness/clusterset.js';
import { table } from '../harness/wait.js';
import { diffState, expectedState, readGroundTruth } from './oracle.js';

const USAGE = `Usage: npx tsx e2e/chaos/check.ts [--dir DIR] [--withdrawn CLUSTER=ORIGIN[,ORIGIN…]]…

  --dir DIR        the ClusterSet directory (default .clusterset)
  --withdrawn C=O  origins O whose endpoints cluster C is expected to have withdrawn (repeatable)`;

function withdrawnOption(items: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const item of items) {
    const [cluster, origins] = item.split('=', 2);
    if (cluster === undefined || cluster === '' || origins === undefined)
      throw new Error(`--withdrawn ${item}: want C=O`);
    out.set(cluster, [...(out.get(cluster) ?? []), ...origins.split(',').filter((o) => o !== '')]);
  }
  return out;
}

async function main(argv: readonly string[]): Promise<number> {
  let values;
  let withdrawn: Map<string, string[]>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        dir: { type: 'string', default: '.clusterset' },
        withdrawn: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    withdrawn = withdrawnOption(values.withdrawn ?? []);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const state = await readState(values.dir);
  if (state === undefined) {
    process.stderr.write(`no ClusterSet in ${values.dir} (no state.json): start one with npm run clusterset -- up\n`);
    return 2;
  }
  const truth = await readGroundTruth(state.clusters.map((c) => ({ name: c.name, kubeconfig: c.kubeconfig })));
  const expected = expectedState(truth, { withdrawn });
  for (const c of expected.clusters) {
    const r = c.resolution;
    const derived = r.serviceImports.filter((si) => si.spec.type === 'ClusterSetIP').length;
    process.stdout.write(
      `${c.name} (id ${c.clusterId ?? 'none'}): expects ${r.serviceImports.length} ServiceImports, ${derived} derived ` +
        `Services, ${r.endpointSlices.length} imported EndpointSlices, conditions on ${r.exportConditions.length} ` +
        `ServiceExports\n`,
    );
  }
  const differences = diffState(expected, truth);
  if (differences.length > 0) {
    const rows = [['CLUSTER', 'KIND', 'NAMESPACE', 'NAME', 'WHAT', 'DETAIL']];
    for (const d of differences) rows.push([d.cluster, d.kind, d.namespace, d.name, d.what, d.detail]);
    process.stdout.write(`${table(rows)}\n`);
  }
  process.stdout.write(`${differences.length} difference${differences.length === 1 ? '' : 's'}\n`);
  return differences.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
