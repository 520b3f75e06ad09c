/** Who this cluster is, from its ClusterProperties, validated as KEP-2149 asks and our DNS-label use requires. */

/** A cluster id or ClusterSet name as we use it: a DNS label (RFC 1123), at most 63 characters. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** This cluster's identity when it is usable. */
export interface ClusterIdentity {
  readonly clusterId: string;
  readonly clusterSetName: string;
}

/** The identity, or why there is none (the node then exports, imports and writes nothing, and is not ready). */
export type IdentityStatus =
  | { readonly ok: true; readonly identity: ClusterIdentity }
  | { readonly ok: false; readonly reason: IdentityProblem; readonly message: string };

export type IdentityProblem =
  'ClusterPropertiesUnavailable' | 'ClusterIdMissing' | 'ClusterIdInvalid' | 'ClusterSetMissing' | 'ClusterSetInvalid';

export function isDnsLabel(value: string): boolean {
  return value.length > 0 && value.length <= 63 && DNS_LABEL.test(value);
}

function checkLabel(what: string, value: string): string | undefined {
  if (value.length > 63) return `${what} "${value.slice(0, 70)}…" is longer than 63 characters`;
  if (!DNS_LABEL.test(value)) return `${what} "${value}" is not a DNS label (lowercase a-z, 0-9 and "-")`;
  return undefined;
}

/**
 * Validates the values of `cluster.clusterset.k8s.io` and `clusterset.k8s.io` (undefined: the property is absent).
 * Pure; the caller decides what a change of a valid identity means (a leave followed by a join).
 */
export function validateIdentity(clusterId: string | undefined, clusterSetName: string | undefined): IdentityStatus {
  if (clusterId === undefined || clusterId === '') {
    return {
      ok: false,
      reason: 'ClusterIdMissing',
      message: 'ClusterProperty cluster.clusterset.k8s.io is missing: this cluster has no id',
    };
  }
  const badId = checkLabel('cluster id (ClusterProperty cluster.clusterset.k8s.io)', clusterId);
  if (badId !== undefined) return { ok: false, reason: 'ClusterIdInvalid', message: badId };
  if (clusterSetName === undefined || clusterSetName === '') {
    return {
      ok: false,
      reason: 'ClusterSetMissing',
      message: 'ClusterProperty clusterset.k8s.io is missing: this cluster is not a member of a ClusterSet',
    };
  }
  const badSet = checkLabel('ClusterSet name (ClusterProperty clusterset.k8s.io)', clusterSetName);
  if (badSet !== undefined) return { ok: false, reason: 'ClusterSetInvalid', message: badSet };
  return { ok: true, identity: { clusterId, clusterSetName } };
}

/** Splits the value of the bootstrap ClusterProperty: multiaddrs separated by commas, spaces or newlines. */
export function parseBootstrapProperty(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * The value of the peer ClusterProperty: this node's announce addresses as bootstrap entries pinned to the cluster id
 * (`<clusterId>=<multiaddr>/p2p/<PeerId>`, comma-separated), ready to paste into another cluster's bootstrap list.
 */
export function formatPeerProperty(clusterId: string, peerId: string, addrs: readonly string[]): string {
  const full = addrs.map((a) => `${clusterId}=${a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`}`);
  return full.length === 0 ? `${clusterId}=/p2p/${peerId}` : full.join(',');
}
