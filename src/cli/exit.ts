/**
 * Exit codes, documented in README.md ("Exit codes"). One table, so scripts can rely on it.
 */
export const EXIT = {
  /** Everything was done. */
  OK: 0,
  /** The run finished but some files failed, or an I/O error stopped it. */
  FAILED: 1,
  /** Bad command line: unknown flag, malformed value, impossible SRC/DST combination. */
  USAGE: 2,
  /** This machine lacks something that was explicitly asked for (e.g. --crypto kernel without kTLS). */
  UNSUPPORTED: 3,
  /** Network: authentication failed, or the peer broke the protocol or timed out. */
  PEER: 4,
  /** Interrupted by SIGINT/SIGTERM. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
