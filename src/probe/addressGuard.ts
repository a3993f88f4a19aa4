/**
 * Which addresses the probe API may connect to. Without `[[listen.http]] probe_private`, addresses
 * in private, loopback, link-local, unique-local and other non-public ranges are refused, so the
 * API cannot be used to scan the operator's own network (also not by a domain whose DNS points
 * inside it). Checked on the resolved addresses, and the probe connects to exactly those.
 */
import { BlockList, isIP } from "node:net";

const RANGES: readonly [string, number, "ipv4" | "ipv6", string][] = [
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["10.0.0.0", 8, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "shared (carrier-grade NAT)"],
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["169.254.0.0", 16, "ipv4", "link-local"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.0.0.0", 24, "ipv4", "reserved (IETF protocol assignments)"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["198.18.0.0", 15, "ipv4", "reserved (benchmarking)"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["240.0.0.0", 4, "ipv4", "reserved"],
  ["::", 128, "ipv6", "unspecified"],
  ["::1", 128, "ipv6", "loopback"],
  // NAT64 prefixes reach IPv4 addresses, private ones included, through a translator.
  ["64:ff9b::", 96, "ipv6", "NAT64"],
  ["64:ff9b:1::", 48, "ipv6", "NAT64 (local use)"],
  ["100::", 64, "ipv6", "discard-only"],
  ["fc00::", 7, "ipv6", "unique local (ULA)"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["fec0::", 10, "ipv6", "site-local"],
  ["ff00::", 8, "ipv6", "multicast"],
];

// One list per kind of range, so a refusal can say which kind. BlockList also matches
// IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) against the IPv4 ranges.
const LISTS: readonly { kind: string; list: BlockList }[] = (() => {
  const byKind = new Map<string, BlockList>();
  for (const [network, prefix, family, kind] of RANGES) {
    let list = byKind.get(kind);
    if (list === undefined) {
      list = new BlockList();
      byKind.set(kind, list);
    }
    list.addSubnet(network, prefix, family);
  }
  return [...byKind].map(([kind, list]) => ({ kind, list }));
})();

/** The kind of non-public range `ip` is in ("loopback", "private", …), or undefined when public. */
export function nonPublicRange(ip: string): string | undefined {
  const version = isIP(ip);
  if (version === 0) return "not an IP address";
  const family = version === 4 ? "ipv4" : "ipv6";
  return LISTS.find(({ list }) => list.check(ip, family))?.kind;
}

/** The refusal text for `ip`, or undefined when the probe may connect to it. */
export function refusal(ip: string, allowPrivate: boolean): string | undefined {
  if (allowPrivate) return undefined;
  const kind = nonPublicRange(ip);
  if (kind === undefined) return undefined;
  return `${ip} is a ${kind} address; probes to non-public addresses are off ([[listen.http]] probe_private = false)`;
}
