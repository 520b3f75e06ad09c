// Protocol ids, limits and default timings of the gossip layer. Changing a protocol id or a domain string is a
// wire-incompatible change: bump the version suffix.

/** The request/response anti-entropy protocol. */
export const SYNC_PROTOCOL = '/mcs-gossip/sync/1.0.0';
/**
 * The same protocol with HELLO's summary (SyncFrame `summary`, `SEND_DIGESTS`): a settled client's periodic session
 * costs a hash instead of every origin's digest. Offered first; SYNC_PROTOCOL is still spoken to and served.
 */
export const SYNC_PROTOCOL_SUMMARY = '/mcs-gossip/sync/1.1.0';
/** Liveness pushed hop by hop to connected peers (length-prefixed LivenessFrames on one long-lived stream). */
export const LIVENESS_PROTOCOL = '/mcs-gossip/liveness/1.0.0';
/**
 * The same exchange with its origins named by their place on the stream and repeated beats packed (LivenessFrame
 * `repeats`): offered first, LIVENESS_PROTOCOL still spoken to and served for nodes before it.
 */
export const LIVENESS_PROTOCOL_PACKED = '/mcs-gossip/liveness/1.1.0';
/** Version field carried in TopicMessage, SyncFrame and LivenessFrame: the encoding this node speaks. */
export const WIRE_VERSION = 1;
/** The oldest wire version this node still accepts (docs/upgrades.md: raised one release after WIRE_VERSION). */
export const MIN_WIRE_VERSION = 1;
/** Topic name of a ClusterSet: one topic per ClusterSet. */
export const topicFor = (clusterSetName: string): string => `/mcs-gossip/1/clusterset/${clusterSetName}`;

/** Prefix of every signed byte string, so our signatures can never be confused with another protocol's. */
export const SIGNATURE_DOMAIN = 'mcs-gossip/v1/envelope\n';

export const EnvelopeKind = { record: 1, heartbeat: 2, binding: 3 } as const;
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

/** Largest gossipsub message we accept or produce (the libp2p RPC frame is bounded slightly above this). */
export const MAX_TOPIC_MESSAGE_BYTES = 1024 * 1024;
/** Target size of one published delta: bigger changes are split into several messages. */
export const TARGET_DELTA_BYTES = 256 * 1024;
/** Largest frame of the sync protocol. */
export const MAX_SYNC_FRAME_BYTES = 1024 * 1024;
/** Largest size a deflated RECORDS frame may inflate to (the compressed frame itself is ≤ MAX_SYNC_FRAME_BYTES). */
export const MAX_INFLATED_SYNC_FRAME_BYTES = 4 * 1024 * 1024;
/** Target size of a RECORDS frame of the sync protocol (before compression). */
export const TARGET_SYNC_FRAME_BYTES = 256 * 1024;
/** Largest single envelope (one record with its endpoints). */
export const MAX_ENVELOPE_BYTES = 512 * 1024;
/** Decoding limits on repeated fields of frames. */
export const MAX_ENVELOPES_PER_FRAME = 20_000;
export const MAX_DIGESTS_PER_FRAME = 10_000;
export const MAX_BUCKETS_PER_ORIGIN = 4096;
export const MAX_ADDRS_PER_HEARTBEAT = 16;
/** Largest liveness frame, and most entries in one (one per origin). */
export const MAX_LIVENESS_FRAME_BYTES = 512 * 1024;
export const MAX_LIVENESS_ENTRIES = 10_000;
/** Peers a node pushes liveness to: all its gossipsub mesh peers, then other connected peers up to this many. */
export const LIVENESS_FANOUT = 4;
/** Liveness frames a peer may send us per minute (token bucket with this burst). */
export const LIVENESS_FRAMES_PER_MINUTE = 600;
export const LIVENESS_FRAME_BURST = 60;
/** A signed heartbeat goes on the topic for the first beats after start, then every this many beats. */
export const SIGNED_HEARTBEAT_EVERY = 90;
/** Longest cluster id / namespace / name we accept (DNS label-ish limits with room). */
export const MAX_ID_LENGTH = 253;

/** Defaults (ms). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_SYNC_INTERVAL_MS = 60_000;
export const DEFAULT_SYNC_TIMEOUT_MS = 20_000;
export const DEFAULT_FRAME_TIMEOUT_MS = 5_000;
export const DEFAULT_DELTA_COALESCE_MS = 25;
export const DEFAULT_REDIAL_BASE_MS = 500;
export const DEFAULT_REDIAL_MAX_MS = 30_000;
export const DEFAULT_TARGET_PEERS = 8;
/** An origin unheard this long is forgotten with its imports (it left without saying so). */
export const DEFAULT_ORIGIN_HORIZON_MS = 24 * 3_600_000;
/** An origin collects its tombstones older than this (after re-issuing its live records older than 3/4 of it). */
export const DEFAULT_TOMBSTONE_HORIZON_MS = 24 * 3_600_000;
/** Housekeeping (forgetting, collecting) runs this often at most. */
export const HOUSEKEEPING_MAX_INTERVAL_MS = 60_000;
/** A record older than the held version by more than this is a replay, not a reordering: the sender is scored down. */
export const REPLAY_WINDOW_MS = 60_000;
/** Sync requests a peer may start per minute (token bucket with this burst). */
export const SYNC_REQUESTS_PER_MINUTE = 30;
export const SYNC_REQUEST_BURST = 10;
