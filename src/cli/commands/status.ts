import YAML from 'yaml';
import type { Command } from '../command.js';
import { collectContext } from '../fleet/collect.js';
import { CONTEXT_FLAGS_USAGE, loadContexts, parseFleetFlags, type OutputFormat } from '../fleet/flags.js';
import { renderStatus, statusDocument, type StatusDocument } from '../fleet/status-view.js';

const USAGE = `Usage: mcs-gossip status [--context NAME]... [--all-contexts] [flags]
       kubectl mcs status [flags]

Shows the ClusterSet as each given context's node sees it, read through each API server (the node's /status through
the pod proxy: no port-forward): cluster id, ClusterSet, version, PeerId, leader, readiness and its reason; every
cluster each node knows with liveness, heartbeat age and version; per service its ServiceExports and their
conditions, its ServiceImport (type, IPs, ports, source clusters) and conflicts. RBAC: docs/status.md.

${CONTEXT_FLAGS_USAGE}
  --wait                poll until every context agrees: every read succeeded, every node reachable and ready,
                        every node sees exactly the contexts' clusters alive, every exported service imported
                        alike (type, ports, source clusters) in every context that has its namespace
  --timeout DURATION    how long --wait waits; default 2m (500ms, 10s, 2m, 1h)

Exit codes: 0 every node answered and everything was read (with --wait: every context agrees), 1 a node or API
server unreachable or a read failed, e.g. a forbidden list, named under the table (with --wait: not agreed at the
timeout), 2 bad flags.`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function formatDocument(doc: unknown, output: OutputFormat, table: () => string): string {
  if (output === 'json') return JSON.stringify(doc, null, 2);
  if (output === 'yaml') return YAML.stringify(doc).trimEnd();
  return table();
}

export const status: Command = {
  name: 'status',
  summary: 'show every cluster, peer, export and import of the ClusterSet, from kubeconfig contexts',
  usage: USAGE,
  async run(argv) {
    const flags = parseFleetFlags(argv, true);
    const targets = loadContexts(flags);
    const deadline = Date.now() + flags.timeoutMs;
    let doc: StatusDocument;
    let said = '';
    for (;;) {
      const reports = await Promise.all(targets.map((t) => collectContext(t, flags.namespace)));
      doc = statusDocument(reports);
      if (!flags.wait || doc.agreed || Date.now() >= deadline) break;
      const first = doc.problems[0] ?? '';
      if (first !== said) process.stderr.write(`waiting: ${first}\n`);
      said = first;
      await sleep(Math.min(2000, Math.max(0, deadline - Date.now())));
    }
    process.stdout.write(formatDocument(doc, flags.output, () => renderStatus(doc)) + '\n');
    if (flags.wait) return doc.agreed ? 0 : 1;
    // A read that failed (a forbidden list) is as bad as a node that did not answer: what it hides is unknown.
    return doc.clusters.every((c) => c.reachable && c.readErrors.length === 0) ? 0 : 1;
  },
};
