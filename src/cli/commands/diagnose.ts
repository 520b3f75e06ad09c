import type { Command } from '../command.js';
import { exitCodeOf, formatCheck, runChecks, worstLevel } from '../fleet/checks.js';
import { collectContext, collectDiagnostics } from '../fleet/collect.js';
import { CONTEXT_FLAGS_USAGE, loadContexts, parseFleetFlags } from '../fleet/flags.js';
import { formatDocument } from './status.js';

const USAGE = `Usage: mcs-gossip diagnose [--context NAME]... [--all-contexts] [flags]
       kubectl mcs diagnose [flags]

Checks the ClusterSet through each given context's API server and prints one line per finding:
\`PASS|WARN|FAIL <check>: <finding> — <fix>\`. The checks: identity (ClusterProperties readable and valid, cluster
ids unique, one ClusterSet name), node (a Running pod found, reachable, ready), peers (every other cluster alive as
each node sees it), versions (of the alive clusters: same major, minors at most one apart, wire versions in range;
no peer refused), access (a WARN per list that failed, e.g. forbidden: the checks needing it skip that cluster),
export-service (a ServiceExport without its Service), namespace (an exported namespace missing in a cluster),
conflict, coredns (the Corefile has \`multicluster clusterset.local\`), coredns-rbac (CoreDNS may list and watch
ServiceImports), cidrs (no pod CIDR overlaps another cluster's pod or service CIDR; overlapping service CIDRs only
WARN), ttl (endpoint TTL at least 3 × the heartbeat interval).

${CONTEXT_FLAGS_USAGE}

Exit codes: 0 every check passed, 1 the worst finding is a WARN, 3 something FAILed, 2 bad flags.`;

export const diagnose: Command = {
  name: 'diagnose',
  summary: 'check the ClusterSet for known problems, each with its fix, from kubeconfig contexts',
  usage: USAGE,
  async run(argv) {
    const flags = parseFleetFlags(argv, false);
    const targets = loadContexts(flags);
    const contexts = await Promise.all(
      targets.map(async (t) => collectDiagnostics(t, await collectContext(t, flags.namespace))),
    );
    const results = runChecks(contexts);
    const doc = { worst: worstLevel(results), checks: results };
    process.stdout.write(formatDocument(doc, flags.output, () => results.map(formatCheck).join('\n')) + '\n');
    return exitCodeOf(results);
  },
};
