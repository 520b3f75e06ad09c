import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Command } from '../command.js';
import { packageVersion } from './version.js';
import { UsageError } from '../usage-error.js';
import { GossipConfigError } from '../../gossip/errors.js';
import { parseBootstrapEntry } from '../../gossip/index.js';
import { loadIdentityKey, loadPsk } from '../../gossip/keys.js';
import {
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_LEASE_NAME,
  DEFAULT_LEASE_RENEW_DEADLINE_MS,
  DEFAULT_LEASE_RETRY_MS,
} from '../../kube/index.js';
import { checkLeaseTimings } from '../../kube/leader-election.js';
import { createMcsNode, HealthServer } from '../../node/index.js';

/** Flag name → environment variable (each flag can also come from the environment; the flag wins). */
const ENV: Record<string, string> = {
  kubeconfig: 'KUBECONFIG',
  context: 'MCS_GOSSIP_CONTEXT',
  listen: 'MCS_GOSSIP_LISTEN',
  announce: 'MCS_GOSSIP_ANNOUNCE',
  'announce-from-service': 'MCS_GOSSIP_ANNOUNCE_FROM_SERVICE',
  'node-ip': 'MCS_GOSSIP_NODE_IP',
  'identity-key': 'MCS_GOSSIP_IDENTITY_KEY',
  'previous-identity-key': 'MCS_GOSSIP_PREVIOUS_IDENTITY_KEY',
  'clusterset-key': 'MCS_GOSSIP_CLUSTERSET_KEY',
  bootstrap: 'MCS_GOSSIP_BOOTSTRAP',
  'metrics-addr': 'MCS_GOSSIP_METRICS_ADDR',
  'endpoint-ttl': 'MCS_GOSSIP_ENDPOINT_TTL',
  'heartbeat-interval': 'MCS_GOSSIP_HEARTBEAT_INTERVAL',
  'sync-interval': 'MCS_GOSSIP_SYNC_INTERVAL',
  'origin-horizon': 'MCS_GOSSIP_ORIGIN_HORIZON',
  'tombstone-horizon': 'MCS_GOSSIP_TOMBSTONE_HORIZON',
  'log-level': 'MCS_GOSSIP_LOG_LEVEL',
  'leader-elect': 'MCS_GOSSIP_LEADER_ELECT',
  'lease-namespace': 'POD_NAMESPACE',
  'lease-name': 'MCS_GOSSIP_LEASE_NAME',
  'lease-identity': 'POD_NAME',
  'lease-duration': 'MCS_GOSSIP_LEASE_DURATION',
  'lease-renew-deadline': 'MCS_GOSSIP_LEASE_RENEW_DEADLINE',
  'lease-retry-period': 'MCS_GOSSIP_LEASE_RETRY_PERIOD',
};

const USAGE = `Usage: mcs-gossip run --identity-key FILE --clusterset-key FILE [flags]

Runs this cluster's node: watches local ServiceExports, gossips them to the ClusterSet, and writes ServiceImports,
derived Services, imported EndpointSlices and ServiceExport conditions. Every flag can also be set through the
environment variable in brackets (lists comma-separated); a flag wins over its variable.

Kubernetes:
  --kubeconfig FILE         kubeconfig [KUBECONFIG]; default: in-cluster config when running in a pod, else ~/.kube/config
  --context NAME            kubeconfig context [MCS_GOSSIP_CONTEXT]; default: the current context
Gossip:
  --identity-key FILE       Ed25519 identity key from \`mcs-gossip keygen\` [MCS_GOSSIP_IDENTITY_KEY] (required)
  --clusterset-key FILE     ClusterSet key from \`mcs-gossip psk\` [MCS_GOSSIP_CLUSTERSET_KEY] (required)
  --previous-identity-key FILE  the identity key this cluster used before a key rotation
                            [MCS_GOSSIP_PREVIOUS_IDENTITY_KEY]: it signs the hand-over to --identity-key, which every
                            peer follows without a restart (docs/reliability.md)
  --listen MULTIADDR        listen address, repeatable [MCS_GOSSIP_LISTEN]; default /ip4/0.0.0.0/tcp/7946
  --announce MULTIADDR      address announced to peers, repeatable [MCS_GOSSIP_ANNOUNCE]; default: derived from
                            --announce-from-service, else the listen addresses
  --announce-from-service NAMESPACE/NAME  without --announce, announce this (the node's own gossip) Service's
                            LoadBalancer ingress addresses, or --node-ip at its node port for a NodePort Service,
                            following them as they change [MCS_GOSSIP_ANNOUNCE_FROM_SERVICE]
  --node-ip IP              the IP of the Kubernetes node this pod runs on (fieldRef status.hostIP) [MCS_GOSSIP_NODE_IP]
  --bootstrap ENTRY         bootstrap peer, repeatable [MCS_GOSSIP_BOOTSTRAP]: MULTIADDR/p2p/PEERID or
                            CLUSTERID=MULTIADDR/p2p/PEERID (pins the PeerId to the cluster id); also read from the
                            ClusterProperty bootstrap.mcs-gossip.x-k8s.io
  --endpoint-ttl DURATION   withdraw a cluster's endpoints when unheard this long [MCS_GOSSIP_ENDPOINT_TTL]; default 30s
  --heartbeat-interval DUR  heartbeat period [MCS_GOSSIP_HEARTBEAT_INTERVAL]; default 10s (keep well below the TTL)
  --sync-interval DURATION  background anti-entropy period [MCS_GOSSIP_SYNC_INTERVAL]; default 60s
  --origin-horizon DURATION forget a cluster unheard this long, with its imports [MCS_GOSSIP_ORIGIN_HORIZON];
                            default 24h (keep it far above the endpoint TTL)
  --tombstone-horizon DUR   collect this cluster's removals older than this [MCS_GOSSIP_TOMBSTONE_HORIZON];
                            default 24h
Operations:
  --metrics-addr HOST:PORT  /metrics, /healthz, /readyz, /status [MCS_GOSSIP_METRICS_ADDR]; default 0.0.0.0:9464
  --log-level LEVEL         trace|debug|info|warn|error|fatal|silent [MCS_GOSSIP_LOG_LEVEL]; default info
High availability:
  --leader-elect            elect one active replica with a Lease [MCS_GOSSIP_LEADER_ELECT=true]; default off
  --lease-namespace NS      namespace of the Lease [POD_NAMESPACE]; default mcs-gossip-system
  --lease-name NAME         name of the Lease [MCS_GOSSIP_LEASE_NAME]; default ${DEFAULT_LEASE_NAME}
  --lease-identity ID       this replica's identity [POD_NAME]; default HOSTNAME-PID
  --lease-duration DURATION [MCS_GOSSIP_LEASE_DURATION]; default ${DEFAULT_LEASE_DURATION_MS / 1000}s
  --lease-renew-deadline DUR  a leader that could not renew this long steps down [MCS_GOSSIP_LEASE_RENEW_DEADLINE];
                            default ${DEFAULT_LEASE_RENEW_DEADLINE_MS / 1000}s (below --lease-duration)
  --lease-retry-period DUR  renew / retry period [MCS_GOSSIP_LEASE_RETRY_PERIOD]; default ${DEFAULT_LEASE_RETRY_MS / 1000}s
                            (below --lease-renew-deadline)

Durations: 500ms, 10s, 2m, 1h, or a number of milliseconds. SIGTERM or SIGINT stops the node gracefully.`;

/** Parses `500ms`, `10s`, `2m`, `1h` or plain milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (m === null) throw new UsageError(`--${flag}: "${text}" is not a duration (e.g. 500ms, 10s, 2m)`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] ?? 1;
  const ms = Math.round(n * unit);
  if (ms <= 0) throw new UsageError(`--${flag} must be positive`);
  return ms;
}

export interface RunOptions {
  kubeconfig?: string;
  context?: string;
  identityKey: string;
  previousIdentityKey?: string;
  clustersetKey: string;
  listen: string[];
  announce: string[];
  announceFromService?: { namespace: string; name: string };
  nodeIp?: string;
  bootstrap: string[];
  metricsHost: string;
  metricsPort: number;
  endpointTtlMs?: number;
  heartbeatIntervalMs?: number;
  syncIntervalMs?: number;
  originHorizonMs?: number;
  tombstoneHorizonMs?: number;
  logLevel: string;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  leaseIdentity: string;
  leaseDurationMs: number;
  leaseRenewDeadlineMs: number;
  leaseRetryPeriodMs: number;
}

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/** Flags and environment into options; throws UsageError on anything wrong. */
export function parseRunFlags(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): RunOptions {
  const strings = Object.keys(ENV).filter((k) => k !== 'leader-elect');
  const multiple = new Set(['listen', 'announce', 'bootstrap']);
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        ...Object.fromEntries(strings.map((k) => [k, { type: 'string' as const, multiple: multiple.has(k) }])),
        'leader-elect': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (k: string): string | undefined => {
    const v = values[k];
    if (typeof v === 'string' && v !== '') return v;
    const e = env[ENV[k] ?? ''];
    return e === undefined || e === '' ? undefined : e;
  };
  const list = (k: string): string[] => {
    const v = values[k];
    if (Array.isArray(v) && v.length > 0)
      return v
        .flatMap((x) => x.split(','))
        .map((x) => x.trim())
        .filter(Boolean);
    const e = env[ENV[k] ?? ''];
    return e === undefined ? [] : e.split(/[\s,]+/).filter(Boolean);
  };
  const duration = (k: string): number | undefined => {
    const v = str(k);
    return v === undefined ? undefined : parseDuration(k, v);
  };
  const identityKey = str('identity-key');
  const clustersetKey = str('clusterset-key');
  const previousIdentityKey = str('previous-identity-key');
  if (identityKey === undefined)
    throw new UsageError('--identity-key FILE is required (create one with `mcs-gossip keygen`)');
  if (clustersetKey === undefined)
    throw new UsageError('--clusterset-key FILE is required (create one with `mcs-gossip psk`)');
  const addr = str('metrics-addr') ?? '0.0.0.0:9464';
  const colon = addr.lastIndexOf(':');
  const metricsPort = Number(addr.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) {
    throw new UsageError(`--metrics-addr: "${addr}" is not HOST:PORT`);
  }
  const logLevel = str('log-level') ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new UsageError(`--log-level: unknown level "${logLevel}"`);
  const leaderEnv = env[ENV['leader-elect'] ?? ''];
  const leaderElect = values['leader-elect'] === true || leaderEnv === 'true' || leaderEnv === '1';
  const endpointTtlMs = duration('endpoint-ttl');
  const heartbeatIntervalMs = duration('heartbeat-interval');
  const syncIntervalMs = duration('sync-interval');
  const originHorizonMs = duration('origin-horizon');
  const tombstoneHorizonMs = duration('tombstone-horizon');
  if (originHorizonMs !== undefined && originHorizonMs <= (endpointTtlMs ?? 30_000)) {
    throw new UsageError('--origin-horizon must be longer than --endpoint-ttl');
  }
  const fromService = str('announce-from-service');
  const slash = fromService?.indexOf('/') ?? -1;
  if (
    fromService !== undefined &&
    (slash <= 0 || slash === fromService.length - 1 || fromService.indexOf('/', slash + 1) !== -1)
  )
    throw new UsageError(`--announce-from-service: "${fromService}" is not NAMESPACE/NAME`);
  const nodeIp = str('node-ip');
  if (nodeIp !== undefined && isIP(nodeIp) === 0) throw new UsageError(`--node-ip: "${nodeIp}" is not an IP address`);
  const bootstrap = list('bootstrap');
  for (const entry of bootstrap) {
    try {
      parseBootstrapEntry(entry);
    } catch (err) {
      throw new UsageError(`--bootstrap: ${(err as Error).message}`);
    }
  }
  const kubeconfig = str('kubeconfig');
  const context = str('context');
  const leaseDurationMs = duration('lease-duration') ?? DEFAULT_LEASE_DURATION_MS;
  const leaseRenewDeadlineMs = duration('lease-renew-deadline') ?? DEFAULT_LEASE_RENEW_DEADLINE_MS;
  const leaseRetryPeriodMs = duration('lease-retry-period') ?? DEFAULT_LEASE_RETRY_MS;
  try {
    checkLeaseTimings(leaseDurationMs, leaseRenewDeadlineMs, leaseRetryPeriodMs);
  } catch (err) {
    throw new UsageError(`--lease-retry-period, --lease-renew-deadline, --lease-duration: ${(err as Error).message}`);
  }
  return {
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    ...(context === undefined ? {} : { context }),
    identityKey,
    ...(previousIdentityKey === undefined ? {} : { previousIdentityKey }),
    clustersetKey,
    listen: list('listen'),
    announce: list('announce'),
    ...(fromService === undefined
      ? {}
      : { announceFromService: { namespace: fromService.slice(0, slash), name: fromService.slice(slash + 1) } }),
    ...(nodeIp === undefined ? {} : { nodeIp }),
    bootstrap,
    metricsHost: addr.slice(0, colon).replace(/^\[|\]$/g, '') || '0.0.0.0',
    metricsPort,
    ...(endpointTtlMs === undefined ? {} : { endpointTtlMs }),
    ...(heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs }),
    ...(syncIntervalMs === undefined ? {} : { syncIntervalMs }),
    ...(originHorizonMs === undefined ? {} : { originHorizonMs }),
    ...(tombstoneHorizonMs === undefined ? {} : { tombstoneHorizonMs }),
    logLevel,
    leaderElect,
    leaseNamespace: str('lease-namespace') ?? 'mcs-gossip-system',
    leaseName: str('lease-name') ?? DEFAULT_LEASE_NAME,
    leaseIdentity: str('lease-identity') ?? `${hostname()}-${process.pid}`,
    leaseDurationMs,
    leaseRenewDeadlineMs,
    leaseRetryPeriodMs,
  };
}

function loadKubeConfig(o: RunOptions): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig !== undefined) {
    try {
      kc.loadFromFile(o.kubeconfig);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'no such file' : e.code !== undefined ? e.code : firstLine(e.message);
      throw new UsageError(`--kubeconfig: cannot load "${o.kubeconfig}": ${why}`);
    }
  } else if (process.env.KUBERNETES_SERVICE_HOST !== undefined) {
    try {
      kc.loadFromCluster();
    } catch (err) {
      throw new UsageError(`in-cluster config: ${firstLine((err as Error).message)}`);
    }
  } else kc.loadFromDefault();
  if (o.context !== undefined) {
    if (kc.getContextObject(o.context) === null)
      throw new UsageError(
        `--context: no context "${o.context}" in the kubeconfig (it has: ${kc.contexts.map((c) => c.name).join(', ') || 'none'})`,
      );
    kc.setCurrentContext(o.context);
  }
  if (kc.getCurrentCluster() === null) throw new UsageError('no Kubernetes cluster configured (see --kubeconfig)');
  return kc;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

export const run: Command = {
  name: 'run',
  summary: "run this cluster's node (watch exports, gossip, write imports)",
  usage: USAGE,
  async run(argv) {
    const o = parseRunFlags(argv);
    // Known once the node has read the ClusterProperties: then every line names the cluster (the gossip node's own
    // lines name it already).
    let clusterOf = (): string | undefined => undefined;
    const logger = pino({
      level: o.logLevel,
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: pino.stdSerializers.errWithCause },
      mixin: (_obj, _level, l) => {
        const cluster = clusterOf();
        return cluster === undefined || 'cluster' in l.bindings() ? {} : { cluster };
      },
    });
    const kubeConfig = loadKubeConfig(o);
    let privateKey;
    let previousKey;
    let psk;
    try {
      privateKey = await loadIdentityKey(o.identityKey);
      if (o.previousIdentityKey !== undefined) previousKey = await loadIdentityKey(o.previousIdentityKey);
      psk = await loadPsk(o.clustersetKey);
    } catch (err) {
      if (err instanceof GossipConfigError || (err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new UsageError((err as Error).message);
      }
      throw err;
    }
    const node = createMcsNode({
      kubeConfig,
      buildInfo: {
        version: packageVersion(),
        ...(process.env.MCS_GOSSIP_COMMIT === undefined ? {} : { commit: process.env.MCS_GOSSIP_COMMIT }),
      },
      privateKey,
      ...(previousKey === undefined ? {} : { previousKey }),
      psk,
      logger,
      ...(o.listen.length > 0 ? { listen: o.listen } : {}),
      ...(o.announce.length > 0 ? { announce: o.announce } : {}),
      ...(o.announceFromService === undefined ? {} : { announceFromService: o.announceFromService }),
      ...(o.nodeIp === undefined ? {} : { nodeIp: o.nodeIp }),
      bootstrap: o.bootstrap,
      ...(o.endpointTtlMs === undefined ? {} : { endpointTtlMs: o.endpointTtlMs }),
      ...(o.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: o.heartbeatIntervalMs }),
      ...(o.syncIntervalMs === undefined ? {} : { syncIntervalMs: o.syncIntervalMs }),
      ...(o.originHorizonMs === undefined ? {} : { originHorizonMs: o.originHorizonMs }),
      ...(o.tombstoneHorizonMs === undefined ? {} : { tombstoneHorizonMs: o.tombstoneHorizonMs }),
      ...(o.leaderElect
        ? {
            leaderElection: {
              namespace: o.leaseNamespace,
              name: o.leaseName,
              identity: o.leaseIdentity,
              leaseDurationMs: o.leaseDurationMs,
              renewDeadlineMs: o.leaseRenewDeadlineMs,
              retryPeriodMs: o.leaseRetryPeriodMs,
            },
          }
        : {}),
    });
    clusterOf = () => node.clusterId;
    const health = new HealthServer({
      host: o.metricsHost,
      port: o.metricsPort,
      metrics: () => node.metrics(),
      readiness: () => node.readiness(),
      status: () => node.status(),
    });
    await health.start();
    logger.info({ metrics: health.address() }, 'serving /metrics, /healthz, /readyz, /status');
    await node.start();
    await new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        logger.info({ signal }, 'stopping');
        resolve();
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
    const force = setTimeout(() => {
      logger.error('graceful stop took over 20 s; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    await node.stop();
    await health.stop();
    logger.info('stopped');
    return 0;
  },
};
