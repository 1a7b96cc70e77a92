/**
 * --exclude / --include: which paths under SRC take part in the copy.
 *
 * Owns: the matching rules, which follow rsync's so that habits carry over:
 *  - patterns are Bun.Glob globs (`*`, `?`, `[...]`, `{a,b}`, `**`), matched against the
 *    path relative to SRC, with "/" as the separator;
 *  - a pattern without a "/" matches the last component at any depth (`*.log` excludes
 *    every .log file, `cache` every entry named cache); a pattern with a "/" matches the
 *    whole relative path (a leading "/" anchors it at SRC and is dropped);
 *  - a trailing "/" makes the pattern match directories only;
 *  - a path is excluded when some --exclude matches it and no --include does, whatever
 *    the order on the command line; an excluded directory is not entered at all;
 *  - with --delete, excluded paths in DST are left alone (protected).
 * Never touches the file system.
 */
import { UsageError } from "../errors.ts";

interface Rule {
  glob: InstanceType<typeof Bun.Glob>;
  /** Match the last component instead of the whole path. */
  basename: boolean;
  dirOnly: boolean;
  source: string;
}

function compile(pattern: string, flag: string): Rule {
  if (pattern === "") throw new UsageError(`${flag} needs a non-empty pattern`);
  let p = pattern;
  let dirOnly = false;
  while (p.length > 1 && p.endsWith("/")) {
    dirOnly = true;
    p = p.slice(0, -1);
  }
  const anchored = p.startsWith("/");
  if (anchored) p = p.replace(/^\/+/, "");
  if (p === "") throw new UsageError(`${flag} '${pattern}' matches nothing`);
  const basename = !anchored && !p.includes("/");
  try {
    return { glob: new Bun.Glob(p), basename, dirOnly, source: pattern };
  } catch (e) {
    throw new UsageError(`${flag} '${pattern}' is not a valid glob: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export class Filter {
  private readonly excludes: Rule[];
  private readonly includes: Rule[];

  constructor(exclude: readonly string[] = [], include: readonly string[] = []) {
    this.excludes = exclude.map((p) => compile(p, "--exclude"));
    this.includes = include.map((p) => compile(p, "--include"));
  }

  /** True when no pattern was given: callers skip building relative paths at all. */
  get empty(): boolean {
    return this.excludes.length === 0;
  }

  /** Is `rel` (relative to SRC, "/"-separated, no leading "/") left out of the copy? */
  excluded(rel: string, isDir: boolean): boolean {
    if (this.excludes.length === 0) return false;
    const slash = rel.lastIndexOf("/");
    const base = slash < 0 ? rel : rel.slice(slash + 1);
    const hit = (r: Rule): boolean => (!r.dirOnly || isDir) && r.glob.match(r.basename ? base : rel);
    if (!this.excludes.some(hit)) return false;
    return !this.includes.some(hit);
  }
}
