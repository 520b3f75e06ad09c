// The workload the chaos scenarios disturb: Deployments (kwok pods), Services and ServiceExports in one namespace of
// every cluster, and the changes scenarios make while a fault lasts (scaling, new exports, removed exports).
import * as k8s from '@kubernetes/client-node';
import type { ClusterSetState } from '../harness/clusterset.js';
import { admin, deployWeb, ensureNamespace, exportService, unexportService } from '../tests/kube-helpers.js';

export const NAMESPACE = 'chaos';
/** Exported by cluster-1 and cluster-2: one import with two source clusters. */
export const SHARED = 'shared';

type Admin = ReturnType<typeof admin>;

/** Rejects after `ms`: the client takes no deadline, and a hung API server (etcd down) must not hang a scenario. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const CALL_MS = 20_000;

/** What one round of changes did in one cluster (service names). */
export interface Changes {
  readonly cluster: string;
  readonly scaled: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Changes that failed (e.g. the API server was down): text. */
  readonly failed: readonly string[];
}

export function describeChanges(c: Changes): string {
  const parts = [
    ...c.scaled.map((s) => `scaled ${s}`),
    ...c.added.map((s) => `+export ${s}`),
    ...c.removed.map((s) => `-export ${s}`),
    ...c.failed.map((s) => `FAILED ${s}`),
  ];
  return `${c.cluster}: ${parts.join(', ') || 'nothing'}`;
}

export interface ChangeOptions {
  readonly scale?: boolean;
  readonly add?: boolean;
  readonly remove?: boolean;
}

export class Workload {
  readonly #admins = new Map<string, Admin>();
  /** Per cluster, its exports that a scenario may remove, oldest first (never the seeded permanent ones). */
  readonly #removable = new Map<string, string[]>();
  readonly #replicas = new Map<string, number>();
  /** Every `cluster/name` created, so a new export never collides with an existing Service. */
  readonly #names = new Set<string>();

  constructor(
    private readonly harness: ClusterSetState,
    private readonly log: (line: string) => void,
  ) {}

  get clusters(): string[] {
    return this.harness.clusters.map((c) => c.name);
  }

  admin(cluster: string): Admin {
    let a = this.#admins.get(cluster);
    if (a === undefined) {
      a = admin(this.harness, cluster);
      this.#admins.set(cluster, a);
    }
    return a;
  }

  /** The short prefix of a cluster's service names: cluster-2 → c2. */
  static prefix(cluster: string): string {
    return cluster.replace(/^cluster-/, 'c');
  }

  /** Namespaces everywhere; per cluster an exported `cN-a` (2 pods), `cN-b` (1) and `cN-r0` (removable); shared. */
  async seed(): Promise<void> {
    for (const c of this.clusters) await withTimeout(ensureNamespace(this.admin(c).core, NAMESPACE), 60_000, 'ns');
    for (const [i, c] of this.clusters.entries()) {
      const p = Workload.prefix(c);
      await this.addExport(c, `${p}-a`, 2, false);
      this.#replicas.set(`${c}/${p}-a`, 2);
      await this.addExport(c, `${p}-b`, 1, false);
      await this.addExport(c, `${p}-r0`, 1, true);
      if (i < 2) await this.addExport(c, SHARED, 1, false);
    }
    this.log(`seeded ${NAMESPACE}: ${this.clusters.length * 3 + 2} exports (${SHARED} from cluster-1 and cluster-2)`);
  }

  /** A Deployment, its Service and a ServiceExport of it. */
  async addExport(cluster: string, name: string, replicas = 1, removable = true): Promise<void> {
    const a = this.admin(cluster);
    this.#names.add(`${cluster}/${name}`);
    await withTimeout(deployWeb(a, NAMESPACE, name, replicas), CALL_MS, `deploy ${cluster}/${name}`);
    await withTimeout(exportService(a, NAMESPACE, name), CALL_MS, `export ${cluster}/${name}`);
    if (removable) this.#removable.set(cluster, [...(this.#removable.get(cluster) ?? []), name]);
  }

  /** Deletes the ServiceExport of the cluster's oldest removable export (its Service stays); its name, if any. */
  async removeOldest(cluster: string): Promise<string | undefined> {
    const pool = this.#removable.get(cluster) ?? [];
    const name = pool[0];
    if (name === undefined) return undefined;
    await withTimeout(unexportService(this.admin(cluster), NAMESPACE, name), CALL_MS, `unexport ${cluster}/${name}`);
    this.#removable.set(cluster, pool.slice(1));
    return name;
  }

  /** Sets the replicas of a Deployment (read + replace of the scale subresource, retried on conflicts). */
  async scale(cluster: string, name: string, replicas: number): Promise<void> {
    const apps = this.admin(cluster).apps;
    for (let attempt = 0; ; attempt++) {
      try {
        const scale = await withTimeout(
          apps.readNamespacedDeploymentScale({ name, namespace: NAMESPACE }),
          CALL_MS,
          `read scale ${cluster}/${name}`,
        );
        await withTimeout(
          apps.replaceNamespacedDeploymentScale({
            name,
            namespace: NAMESPACE,
            body: { ...scale, spec: { ...scale.spec, replicas } },
          }),
          CALL_MS,
          `scale ${cluster}/${name}`,
        );
        this.#replicas.set(`${cluster}/${name}`, replicas);
        return;
      } catch (err) {
        if (!(err instanceof k8s.ApiException && err.code === 409) || attempt >= 4) throw err;
      }
    }
  }

  /** `cN-<tag>`, or `cN-<tag>-2`… when that Service exists already. */
  freshName(cluster: string, tag: string): string {
    const base = `${Workload.prefix(cluster)}-${tag}`;
    let name = base;
    for (let i = 2; this.#names.has(`${cluster}/${name}`); i++) name = `${base}-${i}`;
    return name;
  }

  /** Scales the cluster's `cN-a` to the next count of 1…4. */
  async scaleNext(cluster: string): Promise<string> {
    const name = `${Workload.prefix(cluster)}-a`;
    const next = ((this.#replicas.get(`${cluster}/${name}`) ?? 2) % 4) + 1;
    await this.scale(cluster, name, next);
    return `${name}→${next}`;
  }

  /**
   * One round of changes in a cluster: scale `cN-a`, unexport the oldest removable export, export a new service
   * `cN-<tag>`. A failing change (API down) is recorded, not thrown: the scenario goes on.
   */
  async changes(cluster: string, tag: string, options: ChangeOptions = {}): Promise<Changes> {
    const scaled: string[] = [];
    const added: string[] = [];
    const removed: string[] = [];
    const failed: string[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        failed.push(`${what} (${(err as Error).message.split('\n')[0]})`);
      }
    };
    if (options.scale !== false) await attempt('scale', async () => void scaled.push(await this.scaleNext(cluster)));
    // Removed before the new one is added: what goes is always an export that existed before this round.
    if (options.remove !== false)
      await attempt('unexport', async () => {
        const gone = await this.removeOldest(cluster);
        if (gone !== undefined) removed.push(gone);
      });
    const name = this.freshName(cluster, tag);
    if (options.add !== false)
      await attempt(`export ${name}`, async () => {
        await this.addExport(cluster, name);
        added.push(name);
      });
    const result = { cluster, scaled, added, removed, failed };
    this.log(`  changes ${describeChanges(result)}`);
    return result;
  }
}
