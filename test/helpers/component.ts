/** A component speaking raw XEP-0114 over a WirePeer, for wire-level tests. */
import { createHash } from "node:crypto";
import { WirePeer } from "./wire.js";

export const COMPONENT_HEADER = (domain: string, extra = ""): string =>
  `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'${extra}>`;

export function digest(streamId: string, secret: string): string {
  return createHash("sha1")
    .update(streamId + secret)
    .digest("hex");
}

/**
 * Opens a component stream and returns the peer and the stream id Ferry gave it. `host` reaches a
 * real peer's component port on its own loopback address.
 */
export async function openComponent(
  port: number,
  domain: string,
  extra = "",
  host = "127.0.0.1",
): Promise<{ peer: WirePeer; streamId: string; header: string }> {
  const peer = await WirePeer.connect(port, host);
  peer.send(COMPONENT_HEADER(domain, extra));
  // Generous: a real peer on a busy machine can take seconds to answer (only a failure waits it out).
  const got = await peer.waitFor(/<stream:stream [^>]*>/, 15_000);
  const header = /<stream:stream [^>]*>/.exec(got)?.[0] ?? "";
  const streamId = / id=['"]([^'"]+)['"]/.exec(header)?.[1];
  if (streamId === undefined) throw new Error(`no stream id in ${header}`);
  return { peer, streamId, header };
}

/** Connects and authenticates a component; resolves once Ferry answered <handshake/>. */
export async function connectComponent(
  port: number,
  domain: string,
  secret: string,
  extra = "",
  host = "127.0.0.1",
): Promise<WirePeer> {
  const { peer, streamId } = await openComponent(port, domain, extra, host);
  peer.send(`<handshake>${digest(streamId, secret)}</handshake>`);
  await peer.waitFor(/<handshake\/>/, 15_000);
  // Keep what came after the handshake reply (stanzas may follow it in the same segment).
  peer.received = peer.received.slice(peer.received.indexOf("<handshake/>") + "<handshake/>".length);
  return peer;
}
