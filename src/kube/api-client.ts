/**
 * API clients that reuse their connections. `KubeConfig.makeApiClient` of client-node 2.0 gives every request a new
 * undici Agent, so every request opens (and handshakes) a TLS connection of its own: ~18 ms per write on a local API
 * server, three times the write itself. The clients made here share one Agent per KubeConfig (its pool keeps
 * connections alive, as client-go's transport does), renewed when the cluster or user configuration changes and every
 * few minutes (so rotated client certificate files are picked up). Authentication (tokens, exec plugins) is still
 * client-node's, applied per request.
 */
import * as k8s from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<k8s.RequestContext['getDispatcher']>>;

/** A pooled Agent is replaced after this long (a client certificate file may have been rotated). */
const RECYCLE_MS = 5 * 60_000;

class PooledAuthentication implements k8s.SecurityAuthentication {
  readonly #kc: k8s.KubeConfig;
  #pool: { key: string; dispatcher: Dispatcher; since: number } | undefined;

  constructor(kc: k8s.KubeConfig) {
    this.#kc = kc;
  }

  getName(): string {
    return 'kubeconfig authentication, pooled connections';
  }

  async applySecurityAuthentication(context: k8s.RequestContext): Promise<void> {
    await this.#kc.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (fresh === undefined) return; // plain HTTP: fetch's global pool already keeps connections
    const key = this.#configKey();
    const now = Date.now();
    const pool = this.#pool;
    if (pool !== undefined && pool.key === key && now - pool.since < RECYCLE_MS) {
      context.setDispatcher(pool.dispatcher);
      void fresh.close().catch(() => {}); // never used: closes at once
      return;
    }
    this.#pool = { key, dispatcher: fresh, since: now };
    // A request may have taken the old pool and not be sent yet: it closes a minute later (requests in flight finish).
    if (pool !== undefined) setTimeout(() => void pool.dispatcher.close().catch(() => {}), 60_000).unref();
  }

  /** What the Agent is made of: the current cluster and user (their TLS material and where it comes from). */
  #configKey(): string {
    const c = this.#kc.getCurrentCluster();
    const u = this.#kc.getCurrentUser();
    return JSON.stringify([
      c?.name,
      c?.server,
      c?.caData,
      c?.caFile,
      c?.skipTLSVerify,
      c?.tlsServerName,
      c?.proxyUrl,
      u?.name,
      u?.certData,
      u?.certFile,
      u?.keyData,
      u?.keyFile,
    ]);
  }
}

const pooled = new WeakMap<k8s.KubeConfig, PooledAuthentication>();

/** `kc.makeApiClient(type)`, with connections reused across requests (see the module comment). */
export function apiClient<T extends k8s.ApiType>(kc: k8s.KubeConfig, type: k8s.ApiConstructor<T>): T {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  let auth = pooled.get(kc);
  if (auth === undefined) {
    auth = new PooledAuthentication(kc);
    pooled.set(kc, auth);
  }
  const config = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: auth },
  });
  return new type(config);
}
