/**
 * Reading the examples out of README.md, so a test can run every one of them as a user
 * would (tests/e2e/readme.test.ts). An example is a fenced block whose info string is
 * `sh example`; each non-blank line is one command, with an optional trailing
 * `# comment` (what a reader sees next to it). Lines ending in `\` continue on the next.
 * Nothing here runs anything.
 */

export interface Example {
  /** 1-based line of the opening fence in the markdown. */
  line: number;
  /** The section heading the block sits under (for test names). */
  heading: string;
  commands: string[];
}

const FENCE = /^```(.*)$/;

/** Drops a trailing ` # comment` that is outside quotes. */
export function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== null) {
      if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

export function extractExamples(markdown: string): Example[] {
  const out: Example[] = [];
  const lines = markdown.split("\n");
  let heading = "";
  let current: Example | null = null;
  let pending = "";
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i];
    const fence = FENCE.exec(text);
    if (current === null) {
      if (fence !== null) {
        const info = fence[1].trim().split(/\s+/);
        if (info[0] === "sh" && info.includes("example")) current = { line: i + 1, heading, commands: [] };
        else {
          // Skip a fenced block that is not an example, so a '#' inside it is not a heading.
          while (i + 1 < lines.length && !lines[i + 1].startsWith("```")) i++;
          i++;
        }
      } else if (text.startsWith("#")) heading = text.replace(/^#+\s*/, "");
      continue;
    }
    if (fence !== null) {
      if (pending !== "") throw new Error(`README.md:${i + 1}: example ends inside a continued line`);
      out.push(current);
      current = null;
      continue;
    }
    const cmd = stripComment(text);
    if (cmd.endsWith("\\")) {
      pending += `${cmd.slice(0, -1).trimEnd()} `;
      continue;
    }
    const whole = (pending + cmd.trimStart()).trim();
    pending = "";
    if (whole !== "") current.commands.push(whole);
  }
  if (current !== null) throw new Error(`README.md:${current.line}: example block is not closed`);
  return out;
}
