/** The flags `status` and `diagnose` share, and the kubeconfig contexts they name. */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { UsageError } from '../usage-error.js';
import { parseDuration } from '../commands/run.js';

export type OutputFormat = 'table' | 'json' | 'yaml';
const FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

export interface FleetFlags {
  readonly kubeconfig?: string;
  /** `--context`, in the order given; empty: the current context (or every one with `allContexts`). */
  readonly contexts: readonly string[];
  readonly allContexts: boolean;
  /** Where the node pods are looked for; undefined: every namespace. */
  readonly namespace?: string;
  readonly output: OutputFormat;
  /** `status --wait`: poll until every context agrees. */
  readonly wait: boolean;
  readonly timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 120_000;

export const CONTEXT_FLAGS_USAGE = `  --kubeconfig FILE     kubeconfig [KUBECONFIG]; default ~/.kube/config
  --context NAME        a kubeconfig context, repeatable; default: the current context
  --all-contexts        every context of the kubeconfig (one per cluster of the ClusterSet)
  -n, --namespace NS    look for the node pods (label app.kubernetes.io/name=mcs-gossip) in NS only; default: all
  -o, --output FORMAT   table (default), json or yaml`;

/** Parses the flags of `command`; `--wait` and `--timeout` only when `withWait`. Throws UsageError. */
export function parseFleetFlags(argv: readonly string[], withWait: boolean): FleetFlags {
  let values: {
    kubeconfig?: string;
    context?: string[];
    'all-contexts'?: boolean;
    namespace?: string;
    output?: string;
    wait?: boolean;
    timeout?: string;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        kubeconfig: { type: 'string' },
        context: { type: 'string', multiple: true },
        'all-contexts': { type: 'boolean' },
        namespace: { type: 'string', short: 'n' },
        output: { type: 'string', short: 'o' },
        wait: { type: 'boolean' },
        timeout: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? String(err));
  }
  if (!withWait && values.wait !== undefined) throw new UsageError("Unknown option '--wait'");
  if (!withWait && values.timeout !== undefined) throw new UsageError("Unknown option '--timeout'");
  const output = values.output ?? 'table';
  if (!(FORMATS as readonly string[]).includes(output))
    throw new UsageError(`--output: "${output}" is not one of ${FORMATS.join(', ')}`);
  const contexts = values.context ?? [];
  if (contexts.some((c) => c.trim() === '')) throw new UsageError('--context: empty context name');
  if (values['all-contexts'] === true && contexts.length > 0)
    throw new UsageError('--context and --all-contexts exclude each other');
  if (values.namespace !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(values.namespace))
    throw new UsageError(`--namespace: "${values.namespace}" is not a namespace name`);
  if (values.kubeconfig === '') throw new UsageError('--kubeconfig: empty file name');
  if (values.timeout !== undefined && values.wait !== true) throw new UsageError('--timeout needs --wait');
  const timeoutMs = values.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration('timeout', values.timeout);
  return {
    ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
    contexts: [...new Set(contexts)],
    allContexts: values['all-contexts'] === true,
    ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
    output: output as OutputFormat,
    wait: values.wait === true,
    timeoutMs,
  };
}

/** One context to read: its name and a KubeConfig whose current context it is. */
export interface ContextTarget {
  readonly context: string;
  readonly kubeConfig: k8s.KubeConfig;
}

/** Loads the kubeconfig and returns the contexts the flags name. Throws UsageError naming the flag. */
export function loadContexts(flags: FleetFlags, env: NodeJS.ProcessEnv = process.env): ContextTarget[] {
  const file = flags.kubeconfig ?? env.KUBECONFIG;
  const flag = flags.kubeconfig !== undefined ? '--kubeconfig' : 'KUBECONFIG';
  if (file !== undefined && file !== '' && !file.includes(':') && !existsSync(file))
    throw new UsageError(`${flag}: ${file} does not exist`);
  const kc = new k8s.KubeConfig();
  try {
    if (flags.kubeconfig !== undefined) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message.split('\n')[0]}`);
  }
  const known = kc.getContexts().map((c) => c.name);
  let names: string[];
  if (flags.allContexts) {
    names = known;
    if (names.length === 0) throw new UsageError('--all-contexts: the kubeconfig has no contexts');
  } else if (flags.contexts.length > 0) {
    for (const c of flags.contexts)
      if (!known.includes(c)) throw new UsageError(`--context: no context "${c}" in the kubeconfig`);
    names = [...flags.contexts];
  } else {
    const current = kc.getCurrentContext();
    if (current === undefined || current === '' || !known.includes(current))
      throw new UsageError('--context: the kubeconfig has no current context (name one, or use --all-contexts)');
    names = [current];
  }
  return names.map((context) => {
    const one = new k8s.KubeConfig();
    one.loadFromOptions({
      clusters: kc.clusters,
      users: kc.users,
      contexts: kc.contexts,
      currentContext: context,
    });
    if (one.getCurrentCluster() === null) throw new UsageError(`--context: context "${context}" names no cluster`);
    return { context, kubeConfig: one };
  });
}
