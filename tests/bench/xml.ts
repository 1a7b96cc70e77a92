// tests/bench/xml.ts — a small strict XML well-formedness checker and tree reader for the
// generated SVG charts (Bun has no DOMParser). Checks: one root element, properly nested and
// matching tags, legal names, quoted attribute values without '<', no duplicate attributes,
// every '&' a known entity or a character reference, no raw '<' or ']]>' in text, comments
// without '--', an XML declaration only at the very start. No DTDs (SVG charts have none).
// Returns the element tree with entity-decoded text; throws an Error naming the offset.

export interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: XmlElement[];
  /** Decoded character data directly inside this element (children's text excluded). */
  text: string;
}

const NAME = /[A-Za-z_:][A-Za-z0-9_.:-]*/y;
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(s: string, at: number): string {
  return s.replace(/&([^;&<\s]*);?/g, (whole, ref: string, off: number) => {
    if (!whole.endsWith(";")) throw new Error(`offset ${at + off}: '&' not followed by an entity reference`);
    if (ref in ENTITIES) return ENTITIES[ref];
    const m = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(ref);
    if (m) {
      const cp = m[1] !== undefined ? Number.parseInt(m[1], 16) : Number(m[2]);
      if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new Error(`offset ${at + off}: bad character reference &${ref};`);
      return String.fromCodePoint(cp);
    }
    throw new Error(`offset ${at + off}: unknown entity &${ref};`);
  });
}

/** Parses `src` as a strict XML document; throws on the first well-formedness error. */
export function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (msg: string): never => {
    throw new Error(`offset ${i}: ${msg}`);
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(src);
    if (m === null) return fail("expected a name");
    i += m[0].length;
    return m[0];
  };
  const ws = (): number => {
    const s = i;
    while (i < src.length && " \t\r\n".includes(src[i])) i++;
    return i - s;
  };
  const misc = (): void => {
    for (;;) {
      ws();
      if (src.startsWith("<!--", i)) comment();
      else if (src.startsWith("<?", i)) {
        if (/^<\?xml[\s?]/i.test(src.slice(i, i + 6))) fail("XML declaration not at the start of the document");
        const e = src.indexOf("?>", i);
        if (e < 0) fail("unterminated processing instruction");
        i = e + 2;
      } else return;
    }
  };
  const comment = (): void => {
    const e = src.indexOf("-->", i + 4);
    if (e < 0) fail("unterminated comment");
    if (src.slice(i + 4, e).includes("--")) fail("'--' inside a comment");
    i = e + 3;
  };

  if (src.startsWith("<?xml")) {
    const e = src.indexOf("?>");
    if (e < 0) fail("unterminated XML declaration");
    if (!/^<\?xml\s+version="1\.[0-9]"(\s+encoding="[A-Za-z][A-Za-z0-9._-]*")?(\s+standalone="(yes|no)")?\s*\?>$/.test(src.slice(0, e + 2))) {
      fail("malformed XML declaration");
    }
    i = e + 2;
  }
  misc();
  if (src.startsWith("<!DOCTYPE", i)) fail("DOCTYPE is not supported by this checker");
  if (src[i] !== "<") fail("expected the root element");

  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (i < src.length) {
    if (stack.length === 0 && root !== undefined) {
      misc();
      if (i < src.length) fail("content after the root element");
      break;
    }
    if (src.startsWith("<!--", i)) {
      comment();
    } else if (src.startsWith("<![CDATA[", i)) {
      if (stack.length === 0) fail("CDATA outside the root element");
      const e = src.indexOf("]]>", i);
      if (e < 0) fail("unterminated CDATA section");
      stack[stack.length - 1].text += src.slice(i + 9, e);
      i = e + 3;
    } else if (src.startsWith("<?", i)) {
      if (/^<\?xml[\s?]/i.test(src.slice(i, i + 6))) fail("XML declaration not at the start of the document");
      const e = src.indexOf("?>", i);
      if (e < 0) fail("unterminated processing instruction");
      i = e + 2;
    } else if (src.startsWith("</", i)) {
      i += 2;
      const n = name();
      ws();
      if (src[i] !== ">") fail(`expected '>' to close </${n}`);
      i++;
      const open = stack.pop();
      if (open === undefined) fail(`close tag </${n}> with nothing open`);
      else if (open.name !== n) fail(`</${n}> closes <${open.name}>`);
    } else if (src[i] === "<") {
      i++;
      const el: XmlElement = { name: name(), attrs: new Map(), children: [], text: "" };
      for (;;) {
        const sp = ws();
        if (src.startsWith("/>", i) || src[i] === ">") break;
        if (sp === 0) fail(`expected whitespace before an attribute in <${el.name}>`);
        const an = name();
        ws();
        if (src[i] !== "=") fail(`attribute ${an} without '='`);
        i++;
        ws();
        const q = src[i];
        if (q !== '"' && q !== "'") fail(`attribute ${an} value not quoted`);
        const e = src.indexOf(q, i + 1);
        if (e < 0) fail(`unterminated value of attribute ${an}`);
        const raw = src.slice(i + 1, e);
        if (raw.includes("<")) fail(`'<' in the value of attribute ${an}`);
        if (el.attrs.has(an)) fail(`duplicate attribute ${an} in <${el.name}>`);
        el.attrs.set(an, decode(raw, i + 1));
        i = e + 1;
      }
      const selfClosing = src.startsWith("/>", i);
      i += selfClosing ? 2 : 1;
      if (stack.length > 0) stack[stack.length - 1].children.push(el);
      else if (root === undefined) root = el;
      else fail("a second root element");
      if (!selfClosing) stack.push(el);
    } else {
      const e = src.indexOf("<", i);
      const end = e < 0 ? src.length : e;
      const raw = src.slice(i, end);
      if (stack.length === 0) {
        if (raw.trim() !== "") fail("text outside the root element");
      } else {
        if (raw.includes("]]>")) fail("']]>' in text");
        stack[stack.length - 1].text += decode(raw, i);
      }
      i = end;
    }
  }
  if (stack.length > 0) fail(`unclosed <${stack[stack.length - 1].name}>`);
  if (root === undefined) fail("no root element");
  return root as XmlElement;
}

/** Every element named `name` in document order. */
export function findAll(el: XmlElement, name: string, out: XmlElement[] = []): XmlElement[] {
  if (el.name === name) out.push(el);
  for (const c of el.children) findAll(c, name, out);
  return out;
}
