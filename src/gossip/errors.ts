// Typed failures of the gossip layer. Input from peers never throws out of the node: these are caught at the edge,
// counted and turned into a gossipsub Reject or an aborted stream.

/** Configuration that cannot work (missing ClusterSet key, bad bootstrap address, unreadable key file). */
export class GossipConfigError extends Error {
  override readonly name = 'GossipConfigError';
}

/** A message or frame that does not decode, breaks a limit, or carries impossible values. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

/** An envelope whose signature does not verify, or that is signed by a key not bound to its origin. */
export class InvalidSignatureError extends Error {
  override readonly name = 'InvalidSignatureError';
}

/** A second PeerId claims a cluster id already bound to another one. */
export class BindingConflictError extends Error {
  override readonly name = 'BindingConflictError';
  constructor(
    readonly clusterId: string,
    readonly boundPeerId: string,
    readonly claimedPeerId: string,
  ) {
    super(`cluster id "${clusterId}" is bound to ${boundPeerId}; refused claim by ${claimedPeerId}`);
  }
}

/** The peer exceeded its rate limit on the sync protocol. */
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
}

/** The node is not started (or already stopped). */
export class NotStartedError extends Error {
  override readonly name = 'NotStartedError';
}
