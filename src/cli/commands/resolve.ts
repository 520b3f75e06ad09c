import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { Command } from '../command.js';
import { UsageError } from '../usage-error.js';
import {
  ClusterSetState,
  exportRecordsFromObjects,
  InvalidInputError,
  MCS_API_VERSION,
  parseClusterSetInput,
  resolve,
  serviceKey,
  withTransitionTimes,
} from '../../core/index.js';
import type { ExportConditions, ServiceExportObject } from '../../core/index.js';

/**
 * The `lastTransitionTime` of every condition that changed: offline there is no "now" worth printing, and a fixed
 * value keeps the output byte-for-byte deterministic. Conditions given in the input keep their time when unchanged.
 */
export const OFFLINE_TRANSITION_TIME = '1970-01-01T00:00:00Z';

const usage = `Usage: mcs-gossip resolve FILE|- [-o yaml|json]

Explains what every cluster of a ClusterSet imports, offline. Reads a YAML or JSON document
  { clusters: { <clusterId>: [ Namespace, Service, ServiceExport, EndpointSlice objects … ] } }
(FILE, or stdin for "-") and prints, sorted and deterministic,
  { clusters: { <clusterId>: { serviceImports, endpointSlices, serviceExports } } }
with each cluster's ServiceImports, imported EndpointSlices and ServiceExports with their Valid, Ready and
Conflict conditions. ClusterSetIPs are allocated at run time, so spec.ips is empty here; lastTransitionTime is
${OFFLINE_TRANSITION_TIME} for conditions that changed.

Flags:
  -o, --output yaml|json   output format (default yaml)

Exit status: 0 on success, 2 on a usage or input error (nothing on stdout).`;

interface Args {
  readonly file: string;
  readonly output: 'yaml' | 'json';
}

function parseArgs(argv: readonly string[]): Args {
  let file: string | undefined;
  let output: 'yaml' | 'json' = 'yaml';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-o' || arg === '--output' || arg.startsWith('--output=') || (arg.startsWith('-o') && arg.length > 2)) {
      const value = arg.includes('=')
        ? arg.slice(arg.indexOf('=') + 1)
        : arg.length > 2 && arg.startsWith('-o')
          ? arg.slice(2)
          : argv[++i];
      if (value !== 'yaml' && value !== 'json')
        throw new UsageError(`-o must be "yaml" or "json", got ${JSON.stringify(value ?? '')}`);
      output = value;
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown flag "${arg}" (see mcs-gossip resolve --help)`);
    } else if (file === undefined) {
      file = arg;
    } else {
      throw new UsageError(`unexpected argument "${arg}": give one FILE or "-"`);
    }
  }
  if (file === undefined) throw new UsageError('missing FILE (or "-" for stdin)');
  return { file, output };
}

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file === '-' ? 'stdin' : file}: ${(err as Error).message}`);
  }
}

function parseDocument(text: string, file: string): unknown {
  try {
    return parse(text);
  } catch (err) {
    const first = ((err as Error).message.split('\n')[0] ?? '').trim();
    throw new UsageError(`InvalidInputError: ${file === '-' ? 'stdin' : file}: not YAML or JSON: ${first}`);
  }
}

/** The explanation of a whole ClusterSet: pure apart from reading `text`, so tests call it directly. */
export function explain(doc: unknown): { clusters: Record<string, unknown> } {
  const clusters = parseClusterSetInput(doc);
  const state = new ClusterSetState();
  const locals = clusters.map((c) => {
    const local = exportRecordsFromObjects(c.clusterId, c);
    state.merge(local.records);
    return { input: c, local };
  });
  const out: Record<string, unknown> = {};
  for (const { input, local } of locals) {
    const resolution = resolve(state, {
      localCluster: input.clusterId,
      namespaces: input.namespaceNames,
      localExports: local.exports,
    });
    const conditionsByKey = new Map<string, ExportConditions>(
      resolution.exportConditions.map((e) => [serviceKey(e.namespace, e.name), e]),
    );
    const serviceExports = [...input.serviceExports]
      .filter((se) => se.metadata.deletionTimestamp === undefined)
      .sort((a, b) => {
        const ka = serviceKey(a.metadata.namespace ?? '', a.metadata.name ?? '');
        const kb = serviceKey(b.metadata.namespace ?? '', b.metadata.name ?? '');
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      })
      .map((se): ServiceExportObject => {
        const key = serviceKey(se.metadata.namespace ?? '', se.metadata.name ?? '');
        const conditions = withTransitionTimes(
          conditionsByKey.get(key)?.conditions ?? [],
          se.status?.conditions,
          OFFLINE_TRANSITION_TIME,
        );
        return {
          apiVersion: se.apiVersion ?? MCS_API_VERSION,
          kind: 'ServiceExport',
          metadata: se.metadata,
          ...(se.spec === undefined ? {} : { spec: se.spec }),
          status: { conditions },
        };
      });
    out[input.clusterId] = {
      serviceImports: resolution.serviceImports,
      endpointSlices: resolution.endpointSlices,
      serviceExports,
    };
  }
  return { clusters: out };
}

export const resolveCommand: Command = {
  name: 'resolve',
  summary: 'explain what every cluster imports, from a file of Kubernetes objects (offline)',
  usage,
  async run(argv) {
    const args = parseArgs(argv);
    const doc = parseDocument(readInput(args.file), args.file);
    let result: { clusters: Record<string, unknown> };
    try {
      result = explain(doc);
    } catch (err) {
      if (err instanceof InvalidInputError) throw new UsageError(`${err.name}: ${err.message}`);
      throw err;
    }
    // Imported slices share endpoint objects with the records: never let YAML turn that into anchors.
    const text =
      args.output === 'json'
        ? JSON.stringify(result, null, 2) + '\n'
        : stringify(result, { aliasDuplicateObjects: false, lineWidth: 0 });
    process.stdout.write(text);
    return 0;
  },
};
