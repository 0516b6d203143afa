/**
 * Errors of the cluster package that are not service errors (those are
 * `ServiceError` from `@hearsay/service`, answered to clients). Codes are stable
 * and append-only.
 */
export type ClusterErrorCode =
  /** A peer did not answer within the request timeout. */
  | 'PEER_TIMEOUT'
  /** A peer could not be reached or answered with a transport-level failure. */
  | 'PEER_UNREACHABLE'
  /** Too many requests already queued for this peer; the call was refused without sending. */
  | 'PEER_OVERLOADED'
  /** The peer refused our credentials (401/403): another cluster key, or none. */
  | 'PEER_UNAUTHORIZED'
  /** The peer answered something that does not decode or validate. */
  | 'PEER_BAD_RESPONSE'
  /** An internode request that does not decode or validate (answered 400). */
  | 'BAD_REQUEST'
  /** The component was stopped. */
  | 'STOPPED'
  /** An invalid configuration value. */
  | 'BAD_CONFIG'
  /** This node cannot answer that yet: it is still filling the replicas it takes over (answered 503). */
  | 'NOT_READY'

  /**
   * The peer refused for clock skew: our request's timestamp is further from
   * its clock than it allows, or the versions we sent are more than its
   * maximum clock offset ahead of its clock. The message says by how much.
   */
  | 'PEER_CLOCK_SKEW';

export class ClusterError extends Error {
  override readonly name = 'ClusterError';
  readonly code: ClusterErrorCode;
  constructor(code: ClusterErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
