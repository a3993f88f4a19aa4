/**
 * Hostile peers against a running Ferry (issue 10, "Hostile input"), over real sockets on loopback:
 * XML attacks (entity bombs, external entities, deep nesting, huge attributes, invalid UTF-8, NUL,
 * unclosed tags, slowloris) on the S2S and XEP-0114 listeners, dialback keys of every wrong form,
 * spoofed addresses on an authenticated stream, and loops back to Ferry itself.
 *
 * Each case asserts the exact bytes Ferry answers with and that it closes the connection; after
 * each case a well-behaved S2S session and a well-behaved component must still be served, and at
 * the end Ferry must not have thrown or logged a crash and its memory must be back near where it
 * started.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { dialbackKey } from "../../src/xmpp/dialback.js";
import { COMPONENT_HEADER } from "../helpers/component.js";
import {
  authenticate,
  CANARY_COMPONENT,
  canaryComponent,
  canaryS2s,
  CountingServer,
  CrashWatch,
  FakeAuthoritative,
  ferryToml,
  goodKey,
  judgeKey,
  LOCAL,
  MiB,
  openComponent,
  openS2s,
  REMOTE,
  S2S_HEADER,
  SECRET,
  settledMemory,
  sleep,
  StallMonitor,
  startFerry,
  WildcardDns,
  WirePeer,
  type MemorySample,
  type RunningFerry,
} from "./hostileHarness.js";
import { freePort } from "../helpers/wire.js";

const STATE_TIMEOUT = 1500;
/** How long Ferry may take beyond a deadline it is given (timers, a loaded CI machine). */
const SLACK = 1500;
/** Longest the event loop may stall on one hostile input: every other session waits meanwhile. */
const MAX_STALL_MS = 250;

// ---- exact bytes -------------------------------------------------------------------------------

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const ID = "[0-9a-f]{32}";
/** The header Ferry writes only to carry an error (RFC 6120 §4.9.1.2), on each listener. */
const BARE = (ns: string): string =>
  esc(
    `<?xml version='1.0'?><stream:stream xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams' id='`,
  ) +
  ID +
  esc("'>");
const S2S_BARE = BARE("jabber:server");
const COMPONENT_OPENED = (domain: string): string =>
  esc(
    `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='${domain}' id='`,
  ) +
  ID +
  esc("'>");
/** `<stream:error>` with this condition (and any text), then the end of the stream. */
const ERROR = (condition: string): string =>
  esc(`<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`) +
  `(?:${esc("<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>")}[^<]*${esc("</text>")})?` +
  esc("</stream:error></stream:stream>");

/** The whole of what Ferry wrote must be exactly these parts, in order. */
function assertBytes(received: string, ...parts: string[]): void {
  assert.match(received, new RegExp(`^${parts.join("")}$`, "s"));
}

/** Waits until Ferry has closed the TCP connection, failing after `ms`. */
async function closedWithin(peer: WirePeer, ms: number): Promise<number> {
  const started = Date.now();
  await peer.waitClosed(ms);
  return Date.now() - started;
}

/** Sends a raw byte sequence on a fresh connection to `port` and waits for Ferry to close it. */
async function rawSession(
  port: number,
  chunks: (string | Buffer)[],
  closeWithinMs = 3000,
): Promise<{ received: string; stallMs: number; closedAfterMs: number }> {
  const peer = await WirePeer.connect(port);
  const monitor = new StallMonitor().start();
  for (const chunk of chunks) peer.send(chunk);
  const closedAfterMs = await closedWithin(peer, closeWithinMs);
  return { received: peer.received, stallMs: monitor.stop(), closedAfterMs };
}

/**
 * Opens an S2S stream (header answered, features received), then sends `payload` and waits for
 * Ferry to close; returns only what Ferry wrote after its features.
 */
async function afterHeader(
  port: number,
  payload: string | Buffer,
  closeWithinMs = 3000,
): Promise<{ received: string; stallMs: number; closedAfterMs: number }> {
  const { peer } = await openS2s(port);
  peer.received = "";
  const monitor = new StallMonitor().start();
  peer.send(payload);
  const closedAfterMs = await closedWithin(peer, closeWithinMs);
  return { received: peer.received, stallMs: monitor.stop(), closedAfterMs };
}

/** Any stream error, then the end of the stream. */
const ANY_ERROR = ERROR("__c__").replace("__c__", "[a-z-]+");

const H_S2S = S2S_HEADER(LOCAL, REMOTE);
const H_COMPONENT = COMPONENT_HEADER("hostile.example");
const COMPONENT_HOSTILE = COMPONENT_OPENED("hostile.example");
const BOMB = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>`;
const XXE = `<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`;

function manyAttributes(n: number, prefix = "a", value = "1"): string {
  let out = "";
  for (let i = 0; i < n; i++) out += ` ${prefix}${i}='${value}${prefix === "xmlns:p" ? i : ""}'`;
  return out;
}

describe("hostile peers on the wire", () => {
  let ferry: RunningFerry;
  let auth: FakeAuthoritative;
  let counting: CountingServer;
  let dns: WildcardDns;
  let canary: WirePeer;
  let baseline: MemorySample;
  const crashes = new CrashWatch();

  before(async () => {
    crashes.install();
    auth = await FakeAuthoritative.start(judgeKey);
    counting = await CountingServer.start();
    dns = await WildcardDns.start("127.0.0.1");
    const [s2sPort, componentPort] = [await freePort(), await freePort()];
    const toml = ferryToml(
      {
        s2sPort,
        componentPort,
        authoritativePort: auth.port,
        dnsServer: dns.server,
        outgoingPort: counting.port,
      },
      [REMOTE, "other.example", "sub.remote.example"],
      // A domain whose server is Ferry itself: stanzas to it loop back.
    ).replace(
      "outgoing.address = [",
      `outgoing.address = [{host = "loop.example", ip_address = "127.0.0.1", port = ${s2sPort}}, `,
    );
    ferry = await startFerry(toml);
    canary = await openComponent(ferry.componentPort, CANARY_COMPONENT, SECRET);
    await canaryS2s(ferry, canary);
    await canaryComponent(ferry);
    baseline = await settledMemory();
  });

  afterEach(async () => {
    // Ferry still serves well-behaved peers after every hostile one.
    await canaryS2s(ferry, canary);
    await canaryComponent(ferry);
  });

  after(async () => {
    try {
      await sleep(200);
      const now = await settledMemory();
      console.log(
        `memory after a full GC: heap ${(baseline.heapUsed / MiB).toFixed(1)} → ${(now.heapUsed / MiB).toFixed(1)} MiB, ` +
          `rss ${(baseline.rss / MiB).toFixed(1)} → ${(now.rss / MiB).toFixed(1)} MiB`,
      );
      assert.deepEqual(crashes.errors, [], "no uncaught exception or unhandled rejection");
      assert.deepEqual(ferry.log.crashes, [], "no actor crashed");
      assert.ok(
        now.heapUsed - baseline.heapUsed < 8 * MiB,
        `heap ${(baseline.heapUsed / MiB).toFixed(1)} MiB before, ${(now.heapUsed / MiB).toFixed(1)} MiB after`,
      );
    } finally {
      crashes.uninstall();
      canary.destroy();
      await ferry.server.stop();
      await Promise.all([auth.close(), counting.close(), dns.close()]);
    }
  });

  describe("XML attacks on the S2S listener", () => {
    it("refuses a billion-laughs DTD after the header with <restricted-xml/>", async () => {
      const { received } = await afterHeader(ferry.s2sPort, BOMB + "<message>&lol3;</message>");
      assertBytes(received, ERROR("restricted-xml"));
    });

    it("refuses a billion-laughs DTD in the prolog, before any header, with <restricted-xml/>", async () => {
      const { received } = await rawSession(ferry.s2sPort, [
        `<?xml version='1.0'?>${BOMB}${H_S2S.slice(21)}`,
      ]);
      assertBytes(received, S2S_BARE, ERROR("restricted-xml"));
    });

    it("refuses an external entity declaration with <restricted-xml/> and never fetches it", async () => {
      const { received } = await rawSession(ferry.s2sPort, [`<?xml version='1.0'?>${XXE}${H_S2S.slice(21)}`]);
      assertBytes(received, S2S_BARE, ERROR("restricted-xml"));
    });

    it("refuses a reference to an undeclared (external) entity with <not-well-formed/>", async () => {
      const { received } = await afterHeader(ferry.s2sPort, "<message><body>&xxe;</body></message>");
      assertBytes(received, ERROR("not-well-formed"));
    });

    it("refuses 10,000 levels of nesting with <policy-violation/> without stalling the event loop", async () => {
      const deep = `<message from='u@${REMOTE}' to='x@${LOCAL}'>${"<a>".repeat(10_000)}${"</a>".repeat(10_000)}</message>`;
      const { received, stallMs } = await afterHeader(ferry.s2sPort, deep, 15_000);
      assertBytes(received, ERROR("policy-violation"));
      assert.ok(stallMs < MAX_STALL_MS, `the event loop stalled ${stallMs.toFixed(0)} ms on 10,000 levels`);
    });

    it("refuses 20,000 levels of unclosed nesting (within max_stanza_size) at the depth limit, without stalling", async () => {
      const { received, stallMs } = await afterHeader(
        ferry.s2sPort,
        "<a>".repeat(20_000),
        STATE_TIMEOUT + SLACK + 5000,
      );
      assertBytes(received, ERROR("policy-violation"));
      assert.ok(
        stallMs < MAX_STALL_MS,
        `the event loop stalled ${stallMs.toFixed(0)} ms on 20,000 open tags`,
      );
    });

    it("refuses a 10 MB attribute value with <policy-violation/> and keeps none of it", async () => {
      const before = await settledMemory();
      // Built and dropped inside the session, so that only what Ferry keeps is measured.
      const session = (): Promise<{ received: string }> =>
        afterHeader(
          ferry.s2sPort,
          `<message from='u@${REMOTE}' to='x@${LOCAL}' a='${"x".repeat(10_000_000)}'/>`,
        );
      const { received } = await session();
      assertBytes(received, ERROR("policy-violation"));
      await sleep(100);
      const now = await settledMemory();
      assert.ok(
        now.heapUsed - before.heapUsed < 4 * MiB,
        `heap grew ${((now.heapUsed - before.heapUsed) / MiB).toFixed(1)} MiB`,
      );
    });

    it("refuses 100,000 attributes on a stanza with <policy-violation/>", async () => {
      const { received } = await afterHeader(ferry.s2sPort, `<message${manyAttributes(100_000)}/>`);
      assertBytes(received, ERROR("policy-violation"));
    });

    it("refuses 100,000 namespace declarations on a stanza with <policy-violation/>", async () => {
      const { received } = await afterHeader(
        ferry.s2sPort,
        `<message${manyAttributes(100_000, "xmlns:p", "urn:")}/>`,
      );
      assertBytes(received, ERROR("policy-violation"));
    });

    it("refuses 100,000 namespace declarations on the stream header with <policy-violation/>", async () => {
      const header = `${H_S2S.slice(0, -1)}${manyAttributes(100_000, "xmlns:p", "urn:")}>`;
      const { received } = await rawSession(ferry.s2sPort, [header]);
      assertBytes(received, S2S_BARE, ERROR("policy-violation"));
    });

    it("answers invalid UTF-8 in a stanza with <unsupported-encoding/> (RFC 6120 §4.9.3.22)", async () => {
      const { received } = await afterHeader(
        ferry.s2sPort,
        Buffer.concat([
          Buffer.from("<message><body>caf"),
          Buffer.from([0xc3, 0x28]),
          Buffer.from("</body></message>"),
        ]),
      );
      assertBytes(received, ERROR("unsupported-encoding"));
    });

    it("answers invalid UTF-8 in the stream header with <unsupported-encoding/>", async () => {
      const header = Buffer.from(H_S2S.replace(REMOTE, "r\u00e9mote.example"));
      const at = header.indexOf(0xc3);
      header[at] = 0xc0; // an overlong encoding
      const { received } = await rawSession(ferry.s2sPort, [header]);
      assertBytes(received, S2S_BARE, ERROR("unsupported-encoding"));
    });

    it("answers a header declaring another encoding than UTF-8 with <unsupported-encoding/>", async () => {
      const { received } = await rawSession(ferry.s2sPort, [
        `<?xml version='1.0' encoding='UTF-16'?>${H_S2S.slice("<?xml version='1.0'?>".length)}`,
      ]);
      assertBytes(received, S2S_BARE, ERROR("unsupported-encoding"));
    });

    it("refuses a NUL byte in a stanza with <not-well-formed/>", async () => {
      const { received } = await afterHeader(ferry.s2sPort, "<message><body>a\u0000b</body></message>");
      assertBytes(received, ERROR("not-well-formed"));
    });

    it("refuses a NUL byte before the header with <not-well-formed/>", async () => {
      const { received } = await rawSession(ferry.s2sPort, ["\u0000" + H_S2S]);
      assertBytes(received, S2S_BARE, ERROR("not-well-formed"));
    });

    it("ends a stream that never closes a tag with <connection-timeout/> at state_timeout", async () => {
      const { received, closedAfterMs } = await afterHeader(
        ferry.s2sPort,
        "<message from='u@remote.example' to='x@a.example'><body>never ends",
        STATE_TIMEOUT + SLACK,
      );
      assertBytes(received, ERROR("connection-timeout"));
      assert.ok(closedAfterMs >= STATE_TIMEOUT - 200, `closed after ${closedAfterMs} ms`);
    });

    it("ends a slowloris header (one byte a second) with <connection-timeout/> at state_timeout", async () => {
      const peer = await WirePeer.connect(ferry.s2sPort);
      const started = Date.now();
      let sent = 0;
      for (const byte of Buffer.from(H_S2S)) {
        if (peer.closed) break;
        peer.send(Buffer.from([byte]));
        sent++;
        await Promise.race([sleep(1000), peer.waitClosed(1000).catch(() => undefined)]);
      }
      await peer.waitClosed(SLACK);
      assertBytes(peer.received, S2S_BARE, ERROR("connection-timeout"));
      assert.ok(Date.now() - started < STATE_TIMEOUT + SLACK, `closed after ${Date.now() - started} ms`);
      assert.ok(sent <= 4, `Ferry read ${sent} bytes of a header sent at one byte a second`);
    });

    it("ends a slowloris stanza after the header with <connection-timeout/> at state_timeout", async () => {
      const { peer } = await openS2s(ferry.s2sPort);
      peer.received = "";
      const started = Date.now();
      for (const byte of Buffer.from(
        `<db:result from='${REMOTE}' to='${LOCAL}'>${"ab".repeat(32)}</db:result>`,
      )) {
        if (peer.closed) break;
        peer.send(Buffer.from([byte]));
        await Promise.race([sleep(1000), peer.waitClosed(1000).catch(() => undefined)]);
      }
      await peer.waitClosed(SLACK);
      assertBytes(peer.received, ERROR("connection-timeout"));
      assert.ok(Date.now() - started < STATE_TIMEOUT + SLACK, `closed after ${Date.now() - started} ms`);
    });

    it("answers an element that is not a stanza with <unsupported-stanza-type/> (RFC 6120 §4.9.3.23)", async () => {
      const { peer } = await openS2s(ferry.s2sPort);
      peer.received = "";
      peer.send("<foo xmlns='urn:example:hostile'/>");
      await closedWithin(peer, 1000);
      assertBytes(peer.received, ERROR("unsupported-stanza-type"));
    });
  });

  describe("dialback keys of every wrong form", () => {
    it("answers each wrong key with type='invalid' and never authorizes the stream", async () => {
      const keys: [string, (streamId: string) => string][] = [
        ["empty", () => ""],
        ["whitespace", () => " \n\t "],
        ["non-hex", () => "not a key at all!"],
        ["unicode", () => "é😀\u2028"],
        ["markup-escaped", () => "&lt;db:verify&gt;&amp;"],
        ["huge but within max_stanza_size", () => "ab".repeat(30_000)],
        ["a key for another stream id (replayed)", () => goodKey("0123456789abcdef0123456789abcdef")],
        [
          "a key for another receiving domain",
          (id) => dialbackKey("remote-dialback-secret", "other.example", REMOTE, id),
        ],
        [
          "a key made with Ferry's own secret",
          (id) => dialbackKey("hostile-dialback-secret", LOCAL, REMOTE, id),
        ],
      ];
      await Promise.all(
        keys.map(async ([label, key]) => {
          const { peer, streamId } = await openS2s(ferry.s2sPort);
          peer.received = "";
          peer.send(`<db:result from='${REMOTE}' to='${LOCAL}'>${key(streamId)}</db:result>`);
          await peer.waitFor(/type='invalid'\/>/, 5000).catch((err: unknown) => {
            throw new Error(`${label}: ${String(err)}`);
          });
          // Not authorized: a stanza now is refused.
          if (!peer.closed) peer.send(`<message from='u@${REMOTE}' to='x@${CANARY_COMPONENT}' id='sneak'/>`);
          await closedWithin(peer, STATE_TIMEOUT + SLACK);
          assert.match(
            peer.received,
            new RegExp(
              `^${esc(`<db:result from='${LOCAL}' to='${REMOTE}' type='invalid'/>`)}(?:${ANY_ERROR}|</stream:stream>)$`,
            ),
            label,
          );
          assert.doesNotMatch(canary.received, /id='sneak'/, `${label}: a stanza got through`);
        }),
      );
    });

    it("refuses a key larger than max_stanza_size with <policy-violation/>", async () => {
      const { peer } = await openS2s(ferry.s2sPort);
      peer.received = "";
      peer.send(`<db:result from='${REMOTE}' to='${LOCAL}'>${"ab".repeat(100_000)}</db:result>`);
      await closedWithin(peer, 3000);
      assertBytes(peer.received, ERROR("policy-violation"));
    });

    it("does not let a peer declare its own verdict (type='valid' and other types on db:result)", async () => {
      await Promise.all(
        ["valid", "invalid", "error", "bogus", ""].map(async (type) => {
          const { peer, streamId } = await openS2s(ferry.s2sPort);
          peer.received = "";
          peer.send(
            `<db:result from='${REMOTE}' to='${LOCAL}' type='${type}'>${goodKey(streamId)}</db:result>`,
          );
          await sleep(300);
          peer.send(`<message from='u@${REMOTE}' to='x@${CANARY_COMPONENT}' id='self-${type}'/>`);
          await closedWithin(peer, 2000);
          assertBytes(peer.received, ERROR("not-authorized"));
          assert.doesNotMatch(canary.received, new RegExp(`id='self-${type}'`));
        }),
      );
    });

    for (const [label, attrs] of [
      ["no from", `to='${LOCAL}'`],
      ["an empty from", `from='' to='${LOCAL}'`],
      ["a from that is not a domain", `from='user@${REMOTE}/res' to='${LOCAL}'`],
    ] as const) {
      it(`answers a db:result with ${label} with <improper-addressing/>`, async () => {
        const { peer, streamId } = await openS2s(ferry.s2sPort);
        peer.received = "";
        peer.send(`<db:result ${attrs}>${goodKey(streamId)}</db:result>`);
        await closedWithin(peer, 1000);
        assertBytes(peer.received, ERROR("improper-addressing"));
      });
    }

    it("answers a db:result with no to with <improper-addressing/> or an item-not-found dialback error", async () => {
      const { peer, streamId } = await openS2s(ferry.s2sPort);
      peer.received = "";
      peer.send(`<db:result from='${REMOTE}'>${goodKey(streamId)}</db:result>`);
      await peer.waitFor(/improper-addressing|item-not-found/, 1000);
      assert.match(
        peer.received,
        new RegExp(
          `^(?:${ERROR("improper-addressing")}|<db:result from='[^']*' to='${esc(REMOTE)}' type='error'><error type='cancel'>` +
            `<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>.*</error></db:result>)`,
        ),
      );
    });

    it("answers a db:result to a domain it does not serve with an item-not-found dialback error", async () => {
      const { peer, streamId } = await openS2s(ferry.s2sPort);
      peer.received = "";
      peer.send(`<db:result from='${REMOTE}' to='nobody.example'>${goodKey(streamId)}</db:result>`);
      await peer.waitFor(/<\/db:result>/);
      assertBytes(
        peer.received,
        esc(
          `<db:result from='nobody.example' to='${REMOTE}' type='error'><error type='cancel'>` +
            `<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`,
        ),
        "(?:<text [^>]*>[^<]*</text>)?",
        esc("</error></db:result>"),
      );
      peer.destroy();
    });

    it("answers db:verify for a stream id it never issued with type='invalid'", async () => {
      const { peer } = await openS2s(ferry.s2sPort);
      peer.received = "";
      const id = "f00dfeedf00dfeedf00dfeedf00dfeed";
      peer.send(`<db:verify from='${REMOTE}' to='${LOCAL}' id='${id}'>${"ab".repeat(32)}</db:verify>`);
      await peer.waitFor(/\/>$/);
      assertBytes(
        peer.received,
        esc(`<db:verify from='${LOCAL}' to='${REMOTE}' id='${id}' type='invalid'/>`),
      );
      peer.destroy();
    });

    it("answers db:verify with no id with <improper-addressing/> or type='invalid'", async () => {
      const { peer } = await openS2s(ferry.s2sPort);
      peer.received = "";
      peer.send(`<db:verify from='${REMOTE}' to='${LOCAL}'>${"ab".repeat(32)}</db:verify>`);
      await peer.waitFor(/improper-addressing|type='invalid'/, 1000);
      assert.match(
        peer.received,
        new RegExp(
          `^(?:${ERROR("improper-addressing")}|${esc(`<db:verify from='${LOCAL}' to='${REMOTE}'`)}(?: id='')? type='invalid'/>)`,
        ),
      );
    });

    it("answers db:verify for a domain it does not serve with an item-not-found dialback error (XEP-0220 §2.2.2)", async () => {
      const { peer } = await openS2s(ferry.s2sPort);
      peer.received = "";
      peer.send(`<db:verify from='${REMOTE}' to='nobody.example' id='abc'>${"ab".repeat(32)}</db:verify>`);
      await peer.waitFor(/\/>$|<\/db:verify>$/);
      assertBytes(
        peer.received,
        esc(
          `<db:verify from='nobody.example' to='${REMOTE}' id='abc' type='error'><error type='cancel'>` +
            `<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`,
        ),
        "(?:<text [^>]*>[^<]*</text>)?",
        esc("</error></db:verify>"),
      );
      peer.destroy();
    });

    it("closes the stream after an invalid verdict even when another domain is authorized on it (XEP-0220 §2.2.1)", async () => {
      const { peer, streamId } = await openS2s(ferry.s2sPort);
      await authenticate(peer, streamId);
      peer.received = "";
      peer.send(`<db:result from='other.example' to='${LOCAL}'>${"cd".repeat(32)}</db:result>`);
      await peer.waitFor(/type='invalid'|type='error'/, 5000);
      if (/type='error'/.test(peer.received)) {
        // The alternative XEP-0220 allows: a dialback error instead of invalid, the stream kept.
        assert.match(
          peer.received,
          /<db:result from='a\.example' to='other\.example' type='error'><error type='[a-z]+'><forbidden /,
        );
        return;
      }
      assert.match(peer.received, /^<db:result from='a\.example' to='other\.example' type='invalid'\/>/);
      // "The Receiving Server ... MUST close the XML stream" — not wait for it to go idle.
      await closedWithin(peer, 1000);
      assert.match(peer.received, /<\/stream:stream>$/);
    });
  });

  describe("spoofed addresses on an authenticated stream", () => {
    for (const [label, from, condition] of [
      ["a domain not authorized on this stream", "u@other.example", "invalid-from"],
      ["a subdomain of the authorized domain", "u@sub.remote.example", "invalid-from"],
      ["Ferry's own domain", `u@${LOCAL}`, "invalid-from"],
      ["Ferry's own domain, bare", LOCAL, "invalid-from"],
      ["Ferry's introspection address", "s2s.a.example", "invalid-from"],
      ["no from at all", undefined, "improper-addressing"],
      ["a from that is not a JID", "u@@remote.example", "improper-addressing"],
    ] as const) {
      it(`ends the stream when a stanza comes from ${label} with <${condition}/>`, async () => {
        const { peer, streamId } = await openS2s(ferry.s2sPort);
        await authenticate(peer, streamId);
        peer.received = "";
        const fromAttr = from === undefined ? "" : ` from='${from}'`;
        peer.send(`<message${fromAttr} to='x@${CANARY_COMPONENT}' id='spoof'><body>spoofed</body></message>`);
        await closedWithin(peer, 1000);
        assertBytes(peer.received, ERROR(condition));
        assert.doesNotMatch(canary.received, /id='spoof'/);
      });
    }

    it("ends the stream with <host-unknown/> for a stanza to a domain Ferry does not serve", async () => {
      const { peer, streamId } = await openS2s(ferry.s2sPort);
      await authenticate(peer, streamId);
      peer.received = "";
      peer.send(`<message from='u@${REMOTE}' to='x@${REMOTE}' id='relay'/>`);
      await closedWithin(peer, 1000);
      assertBytes(peer.received, ERROR("host-unknown"));
    });
  });

  describe("loops back to Ferry", () => {
    for (const from of [LOCAL, "s2s.a.example"]) {
      it(`refuses dialback claiming Ferry's own ${from} without connecting to itself`, async () => {
        const connections = counting.total;
        const queries = dns.queries.length;
        const verifies = auth.requests.length;
        // The header itself may already be refused; else the dialback request must be.
        const peer = await WirePeer.connect(ferry.s2sPort);
        peer.send(S2S_HEADER(LOCAL, from));
        await peer.waitFor(/<\/stream:features>|<\/stream:stream>/);
        const streamId = / id='([0-9a-f]+)'/.exec(peer.received)?.[1] ?? "";
        const header = /^.*?<\/stream:features>/s.exec(peer.received)?.[0] ?? "";
        peer.received = peer.received.slice(header.length);
        if (!peer.closed && header !== "") {
          peer.send(`<db:result from='${from}' to='${LOCAL}'>${goodKey(streamId, from)}</db:result>`);
        }
        await peer
          .waitFor(/invalid-from|type='invalid'|type='error'/, STATE_TIMEOUT + SLACK)
          .catch(() => undefined);
        assert.deepEqual(
          dns.queries.slice(queries).filter((q) => q.endsWith(from)),
          [],
          "no DNS lookup of our own domain",
        );
        assert.equal(counting.total, connections, "no outgoing connection to verify our own domain");
        assert.equal(auth.requests.length, verifies);
        assert.match(
          peer.received,
          new RegExp(
            `^(?:${ERROR("invalid-from")}|<db:result from='${esc(LOCAL)}' to='${esc(from)}' type='(?:invalid|error)'[ />])`,
          ),
        );
        peer.destroy();
      });
    }

    it("bounces once, without a storm, a stanza to a domain whose server is Ferry itself", async () => {
      const component = await openComponent(ferry.componentPort, "looper.example", SECRET);
      component.send(
        `<message from='u@looper.example' to='x@loop.example' id='loop1'><body>round and round</body></message>`,
      );
      await component.waitFor(/id='loop1' type='error'/, 5000);
      await sleep(1000);
      assert.equal(component.count(/id='loop1'/g), 1, "one bounce");
      assert.match(
        component.received,
        /^<message id='loop1' type='error' to='u@looper\.example' from='x@loop\.example'><body>round and round<\/body><error type='(?:wait|cancel)'><remote-server-(?:timeout|not-found) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/>/,
      );
      const loops = ferry.log.lines.filter(
        (l) => l.tag === "XMPPI" && /loop\.example/.test(l.message),
      ).length;
      assert.ok(loops <= 3, `${loops} incoming stream lines for loop.example`);
      component.destroy();
    });
  });

  describe("XML attacks on the component (XEP-0114) listener", () => {
    it("refuses a billion-laughs DTD with <restricted-xml/>", async () => {
      const { received } = await rawSession(ferry.componentPort, [H_COMPONENT, BOMB]);
      assertBytes(received, COMPONENT_HOSTILE, ERROR("restricted-xml"));
    });

    it("refuses 20,000 levels of nesting in a handshake at the depth limit, without stalling", async () => {
      const { received, stallMs } = await rawSession(
        ferry.componentPort,
        [H_COMPONENT, "<handshake>" + "<a>".repeat(20_000)],
        STATE_TIMEOUT + SLACK + 15_000,
      );
      assertBytes(received, COMPONENT_HOSTILE, ERROR("policy-violation"));
      assert.ok(stallMs < MAX_STALL_MS, `the event loop stalled ${stallMs.toFixed(0)} ms`);
    });

    it("answers invalid UTF-8 with <unsupported-encoding/>", async () => {
      const { received } = await rawSession(ferry.componentPort, [
        H_COMPONENT,
        Buffer.from([0x3c, 0x61, 0x3e, 0xff]),
      ]);
      // The UTF-8 check runs on each slice before it is parsed: when the header came in the same
      // read, the error goes out with a bare header (RFC 6120 §4.9.1.2).
      assertBytes(
        received,
        `(?:${COMPONENT_HOSTILE}|${BARE("jabber:component:accept")})`,
        ERROR("unsupported-encoding"),
      );
    });

    it("refuses a NUL byte with <not-well-formed/>", async () => {
      const { received } = await rawSession(ferry.componentPort, [
        H_COMPONENT,
        "<handshake>\u0000</handshake>",
      ]);
      assertBytes(received, COMPONENT_HOSTILE, ERROR("not-well-formed"));
    });

    it("refuses a 10 MB attribute value with <policy-violation/>", async () => {
      const { received } = await rawSession(ferry.componentPort, [
        H_COMPONENT,
        `<handshake a='${"x".repeat(10_000_000)}'/>`,
      ]);
      assertBytes(received, COMPONENT_HOSTILE, ERROR("policy-violation"));
    });

    it("ends a handshake that never closes its tag with <connection-timeout/>", async () => {
      const { received } = await rawSession(
        ferry.componentPort,
        [H_COMPONENT, "<handshake>0123"],
        STATE_TIMEOUT + SLACK,
      );
      assertBytes(received, COMPONENT_HOSTILE, ERROR("connection-timeout"));
    });

    it("ends a slowloris header (one byte a second) with <connection-timeout/> at state_timeout", async () => {
      const peer = await WirePeer.connect(ferry.componentPort);
      const started = Date.now();
      for (const byte of Buffer.from(H_COMPONENT)) {
        if (peer.closed) break;
        peer.send(Buffer.from([byte]));
        await Promise.race([sleep(1000), peer.waitClosed(1000).catch(() => undefined)]);
      }
      await peer.waitClosed(SLACK);
      assertBytes(peer.received, BARE("jabber:component:accept"), ERROR("connection-timeout"));
      assert.ok(Date.now() - started < STATE_TIMEOUT + SLACK, `closed after ${Date.now() - started} ms`);
    });

    it("answers spoofed and missing addresses from a connected component with stanza errors", async () => {
      const component = await openComponent(ferry.componentPort, "spoofer.example", SECRET);
      component.send(
        `<message from='u@evil.example' to='x@${CANARY_COMPONENT}' id='s1'/>` +
          `<message from='u@${LOCAL}' to='x@${CANARY_COMPONENT}' id='s2'/>` +
          `<message to='x@${CANARY_COMPONENT}' id='s3'/>` +
          `<iq from='u@spoofer.example' type='get' id='s4'><ping xmlns='urn:xmpp:ping'/></iq>`,
      );
      await component.waitFor(/id='s4'/);
      const error = (condition: string): string =>
        esc(`<error type='modify'><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>`) +
        `<text [^>]*>[^<]*</text></error>`;
      assertBytes(
        component.received,
        esc(`<message id='s1' type='error' to='u@evil.example' from='x@${CANARY_COMPONENT}'>`),
        error("bad-request"),
        "</message>",
        esc(`<message id='s2' type='error' to='u@${LOCAL}' from='x@${CANARY_COMPONENT}'>`),
        error("bad-request"),
        "</message>",
        esc(`<message id='s3' type='error' from='x@${CANARY_COMPONENT}'>`),
        error("jid-malformed"),
        "</message>",
        esc(`<iq type='error' id='s4' to='u@spoofer.example'><ping xmlns='urn:xmpp:ping'/>`),
        error("jid-malformed"),
        "</iq>",
      );
      assert.doesNotMatch(canary.received, /id='s[123]'/);
      component.destroy();
    });

    it("refuses 100,000 attributes from a connected component with <policy-violation/>", async () => {
      const component = await openComponent(ferry.componentPort, "attrs.example", SECRET);
      component.send(
        `<message from='u@attrs.example' to='x@${CANARY_COMPONENT}'${manyAttributes(100_000)}/>`,
      );
      await closedWithin(component, 3000);
      assertBytes(component.received, ERROR("policy-violation"));
    });
  });
});
