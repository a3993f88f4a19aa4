/** Ferry's side of the interop tests: its configuration, and one message checked end to end. */
import assert from "node:assert/strict";
import { freePort, type WirePeer } from "./wire.js";

export interface FerrySide {
  address: string;
  domain: string;
  secret: string;
  /** "ip:port" of the private DNS server. */
  dns: string;
  /** With a certificate: STARTTLS offered and required both ways. */
  tls?: { cert: string; key: string } | undefined;
}

export async function ferryConfig(side: FerrySide): Promise<{ config: string; componentPort: number }> {
  const componentPort = await freePort();
  const tls = side.tls;
  const config = `[general]
hosts = ["${side.domain}"]

[[listen.s2s]]
port = 5269
ip_address = "${side.address}"
${tls ? `tls.certfile = "${tls.cert}"\ntls.keyfile = "${tls.key}"\ntls.mode = "starttls_required"\n` : ""}
[[listen.service]]
port = ${componentPort}
ip_address = "${side.address}"
password = "${side.secret}"

[s2s]
outgoing.dns.servers = ["${side.dns}"]
outgoing.dns.timeout = 2
outgoing.connection_timeout = 5000
outgoing.max_retry_delay = 2
outgoing.tls.mode = "${tls ? "starttls_required" : "starttls"}"
`;
  return { config, componentPort };
}

/** Sends a message from one component and checks the one that arrives at the other. */
export async function deliver(from: WirePeer, to: WirePeer, fromJid: string, toJid: string): Promise<string> {
  const id = `m${String(Math.random()).slice(2, 10)}`;
  from.send(
    `<message from='${fromJid}' to='${toJid}' id='${id}' type='chat'><body>hello ${id} &amp; more</body></message>`,
  );
  const pattern = new RegExp(`<message[^>]*id=['"]${id}['"][\\s\\S]*?</message>`);
  const got = await to.waitFor(pattern, 15_000);
  const stanza = pattern.exec(got)?.[0] ?? "";
  assert.match(stanza, new RegExp(`from=['"]${fromJid}['"]`));
  assert.match(stanza, new RegExp(`to=['"]${toJid}['"]`));
  assert.match(stanza, new RegExp(`<body>hello ${id} &amp; more</body>`));
  return stanza;
}
