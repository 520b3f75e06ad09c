// Version skew between the nodes of a ClusterSet (docs/upgrades.md). Two numbers matter:
// - the wire version (WIRE_VERSION): the encoding of every message; a node speaks exactly one and accepts the range
//   MIN_WIRE_VERSION..WIRE_VERSION, so a change that an older node cannot read raises both ends of it one release
//   apart;
// - the software version (package.json): peers must share the major and be at most one minor apart (N−1 / N+1),
//   the skew a rolling upgrade, one cluster at a time, goes through.
// A node announces both in its libp2p identify agent (`mcs-gossip/<version> wire/<n>`), and its software version in
// its heartbeats and liveness entries (so clusters not directly connected learn it too). Nodes before 0.2.0 announce
// neither: they speak wire 1 and count as 0.1.
import { MIN_WIRE_VERSION, WIRE_VERSION } from './constants.js';

/** What a node of the previous minors that announced nothing is taken for. */
export const UNANNOUNCED_VERSION = '0.1.0';
const AGENT = /^mcs-gossip\/(\S+) wire\/(\d{1,6})$/;
const SEMVER = /^(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:[-+][0-9A-Za-z.+-]{1,64})?$/;
/** Longest software version accepted from a peer (heartbeats, liveness entries, identify). */
export const MAX_VERSION_LENGTH = 64;

export interface PeerVersion {
  /** The software version (semver), or undefined when the peer announced none (before 0.2.0). */
  readonly software?: string;
  readonly wire: number;
}

/** The identify agent a node announces. */
export function agentVersion(software: string, wire = WIRE_VERSION): string {
  return `mcs-gossip/${software} wire/${wire}`;
}

/** Parses a peer's identify agent; anything that is not ours (older nodes send libp2p's default) is "unannounced". */
export function parseAgentVersion(agent: string | undefined): PeerVersion {
  const m = agent === undefined ? null : AGENT.exec(agent);
  if (m === null || m[1]!.length > MAX_VERSION_LENGTH) return { wire: 1 };
  return { software: m[1]!, wire: Number(m[2]) };
}

/** Whether `v` is a version a peer may announce (semver, bounded). */
export function isSoftwareVersion(v: string): boolean {
  return v.length <= MAX_VERSION_LENGTH && SEMVER.test(v);
}

function majorMinor(v: string): [number, number] | undefined {
  const m = SEMVER.exec(v);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

export type Compatibility =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'WireVersion' | 'SoftwareVersion'; readonly message: string };

/**
 * Whether a node of version `ours` interoperates with a peer: the peer's wire version lies in our range and its
 * software version shares our major, at most one minor apart. When either version is not semver (a development
 * build, `unknown`), only the wire is checked.
 */
export function compatibility(
  ours: string,
  peer: PeerVersion,
  wire = { min: MIN_WIRE_VERSION, max: WIRE_VERSION },
): Compatibility {
  if (peer.wire < wire.min || peer.wire > wire.max) {
    return {
      ok: false,
      reason: 'WireVersion',
      message: `speaks wire version ${peer.wire}, this node ${wire.min === wire.max ? wire.max : `${wire.min}-${wire.max}`}`,
    };
  }
  const mine = majorMinor(ours);
  if (mine === undefined) return { ok: true };
  const theirsText = peer.software ?? UNANNOUNCED_VERSION;
  const theirs = majorMinor(theirsText);
  const label = peer.software === undefined ? `an unannounced version (before 0.2.0)` : `version ${theirsText}`;
  // A development build of the peer (`unknown`, a git describe): the wire alone decides, as for one of ours.
  if (theirs === undefined) return { ok: true };
  if (theirs[0] !== mine[0] || Math.abs(theirs[1] - mine[1]) > 1) {
    return {
      ok: false,
      reason: 'SoftwareVersion',
      message: `runs ${label}, this node ${ours}: peers must share the major version and be at most one minor apart (upgrade one minor at a time, docs/upgrades.md)`,
    };
  }
  return { ok: true };
}
