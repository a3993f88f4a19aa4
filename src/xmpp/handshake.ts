/**
 * XEP-0114 §3 handshake: the component proves the shared secret with the lower-case hex SHA-1 of
 * stream id + secret. Compared in constant time so the digest cannot be guessed byte by byte.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export function handshakeDigest(streamId: string, secret: string): string {
  return createHash("sha1")
    .update(streamId + secret, "utf8")
    .digest("hex");
}

export function handshakeMatches(streamId: string, secret: string, offered: string): boolean {
  const expected = Buffer.from(handshakeDigest(streamId, secret));
  const got = Buffer.from(offered.trim().toLowerCase());
  return got.length === expected.length && timingSafeEqual(got, expected);
}
