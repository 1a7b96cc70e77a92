/**
 * Network addresses for send/recv: parsing `[ADDR:]PORT` / `HOST:PORT`, resolving host
 * names, and the sockaddr_in / sockaddr_in6 bytes the socket calls take.
 *
 * Owns: the address syntax (IPv4 `1.2.3.4:7000`, IPv6 in brackets `[::1]:7000`, host
 * names `host:7000`, and for listening a bare `7000`), the default listening address
 * (every interface, dual-stack `[::]` when IPv6 exists, else `0.0.0.0`), and printing
 * addresses back (`1.2.3.4:7000`, `[::1]:7000`; IPv4-mapped IPv6 shown as IPv4).
 * Never opens sockets (socket.ts does) and never prints.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { AF, SOCKADDR_IN, SOCKADDR_IN6 } from "../../ffi/structs.ts";
import { UsageError } from "../errors.ts";

export interface HostPort {
  /** Host name or IP literal (IPv6 without brackets); "" = every interface (listening only). */
  host: string;
  port: number;
}

/** One concrete address to bind or connect to. */
export interface SockAddr {
  family: typeof AF.INET | typeof AF.INET6;
  /** Textual IP (no brackets). */
  ip: string;
  port: number;
}

function checkPort(p: string, what: string): number {
  if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
    throw new UsageError(`${what}: port must be from 1 to 65535 (got '${p}')`);
  }
  return Number(p);
}

/**
 * Parses `HOST:PORT`, `[IPV6]:PORT`, and (when `portOnly` is allowed) a bare `PORT`.
 * IPv6 literals must be bracketed (`[::1]:7000`), so the port is never ambiguous.
 */
export function parseHostPort(v: string, what: string, allowPortOnly: boolean): HostPort {
  const bracket = /^\[([^\]]*)\]:(.*)$/.exec(v);
  if (bracket !== null) {
    const host = bracket[1];
    if (isIP(host) !== 6) throw new UsageError(`${what}: '${host}' in brackets is not an IPv6 address (got '${v}')`);
    return { host, port: checkPort(bracket[2], what) };
  }
  if (allowPortOnly && /^\d+$/.test(v)) return { host: "", port: checkPort(v, what) };
  if (v.startsWith("[")) throw new UsageError(`${what}: an IPv6 address goes in brackets followed by a port, like [::1]:7000 (got '${v}')`);
  const i = v.lastIndexOf(":");
  if (i <= 0) throw new UsageError(`${what} must look like HOST:PORT${allowPortOnly ? " or PORT" : ""} (got '${v}')`);
  const host = v.slice(0, i);
  if (host.includes(":")) {
    // Suggest the bracketed form only when it is certain what the user meant.
    const like = isIP(host) === 6 && /^\d+$/.test(v.slice(i + 1)) ? `[${host}]:${v.slice(i + 1)}` : isIP(v) === 6 ? `[${v}]:PORT` : "[::1]:7000";
    throw new UsageError(`${what}: write IPv6 addresses in brackets, like ${like} (got '${v}')`);
  }
  if (/[\s/\\]/.test(host)) throw new UsageError(`${what}: '${host}' is not a host name or address`);
  return { host, port: checkPort(v.slice(i + 1), what) };
}

/** `1.2.3.4:7000`, `[::1]:7000`. */
export function formatAddress(a: { ip: string; port: number }): string {
  const ip = a.ip.startsWith("::ffff:") && isIP(a.ip.slice(7)) === 4 ? a.ip.slice(7) : a.ip;
  return isIP(ip) === 6 ? `[${ip}]:${a.port}` : `${ip}:${a.port}`;
}

/** `host:port` as the user wrote it, with brackets for IPv6 literals. */
export function formatHostPort(hp: HostPort): string {
  return isIP(hp.host) === 6 ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

export type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

const systemLookup: Lookup = async (host) => await lookup(host, { all: true, verbatim: true });

/**
 * Every address `hp` stands for, in resolver order. IP literals are taken as they are;
 * names go through the system resolver (getaddrinfo: /etc/hosts, DNS). Throws UsageError
 * for a name that does not resolve. `listen` with an empty host gives the wildcard:
 * `::` (dual-stack) first, then `0.0.0.0` as the fallback where IPv6 is absent.
 */
export async function resolveAddresses(hp: HostPort, listen: boolean, resolver: Lookup = systemLookup): Promise<SockAddr[]> {
  if (hp.host === "") {
    if (!listen) throw new UsageError("a host is required");
    return [
      { family: AF.INET6, ip: "::", port: hp.port },
      { family: AF.INET, ip: "0.0.0.0", port: hp.port },
    ];
  }
  const kind = isIP(hp.host);
  if (kind === 4) return [{ family: AF.INET, ip: hp.host, port: hp.port }];
  if (kind === 6) return [{ family: AF.INET6, ip: hp.host, port: hp.port }];
  let found: { address: string; family: number }[];
  try {
    found = await resolver(hp.host);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UsageError(`cannot resolve host '${hp.host}'${code !== undefined ? ` (${code})` : ""}`);
  }
  const out: SockAddr[] = [];
  const seen = new Set<string>();
  for (const f of found) {
    const family = f.family === 6 ? AF.INET6 : AF.INET;
    if (seen.has(f.address)) continue;
    seen.add(f.address);
    out.push({ family, ip: f.address, port: hp.port });
  }
  if (out.length === 0) throw new UsageError(`cannot resolve host '${hp.host}' (no addresses)`);
  return out;
}

/** Parses a textual IPv4 address into 4 bytes. */
function ipv4Bytes(ip: string): Uint8Array {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new UsageError(`bad IPv4 address '${ip}'`);
  return Uint8Array.from(parts);
}

/** Parses a textual IPv6 address (with `::` and an optional embedded IPv4 tail) into 16 bytes. */
export function ipv6Bytes(ip: string): Uint8Array {
  let s = ip;
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct); // zone ids are not supported; the scope stays 0
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const v4 = ipv4Bytes(s.slice(lastColon + 1));
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    s = `${s.slice(0, lastColon + 1)}0:0`;
    tail.length = 2;
  }
  const halves = s.split("::");
  if (halves.length > 2) throw new UsageError(`bad IPv6 address '${ip}'`);
  const parse = (h: string): number[] => (h === "" ? [] : h.split(":").map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new UsageError(`bad IPv6 address '${ip}'`);
    return parseInt(g, 16);
  }));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) throw new UsageError(`bad IPv6 address '${ip}'`);
  const groups = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest];
  if (tail.length === 2) {
    groups[6] = tail[0];
    groups[7] = tail[1];
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** The bytes of a sockaddr_in / sockaddr_in6 for `a` (port and address big-endian). */
export function sockaddrBytes(a: SockAddr): Uint8Array {
  if (a.family === AF.INET) {
    const b = new Uint8Array(SOCKADDR_IN.size);
    const v = new DataView(b.buffer);
    v.setUint16(SOCKADDR_IN.family, AF.INET, true);
    v.setUint16(SOCKADDR_IN.port, a.port, false);
    b.set(ipv4Bytes(a.ip), SOCKADDR_IN.addr);
    return b;
  }
  const b = new Uint8Array(SOCKADDR_IN6.size);
  const v = new DataView(b.buffer);
  v.setUint16(SOCKADDR_IN6.family, AF.INET6, true);
  v.setUint16(SOCKADDR_IN6.port, a.port, false);
  b.set(ipv6Bytes(a.ip), SOCKADDR_IN6.addr);
  return b;
}

/** Reads a sockaddr_in / sockaddr_in6 (as filled by accept/getsockname) back into a SockAddr. */
export function parseSockaddr(b: Uint8Array): SockAddr | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = v.getUint16(0, true);
  if (family === AF.INET) {
    const ip = Array.from(b.subarray(SOCKADDR_IN.addr, SOCKADDR_IN.addr + 4)).join(".");
    return { family: AF.INET, ip, port: v.getUint16(SOCKADDR_IN.port, false) };
  }
  if (family === AF.INET6) {
    const bytes = b.subarray(SOCKADDR_IN6.addr, SOCKADDR_IN6.addr + 16);
    const port = v.getUint16(SOCKADDR_IN6.port, false);
    const mapped = bytes.subarray(0, 10).every((x) => x === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    if (mapped) return { family: AF.INET6, ip: `::ffff:${Array.from(bytes.subarray(12)).join(".")}`, port };
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
    return { family: AF.INET6, ip: compressIpv6(groups), port };
  }
  return null;
}

/** RFC 5952 text: the longest run (≥ 2) of zero groups becomes `::`. */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}
