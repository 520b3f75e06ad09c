// `npm run clusterset -- <up|down|env|status>`: the local ClusterSet of real control planes, as a command.
import { parseArgs } from 'node:util';
import { COMPONENTS, down, readState, runningComponents, toolsBin, up, type ClusterSetState } from './clusterset.js';
import { isAlive } from './process.js';
import { table } from './wait.js';

const USAGE = `Usage: npm run clusterset -- <command> [flags]

A local ClusterSet of real Kubernetes control planes (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) built from Go modules, as local processes. No Docker needed.

Commands:
  up      start N clusters (cluster-1 … cluster-N) and wait until every one is ready
  down    stop exactly what \`up\` started
  env     print shell exports for kubectl: eval "$(npm run -s clusterset -- env)"
  status  a table of clusters and components, up/down, with log paths

Flags:
  --dir DIR          where state, kubeconfig, data and logs live (default .clusterset)
  --clusters N       up: number of clusters, 1–20 (default 2)
  --name NAME        up: the ClusterSet name, the value of ClusterProperty clusterset.k8s.io
                     (default local-clusterset)
  --timeout SECONDS  up: give up (and clean up) after this long (default 180)
  --nodes            up: also run one mcs-gossip node per cluster (127.0.0.<i+1>; keys generated into DIR)
  --data-plane       up: Pods that run, kube-proxy and CoreDNS per cluster in routed network namespaces, so
                     kubectl exec/logs work and a Pod reaches other clusters' Pods and Services (root only)
  --extra-args C=F   up: extra flag F for component C (repeatable), e.g. kube-apiserver=-v=4 or
                     mcs-gossip=--endpoint-ttl=10s
  -h, --help         this help
`;

class UsageError extends Error {}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: '.clusterset' },
      clusters: { type: 'string', default: '2' },
      name: { type: 'string' },
      timeout: { type: 'string', default: '180' },
      'extra-args': { type: 'string', multiple: true },
      nodes: { type: 'boolean' },
      'data-plane': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  return { values, positionals };
}

function wholeNumber(flag: string, raw: string, min: number, max: number): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function extraArgs(list: string[] | undefined) {
  const out: Record<string, string[]> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--extra-args takes COMPONENT=FLAG, got "${item}"`);
    (out[item.slice(0, i)] ??= []).push(item.slice(i + 1));
  }
  const known: readonly string[] = COMPONENTS;
  for (const c of Object.keys(out)) {
    if (!known.includes(c)) throw new UsageError(`--extra-args: unknown component "${c}" (one of ${known.join(', ')})`);
  }
  return out;
}

function statusTable(state: ClusterSetState): string {
  const rows = [['CLUSTER', 'COMPONENT', 'STATE', 'PID', 'PORT', 'LOG']];
  const nodes = [['CLUSTER', 'PEER ID', 'GOSSIP ADDRESS', 'HEALTH']];
  for (const c of state.clusters) {
    for (const p of c.components) {
      rows.push([c.name, p.name, isAlive(p) ? 'up' : 'down', String(p.pid), String(p.port), p.log]);
      if (p.peerId !== undefined) nodes.push([c.name, p.peerId, p.listen ?? '', p.health]);
    }
  }
  return nodes.length > 1 ? `${table(rows)}\n\nmcs-gossip nodes:\n${table(nodes)}` : table(rows);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...rest] = positionals;
  if (values.help === true || command === undefined) {
    process.stdout.write(USAGE);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const dir = values.dir;
  switch (command) {
    case 'up': {
      const clusters = wholeNumber('--clusters', values.clusters, 1, 20);
      const timeoutMs = wholeNumber('--timeout', values.timeout, 1, 3600) * 1000;
      // Ctrl-C (or SIGTERM) stops what `up` started so far instead of leaving it running unrecorded.
      const interrupt = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        process.stderr.write(`clusterset: ${sig}: stopping what up started\n`);
        interrupt.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const state = await up({
        signal: interrupt.signal,
        dir,
        clusters,
        clusterSetName: values.name,
        timeoutMs,
        extraArgs: extraArgs(values['extra-args']),
        nodes: values.nodes === true,
        dataPlane: values['data-plane'] === true,
      });
      process.stdout.write(statusTable(state) + '\n\n');
      process.stdout.write(
        `kubeconfig: ${state.kubeconfig} (contexts ${state.clusters.map((c) => c.name).join(', ')})\n`,
      );
      process.stdout.write(
        `Use it:     eval "$(npm run -s clusterset -- env${dir === '.clusterset' ? '' : ` --dir ${dir}`})"\n`,
      );
      return 0;
    }
    case 'down': {
      const state = await readState(dir);
      if (state === undefined) {
        process.stdout.write(`no ClusterSet in ${dir}: nothing to stop\n`);
        return 0;
      }
      const n = await down(dir);
      process.stdout.write(`stopped ${n} processes of ${state.clusters.length} clusters in ${state.dir}\n`);
      return 0;
    }
    case 'env': {
      const state = await readState(dir);
      if (state === undefined) {
        process.stderr.write(`no ClusterSet in ${dir}: run \`npm run clusterset -- up\` first\n`);
        return 1;
      }
      process.stdout.write(`export KUBECONFIG='${state.kubeconfig}' PATH='${toolsBin}':"$PATH"\n`);
      return 0;
    }
    case 'status': {
      const state = await readState(dir);
      if (state === undefined) {
        process.stdout.write(`no ClusterSet in ${dir}\n`);
        return 1;
      }
      const alive = runningComponents(state).length;
      const total = state.clusters.reduce((n, c) => n + c.components.length, 0);
      process.stdout.write(
        `ClusterSet "${state.clusterSetName}" in ${state.dir}: ${alive}/${total} processes up, kubeconfig ${state.kubeconfig}\n\n`,
      );
      process.stdout.write(statusTable(state) + '\n');
      return alive === total ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "${command}" (up, down, env, status)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      err instanceof RangeError ||
      String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`clusterset: ${(err as Error).message}\n`);
      process.exitCode = 2;
    } else if (err instanceof Error && err.name === 'AbortError') {
      process.stderr.write('clusterset: up interrupted; everything it started was stopped\n');
      process.exitCode = 130;
    } else {
      process.stderr.write(`clusterset: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
