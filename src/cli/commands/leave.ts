import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import type { Command } from '../command.js';
import { UsageError } from '../usage-error.js';
import { parseDuration } from './run.js';
import {
  ABOUT_GROUP,
  ABOUT_VERSION,
  CLUSTER_ID_PROPERTY,
  CLUSTERSET_PROPERTY,
  LEFT_ANNOTATION,
  PEER_PROPERTY,
} from '../../kube/constants.js';
import { describeError } from '../../kube/errors.js';

const USAGE = `Usage: mcs-gossip leave [--kubeconfig FILE] [--context NAME] [--wait DURATION]

Takes this cluster out of its ClusterSet for good: deletes the ClusterProperty clusterset.k8s.io (KEP-2149: it exists
only while the cluster is a member), upon which the running node withdraws every export of this cluster from every
cluster of the ClusterSet (a signed leave that no stale peer can undo) and stops gossiping. Waits until the node
confirms on the ClusterProperty peer.mcs-gossip.x-k8s.io. Run it before \`helm uninstall\`, or before moving the
cluster to another ClusterSet; re-join by creating clusterset.k8s.io again.

  --kubeconfig FILE   kubeconfig [KUBECONFIG]; default ~/.kube/config
  --context NAME      kubeconfig context; default: the current context
  --wait DURATION     how long to wait for the node's confirmation; default 60s (0: do not wait)

Exit codes: 0 left (confirmed), 1 the node did not confirm in time or the API failed, 2 bad flags.`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isNotFound(err: unknown): boolean {
  return err instanceof k8s.ApiException && err.code === 404;
}

export const leave: Command = {
  name: 'leave',
  summary: 'take this cluster out of its ClusterSet (its exports are withdrawn everywhere)',
  usage: USAGE,
  async run(argv) {
    let values: { kubeconfig?: string; context?: string; wait?: string };
    try {
      ({ values } = parseArgs({
        args: [...argv],
        options: { kubeconfig: { type: 'string' }, context: { type: 'string' }, wait: { type: 'string' } },
        strict: true,
        allowPositionals: false,
      }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const wait =
      values.wait === undefined ? 60_000 : values.wait.trim() === '0' ? 0 : parseDuration('wait', values.wait);
    const file = values.kubeconfig ?? process.env.KUBECONFIG;
    if (file !== undefined && !file.includes(':') && !existsSync(file)) {
      throw new UsageError(`--kubeconfig: ${file} does not exist`);
    }
    const kc = new k8s.KubeConfig();
    try {
      if (values.kubeconfig !== undefined) kc.loadFromFile(values.kubeconfig);
      else kc.loadFromDefault();
      if (values.context !== undefined) {
        if (kc.getContextObject(values.context) === null)
          throw new UsageError(`--context: no context "${values.context}"`);
        kc.setCurrentContext(values.context);
      }
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`--kubeconfig: ${(err as Error).message}`);
    }
    if (kc.getCurrentCluster() === null) throw new UsageError('no Kubernetes cluster configured (see --kubeconfig)');
    const api = kc.makeApiClient(k8s.CustomObjectsApi);
    const params = { group: ABOUT_GROUP, version: ABOUT_VERSION, plural: 'clusterproperties' };
    const value = async (name: string): Promise<string | undefined> => {
      try {
        return ((await api.getClusterCustomObject({ ...params, name })) as { spec?: { value?: string } }).spec?.value;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    };
    try {
      const clusterSet = await value(CLUSTERSET_PROPERTY);
      const clusterId = (await value(CLUSTER_ID_PROPERTY)) ?? '(no cluster id)';
      if (clusterSet === undefined) {
        process.stderr.write(
          `mcs-gossip leave: this cluster is in no ClusterSet (ClusterProperty ${CLUSTERSET_PROPERTY} not found)\n`,
        );
        return 1;
      }
      const since = Date.now();
      await api.deleteClusterCustomObject({ ...params, name: CLUSTERSET_PROPERTY });
      process.stdout.write(`deleted ClusterProperty ${CLUSTERSET_PROPERTY} (${clusterSet}); waiting for the node\n`);
      const deadline = since + wait;
      while (wait > 0) {
        const peer = await api
          .getClusterCustomObject({ ...params, name: PEER_PROPERTY })
          .catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
        const mark = (peer as { metadata?: { annotations?: Record<string, string> } } | undefined)?.metadata
          ?.annotations?.[LEFT_ANNOTATION];
        const [set, at, how] = (mark ?? '').split(' ');
        if (set === clusterSet && at !== undefined && Date.parse(at) >= since - 5_000) {
          if (how === 'undelivered') {
            process.stderr.write(
              `mcs-gossip leave: ${clusterId} left ClusterSet ${clusterSet}, but its node could reach no peer: the others withdraw its exports only when they forget it (--origin-horizon)\n`,
            );
            return 1;
          }
          process.stdout.write(`${clusterId} left ClusterSet ${clusterSet}: its exports are withdrawn everywhere\n`);
          return 0;
        }
        if (Date.now() > deadline) {
          process.stderr.write(
            `mcs-gossip leave: the node did not confirm within ${Math.round(wait / 1000)}s; it leaves as soon as it runs (see its logs)\n`,
          );
          return 1;
        }
        await sleep(500);
      }
      return 0;
    } catch (err) {
      process.stderr.write(`mcs-gossip leave: ${describeError(err)}\n`);
      return 1;
    }
  },
};
