/**
 * Property tests of the stream parser against hostile input (issue 10, "Hostile input"): more than
 * 100,000 generated streams — valid ones cut into arbitrary chunks, mutated ones, random bytes,
 * and families of known attacks — each run checking that the parser never throws, reports at most
 * one end or error and nothing after it, and never holds more than max_stanza_size (plus one slice)
 * of a stanza.
 *
 * FERRY_FUZZ_SEED replays a failing run; FERRY_FUZZ_SCALE (default 1) multiplies the run counts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  applyMutations,
  chunking,
  element,
  elementCount,
  feed,
  HOSTILE_FRAGMENTS,
  INVALID_UTF8,
  mutation,
  S2S_STREAM_HEADER,
  split,
  streamHeader,
  streamText,
  validStream,
  type Outcome,
} from "./hostileXml.js";

const SEED = process.env.FERRY_FUZZ_SEED === undefined ? 0x10ad : Number(process.env.FERRY_FUZZ_SEED);
const SCALE = Number(process.env.FERRY_FUZZ_SCALE ?? "1");
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
let total = 0;
const params = (n: number): fc.Parameters<unknown> => {
  total += runs(n);
  return { numRuns: runs(n), seed: SEED, includeErrorInReport: true };
};

/** saxes is fed at most this much at once (src/xml/streamParser.ts SLICE_BYTES). */
const SLICE = 16 * 1024;

function assertSane(out: Outcome, context: string): void {
  assert.deepEqual(out.violations, [], context);
  const last = out.events.findIndex((e) => e === "end" || e.startsWith("error:"));
  assert.ok(last === -1 || last === out.events.length - 1, `events after the end or error: ${context}`);
}

const show = (bytes: Buffer): string => JSON.stringify(bytes.toString("latin1").slice(0, 2000));

describe("stream parser properties (fast-check)", () => {
  it("parses valid streams identically however they are chunked", () => {
    fc.assert(
      fc.property(validStream, chunking, (stream, sizes) => {
        const bytes = Buffer.from(streamText(stream));
        const whole = feed([bytes], Infinity);
        const chunked = feed(split(bytes, sizes), Infinity);
        assertSane(chunked, show(bytes));
        assert.equal(
          whole.terminal,
          stream.footer ? "end" : undefined,
          `${whole.errorText ?? ""} ${show(bytes)}`,
        );
        assert.equal(whole.elements.length, elementCount(stream));
        assert.deepEqual(chunked.events, whole.events);
      }),
      params(15_000),
    );
  });

  it("delivers stanzas up to max_stanza_size and refuses a larger one within one slice of the limit", () => {
    const stanza = fc.oneof(
      element.map((t) => t.xml),
      fc.integer({ min: 1, max: 60_000 }).map((n) => `<message><body>${"é".repeat(n)}</body></message>`),
      fc.integer({ min: 1, max: 60_000 }).map((n) => `<message a='${"x".repeat(n)}'/>`),
    );
    fc.assert(
      fc.property(
        fc.array(stanza, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 256, max: 16_384 }),
        chunking,
        (stanzas, limit, sizes) => {
          const bytes = Buffer.from(S2S_STREAM_HEADER + stanzas.join(""));
          const chunks = split(bytes, sizes);
          const out = feed(chunks, limit);
          assertSane(out, `limit ${limit}`);
          const firstTooBig = stanzas.findIndex((s) => Buffer.byteLength(s) > limit);
          if (firstTooBig === -1) {
            assert.equal(out.terminal, undefined, out.errorText);
            assert.equal(out.elements.length, stanzas.length);
            return;
          }
          assert.equal(out.terminal, "policy-violation", out.errorText);
          assert.equal(out.elements.length, firstTooBig, "every stanza before the large one is delivered");
          const start = Buffer.byteLength(S2S_STREAM_HEADER + stanzas.slice(0, firstTooBig).join(""));
          const biggestChunk = chunks.reduce((max, c) => Math.max(max, c.length), 0);
          assert.ok(
            out.bytesAtTerminal <= start + limit + SLICE + biggestChunk,
            `refused after ${out.bytesAtTerminal} bytes, the stanza started at ${start}, limit ${limit}`,
          );
        },
      ),
      params(3_000),
    );
  });

  it("survives mutated streams in any chunking and under any limit: no exception, at most one end or error", () => {
    fc.assert(
      fc.property(
        validStream,
        fc.array(mutation, { minLength: 1, maxLength: 5 }),
        chunking,
        fc.constantFrom(Infinity, 64, 300, 4096, 65_536),
        (stream, mutations, sizes, limit) => {
          const bytes = applyMutations(Buffer.from(streamText(stream)), mutations);
          const out = feed(split(bytes, sizes), limit);
          assertSane(out, `limit ${limit}: ${show(bytes)}`);
          if (out.terminal !== undefined && out.terminal !== "end") {
            assert.ok((out.errorText ?? "") !== "", "an error says what is wrong");
          }
        },
      ),
      params(40_000),
    );
  });

  it("reaches the same verdict on mutated streams whatever the chunking (no limit)", () => {
    fc.assert(
      fc.property(
        validStream,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        chunking,
        (stream, mutations, sizes) => {
          const bytes = applyMutations(Buffer.from(streamText(stream)), mutations);
          const whole = feed([bytes], Infinity);
          const chunked = feed(split(bytes, sizes), Infinity);
          assertSane(chunked, show(bytes));
          const context = `${show(bytes)} whole: ${JSON.stringify(whole.events)} chunked: ${JSON.stringify(chunked.events)}`;
          // The one allowed difference: invalid UTF-8 is found when its slice (16 KiB) arrives, before
          // saxes parses that slice, so elements or another error earlier in the same slice may be
          // overtaken by it. Whatever came out is then a prefix of what the other chunking gave.
          const utf8 = (o: Outcome): boolean => o.terminal === "unsupported-encoding";
          // Text between stanzas is judged (bad-format) at the next tag or slice end, so saxes may
          // first find something not-well-formed later in the same text: both name broken XML.
          const kind = (t: string | undefined): string | undefined =>
            t === "bad-format" ? "not-well-formed" : t;
          if (
            kind(chunked.terminal) === kind(whole.terminal) &&
            chunked.elements.length === whole.elements.length
          ) {
            assert.deepEqual(chunked.elements, whole.elements, context);
            return;
          }
          const [early, late] = utf8(whole) ? [whole, chunked] : [chunked, whole];
          assert.ok(utf8(early), `different verdicts without a UTF-8 look-ahead: ${context}`);
          assert.deepEqual(late.elements.slice(0, early.elements.length), early.elements, context);
        },
      ),
      params(10_000),
    );
  });

  it("survives random bytes, before and after a stream header", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.uint8Array({ maxLength: 600 }),
        chunking,
        fc.constantFrom(Infinity, 128, 4096),
        (withHeader, noise, sizes, limit) => {
          const bytes = Buffer.concat([Buffer.from(withHeader ? S2S_STREAM_HEADER : ""), noise]);
          assertSane(feed(split(bytes, sizes), limit), show(bytes));
        },
      ),
      params(20_000),
    );
  });

  describe("attack families", () => {
    /** A valid stream with `payload` placed before item `at` (or inside it, after its first tag). */
    const families = {
      // RFC 6120 §11.1: no DTD, no comments, no processing instructions.
      dtd: {
        payloads: [
          `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>`,
          `<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`,
          `<!DOCTYPE x SYSTEM "http://127.0.0.1:1/evil.dtd">`,
          `<!ENTITY a 'b'>`,
          `<!-- comment -->`,
          `<?php echo 1; ?>`,
        ],
        conditions: ["restricted-xml"],
      },
      // An entity nobody defined (the bomb without its DTD) and references to forbidden characters.
      references: {
        payloads: ["&lol9;", "&xxe;", "&#0;", "&#x1;", "&#xD800;", "&#xFFFF;", "&#x110000;", "&;"],
        conditions: ["not-well-formed", "bad-format"],
      },
      // NUL and other characters XML 1.0 forbids, raw.
      controls: {
        payloads: ["\u0000", "\u0001", "\u0008", "\u000B", "\u001F", "\uFFFE", "\uFFFF"],
        conditions: ["not-well-formed", "bad-format"],
      },
    } as const;

    for (const [family, { payloads, conditions }] of Object.entries(families)) {
      it(`ends the stream with one ${conditions.join("/")} error on ${family}, anywhere, however chunked`, () => {
        fc.assert(
          fc.property(
            streamHeader,
            fc.array(element, { minLength: 1, maxLength: 4 }),
            fc.nat(),
            fc.boolean(),
            fc.constantFrom(...payloads),
            chunking,
            (header, items, at, inside, payload, sizes) => {
              const index = at % items.length;
              const xml = items.map((t) => t.xml);
              const target = xml[index] ?? "";
              const cut = target.indexOf(">") + 1;
              xml[index] = inside ? target.slice(0, cut) + payload + target.slice(cut) : payload + target;
              const bytes = Buffer.from(header + xml.join(""));
              const out = feed(split(bytes, sizes), Infinity);
              assertSane(out, show(bytes));
              assert.ok(
                (conditions as readonly string[]).includes(out.terminal ?? "none"),
                `${out.terminal ?? "no error"} (${out.errorText ?? ""}) for ${show(bytes)}`,
              );
              // A self-closed target is complete before the payload that follows it.
              const delivered = inside && cut === target.length ? index + 1 : index;
              assert.ok(out.elements.length <= delivered, "nothing from the hostile stanza on is delivered");
            },
          ),
          params(4_000),
        );
      });
    }

    it("ends the stream on invalid UTF-8 anywhere, however it is split, and delivers nothing after it", () => {
      fc.assert(
        fc.property(
          fc.array(element, { minLength: 1, maxLength: 4 }),
          fc.nat(),
          fc.nat(),
          chunking,
          (items, at, which, sizes) => {
            const prefix = Buffer.from(S2S_STREAM_HEADER + items.map((t) => t.xml).join(""));
            const cut =
              Buffer.byteLength(S2S_STREAM_HEADER) +
              (at % (prefix.length - Buffer.byteLength(S2S_STREAM_HEADER)));
            const bad = INVALID_UTF8[which % INVALID_UTF8.length]!;
            const bytes = Buffer.concat([
              prefix.subarray(0, cut),
              bad,
              prefix.subarray(cut),
              Buffer.from("<x/>"),
            ]);
            const out = feed(split(bytes, sizes), Infinity);
            assertSane(out, show(bytes));
            assert.ok(out.terminal !== undefined && out.terminal !== "end", `no error for ${show(bytes)}`);
            if (!prefix.includes("\uFFFD")) {
              for (const xml of out.elements)
                assert.doesNotMatch(xml, /\uFFFD/, "no replacement character smuggled in");
            }
            const before = Buffer.from(S2S_STREAM_HEADER + items.map((t) => t.xml).join("")).subarray(0, cut);
            assert.ok(
              out.elements.length <= feed([before], Infinity).elements.length,
              "nothing after the bad byte",
            );
          },
        ),
        params(4_000),
      );
    });

    it("waits on a stream that never closes a tag: no element, no error, no end for it", () => {
      fc.assert(
        fc.property(
          fc.array(element, { minLength: 1, maxLength: 4 }),
          fc.nat(),
          chunking,
          (items, at, sizes) => {
            const complete = items
              .slice(0, -1)
              .map((t) => t.xml)
              .join("");
            const last = items[items.length - 1]!.xml;
            // Cut the last stanza anywhere after its first '<' (it stays unfinished).
            const open = last.slice(0, 1 + (at % (last.length - 1)));
            const bytes = Buffer.from(S2S_STREAM_HEADER + complete + open);
            const out = feed(split(bytes, sizes), Infinity);
            assertSane(out, show(bytes));
            if (out.terminal !== undefined) {
              // Only a cut that leaves broken XML behind (e.g. "<a &") may fail; never an end.
              assert.notEqual(out.terminal, "end", show(bytes));
            }
            assert.equal(out.elements.length, items.length - 1, show(bytes));
          },
        ),
        params(4_000),
      );
    });

    it("refuses a stanza made of fragments that break parsers, without delivering it", () => {
      fc.assert(
        fc.property(
          fc.array(fc.nat(), { minLength: 1, maxLength: 12 }),
          chunking,
          fc.constantFrom(Infinity, 300, 4096),
          (picks, sizes, limit) => {
            const body = Buffer.concat(picks.map((p) => HOSTILE_FRAGMENTS[p % HOSTILE_FRAGMENTS.length]!));
            const bytes = Buffer.concat([
              Buffer.from(S2S_STREAM_HEADER + "<message>"),
              body,
              Buffer.from("</message>"),
            ]);
            assertSane(feed(split(bytes, sizes), limit), show(bytes));
          },
        ),
        params(6_000),
      );
    });
  });

  it("ran at least 100,000 generated inputs", () => {
    assert.ok(total >= 100_000 * Math.min(1, SCALE), `only ${total} runs`);
  });
});

describe("stream parser: cost of hostile shapes", () => {
  const time = (input: Buffer, limit: number): { ms: number; out: Outcome } => {
    const started = performance.now();
    const out = feed(split(input, [65_536]), limit);
    return { ms: performance.now() - started, out };
  };

  it("refuses 10,000 and 20,000 levels of nesting at once, past the depth limit (policy-violation)", () => {
    for (const depth of [10_000, 20_000]) {
      const input = Buffer.from(S2S_STREAM_HEADER + "<a>".repeat(depth) + "</a>".repeat(depth));
      const { ms, out } = time(input, Infinity);
      assert.equal(out.terminal, "policy-violation", `${depth} levels`);
      assert.deepEqual(out.elements, []);
      // saxes' namespace lookup walks the open elements: stopping at 1,000 keeps it far from quadratic.
      assert.ok(ms < 250, `${depth} levels took ${ms.toFixed(0)} ms; the event loop is blocked meanwhile`);
    }
  });

  it("refuses a 10 MB attribute value under max_stanza_size 65536 at once, whatever the chunking", () => {
    const input = Buffer.from(S2S_STREAM_HEADER + `<message a='${"x".repeat(10_000_000)}'/>`);
    for (const sizes of [[10_100_000], [65_536], [1_000_003]]) {
      const started = performance.now();
      const out = feed(split(input, sizes), 65_536);
      const ms = performance.now() - started;
      assert.equal(out.terminal, "policy-violation");
      assert.ok(ms < 200, `took ${ms.toFixed(0)} ms`);
    }
  });

  it("handles 100,000 attributes and 100,000 namespace declarations in one element in bounded time", () => {
    let attrs = "";
    let decls = "";
    for (let i = 0; i < 100_000; i++) {
      attrs += ` a${i}='1'`;
      decls += ` xmlns:p${i}='urn:${i}'`;
    }
    for (const input of [`<message${attrs}/>`, `<message${decls}><p7:x p9:y='1'/></message>`]) {
      const { ms, out } = time(Buffer.from(S2S_STREAM_HEADER + input), Infinity);
      assert.deepEqual(out.violations, []);
      assert.equal(out.elements.length, 1);
      assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
      const limited = time(Buffer.from(S2S_STREAM_HEADER + input), 65_536);
      assert.equal(limited.out.terminal, "policy-violation");
      assert.ok(limited.ms < 200, `refusing took ${limited.ms.toFixed(0)} ms`);
    }
  });

  it("refuses 100,000 duplicate attributes quickly (not-well-formed)", () => {
    const input = Buffer.from(S2S_STREAM_HEADER + `<message${" a='1'".repeat(100_000)}/>`);
    const { ms, out } = time(input, Infinity);
    assert.equal(out.terminal, "not-well-formed");
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  });
});
