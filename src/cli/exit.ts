/**
 * Exit codes, documented in README.md ("Exit codes") and in the man page's EXIT STATUS
 * (made from EXIT_MEANING by scripts/gen-man.ts). One table, so scripts can rely on it.
 *
 * Owns: the codes and what each means. Never maps errors to codes: report.ts does.
 */
export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  UNSUPPORTED: 3,
  PEER: 4,
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What each code means; every code must have a line (the type says so). */
export const EXIT_MEANING: Record<keyof typeof EXIT, string> = {
  OK: "Everything was done.",
  FAILED: "The run finished but some files failed, or an I/O error stopped it.",
  USAGE: "Bad command line: unknown flag, malformed value, impossible SRC/DST combination.",
  UNSUPPORTED: "This machine lacks something that was explicitly asked for (e.g. --crypto kernel without kTLS).",
  PEER: "Network: authentication failed, or the peer broke the protocol or timed out.",
  INTERRUPTED: "Interrupted by SIGINT/SIGTERM.",
};
