/**
 * Addresses for send/recv (src/net/address.ts): the `[ADDR:]PORT` / `HOST:PORT` syntax,
 * name resolution (with an injected resolver, so no DNS is needed), the wildcard's
 * dual-stack default, and sockaddr bytes both ways. Plus a real listen on the wildcard
 * (src/net/socket.ts) reachable over IPv4 and IPv6 loopback.
 */
import { describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { AF } from "../../ffi/structs.ts";
import { UsageError } from "../../src/errors.ts";
import {
  formatAddress, formatHostPort, ipv6Bytes, parseHostPort, parseSockaddr, resolveAddresses, sockaddrBytes, type Lookup,
} from "../../src/net/address.ts";
import { closeFd, listenOn } from "../../src/net/socket.ts";

describe("parseHostPort", () => {
  test("IPv4, names, bracketed IPv6 and (for listening) a bare port", () => {
    expect(parseHostPort("10.0.0.2:7000", "x", false)).toEqual({ host: "10.0.0.2", port: 7000 });
    expect(parseHostPort("example.org:1", "x", false)).toEqual({ host: "example.org", port: 1 });
    expect(parseHostPort("[::1]:7000", "x", false)).toEqual({ host: "::1", port: 7000 });
    expect(parseHostPort("[fe80::1:2]:65535", "x", false)).toEqual({ host: "fe80::1:2", port: 65535 });
    expect(parseHostPort("[::]:7000", "x", true)).toEqual({ host: "::", port: 7000 });
    expect(parseHostPort("7000", "x", true)).toEqual({ host: "", port: 7000 });
  });

  test("bad ports, unbracketed IPv6, a missing host and junk are usage errors naming the flag", () => {
    const bad: [string, boolean][] = [
      ["7000", false], ["host:0", false], ["host:65536", false], ["host:", false], [":7000", false], ["host:7x", false],
      ["::1:7000", false], ["[::1]7000", false], ["[not-v6]:7000", false], ["[1.2.3.4]:7000", false], ["a b:7000", false],
      ["0", true], ["99999", true],
    ];
    for (const [v, portOnly] of bad) {
      expect(() => parseHostPort(v, "--listen", portOnly), v).toThrow(UsageError);
      expect(() => parseHostPort(v, "--listen", portOnly), v).toThrow(/--listen/);
    }
  });

  test("the bracketed form a message suggests is one that parses, or a plain example", () => {
    const hint = (v: string): string => {
      try {
        parseHostPort(v, "TARGET", false);
      } catch (e) {
        return /like (\S+)/.exec((e as Error).message)?.[1] ?? "";
      }
      throw new Error(`${v} parsed`);
    };
    expect(hint("::1:7000")).toBe("[::1]:7000");
    expect(hint("fe80::1")).toBe("[fe80::1]:PORT");
    for (const v of ["[::1", "[::1]", "[::1:7680"]) expect(hint(v)).toBe("[::1]:7000");
    for (const v of ["::1:7000", "[::1", "[::1]", "[::1:7680"]) {
      const h = hint(v);
      expect(parseHostPort(h, "TARGET", false).host).toBe("::1");
    }
  });

  test("formatting puts IPv6 in brackets and shows IPv4-mapped addresses as IPv4", () => {
    expect(formatHostPort({ host: "::1", port: 9 })).toBe("[::1]:9");
    expect(formatHostPort({ host: "h", port: 9 })).toBe("h:9");
    expect(formatAddress({ ip: "::ffff:127.0.0.1", port: 5 })).toBe("127.0.0.1:5");
    expect(formatAddress({ ip: "2001:db8::1", port: 5 })).toBe("[2001:db8::1]:5");
  });
});

describe("resolveAddresses", () => {
  const fake = (answers: Record<string, { address: string; family: number }[]>): Lookup => async (host) => {
    const a = answers[host];
    if (a === undefined) throw Object.assign(new Error("nope"), { code: "ENOTFOUND" });
    return a;
  };

  test("the listening wildcard is [::] (dual-stack) first, 0.0.0.0 as the fallback; a sender needs a host", async () => {
    expect(await resolveAddresses({ host: "", port: 7 }, true)).toEqual([
      { family: AF.INET6, ip: "::", port: 7 },
      { family: AF.INET, ip: "0.0.0.0", port: 7 },
    ]);
    await expect(resolveAddresses({ host: "", port: 7 }, false)).rejects.toThrow(UsageError);
  });

  test("IP literals skip the resolver; names keep the resolver's order, without duplicates", async () => {
    const never: Lookup = async () => {
      throw new Error("must not be called");
    };
    expect(await resolveAddresses({ host: "192.0.2.1", port: 1 }, false, never)).toEqual([{ family: AF.INET, ip: "192.0.2.1", port: 1 }]);
    expect(await resolveAddresses({ host: "::1", port: 1 }, false, never)).toEqual([{ family: AF.INET6, ip: "::1", port: 1 }]);
    const r = await resolveAddresses({ host: "both", port: 2 }, false, fake({
      both: [{ address: "::1", family: 6 }, { address: "127.0.0.1", family: 4 }, { address: "::1", family: 6 }],
    }));
    expect(r).toEqual([{ family: AF.INET6, ip: "::1", port: 2 }, { family: AF.INET, ip: "127.0.0.1", port: 2 }]);
  });

  test("a name that does not resolve is a clear usage error", async () => {
    await expect(resolveAddresses({ host: "no.such.host", port: 2 }, false, fake({}))).rejects.toThrow(/cannot resolve host 'no.such.host' \(ENOTFOUND\)/);
  });

  test("the system resolver knows localhost", async () => {
    const r = await resolveAddresses({ host: "localhost", port: 3 }, false);
    expect(r.length).toBeGreaterThan(0);
    for (const a of r) expect(["127.0.0.1", "::1"]).toContain(a.ip);
  });
});

describe("sockaddr bytes", () => {
  test("IPv4 and IPv6 round-trip through sockaddr_in / sockaddr_in6 (port big-endian)", () => {
    for (const a of [
      { family: AF.INET, ip: "127.0.0.1", port: 7000 },
      { family: AF.INET, ip: "255.1.0.9", port: 1 },
      { family: AF.INET6, ip: "::1", port: 65535 },
      { family: AF.INET6, ip: "2001:db8::8:800:200c:417a", port: 443 },
      { family: AF.INET6, ip: "fe80::1", port: 80 },
      { family: AF.INET6, ip: "::", port: 9 },
    ] as const) {
      const b = sockaddrBytes(a);
      expect(b.length).toBe(a.family === AF.INET ? 16 : 28);
      expect((b[2] << 8) | b[3]).toBe(a.port);
      expect(parseSockaddr(b)).toEqual(a);
    }
  });

  test("ipv6Bytes: compression, embedded IPv4, and malformed text", () => {
    expect(Array.from(ipv6Bytes("::ffff:1.2.3.4"))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
    expect(Array.from(ipv6Bytes("1::"))).toEqual([0, 1, ...new Array(14).fill(0)]);
    expect(parseSockaddr(sockaddrBytes({ family: AF.INET6, ip: "::ffff:10.0.0.1", port: 1 }))?.ip).toBe("::ffff:10.0.0.1");
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7", "g::1"]) expect(() => ipv6Bytes(bad), bad).toThrow(UsageError);
  });
});

describe("listening", () => {
  async function reach(host: string, port: number): Promise<boolean> {
    return await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
  }

  test("the default wildcard is dual-stack: reachable over 127.0.0.1 and ::1", async () => {
    const l = listenOn(await resolveAddresses({ host: "", port: 0 }, true), true);
    try {
      expect(l.local.port).toBeGreaterThan(0);
      expect(await reach("127.0.0.1", l.local.port)).toBe(true);
      if (l.local.family === AF.INET6) expect(await reach("::1", l.local.port)).toBe(true);
    } finally {
      closeFd(l.fd);
    }
  });

  test("a port in use is a clear error (EADDRINUSE), not a fallback to another address", async () => {
    const l = listenOn([{ family: AF.INET, ip: "127.0.0.1", port: 0 }], false);
    try {
      expect(() => listenOn([{ family: AF.INET, ip: "127.0.0.1", port: l.local.port }], false)).toThrow(/EADDRINUSE/);
    } finally {
      closeFd(l.fd);
    }
  });
});
