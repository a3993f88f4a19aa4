import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { domainToASCII } from "node:url";

import { Jid, JidError, type JidPart, domainOf } from "../../src/xmpp/jid.js";

const l1023 = "a".repeat(1023);
const l1024 = "a".repeat(1024);
// "€" is 3 bytes in UTF-8: 341 of them make 1023 bytes.
const euro1023 = "€".repeat(341);
const euro1024 = `${"€".repeat(341)}a`;
const label63 = "b".repeat(63);
// 16 labels of 63 octets and 15 dots: exactly 1023 bytes.
const domain1023 = Array.from({ length: 16 }, () => label63).join(".");
// 15 labels of 63 octets, one of 62, one of 1, and 16 dots: 1024 bytes.
const domain1024 = [...Array.from({ length: 15 }, () => label63), "b".repeat(62), "c"].join(".");

/** [input, local, domain, resource] */
const valid: [string, string, string, string][] = [
  ["example.com", "", "example.com", ""],
  ["user@example.com", "user", "example.com", ""],
  ["user@example.com/res", "user", "example.com", "res"],
  ["example.com/res", "", "example.com", "res"],
  ["localhost", "", "localhost", ""],
  // The resource is everything after the first "/", "@" and "/" included.
  ["a@b/c/d@e", "a", "b", "c/d@e"],
  ["b/c@d", "", "b", "c@d"],
  ["a@b/ spaced out ", "a", "b", " spaced out "],
  // Case: domain and localpart fold, resourcepart does not.
  ["User@EXAMPLE.Com/Res", "user", "example.com", "Res"],
  ["ÉLODIE@example.com", "élodie", "example.com", ""],
  // IDNA to ASCII.
  ["Bücher.example", "", "xn--bcher-kva.example", ""],
  ["a@BÜCHER.example", "a", "xn--bcher-kva.example", ""],
  ["xn--bcher-kva.example", "", "xn--bcher-kva.example", ""],
  ["ＡＢＣ.com", "", "abc.com", ""],
  // NFC: decomposed input is composed.
  ["cafe\u0301@example.com/cafe\u0301", "caf\u00e9", "example.com", "caf\u00e9"],
  // Width mapping in the localpart only.
  ["ｕｓｅｒ@example.com/ｒ", "user", "example.com", "ｒ"],
  // OpaqueString maps non-ASCII spaces to U+0020.
  ["a@b/x\u00a0y", "a", "b", "x y"],
  // A trailing dot is stripped once.
  ["example.com.", "", "example.com", ""],
  ["a@example.com./r", "a", "example.com", "r"],
  // IP literals.
  ["a@192.0.2.1/r", "a", "192.0.2.1", "r"],
  ["[::1]", "", "[::1]", ""],
  ["a@[2001:DB8::1]/r", "a", "[2001:db8::1]", "r"],
  ["[0:0:0:0:0:0:0:1]", "", "[::1]", ""],
  // Underscores and digits in labels.
  ["my_host.example", "", "my_host.example", ""],
  ["1a.example", "", "1a.example", ""],
  // Length limits: exactly 1023 bytes is fine, in ASCII and multibyte.
  [`${l1023}@example.com/${l1023}`, l1023, "example.com", l1023],
  [`${euro1023}@example.com/${euro1023}`, euro1023, "example.com", euro1023],
  [domain1023, "", domain1023, ""],
  [`${label63}.example`, "", `${label63}.example`, ""],
  // Allowed punctuation in the localpart.
  ["a.b-c_d+e!f#g$h%i*j=k?l^m{n}o|p~q@example.com", "a.b-c_d+e!f#g$h%i*j=k?l^m{n}o|p~q", "example.com", ""],
  ["a@b/\u200dok", "a", "b", "\u200dok"],
];

describe("Jid.parse: valid JIDs", () => {
  for (const [input, local, domain, resource] of valid) {
    it(JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input), () => {
      const jid = Jid.parse(input);
      assert.equal(jid.local, local);
      assert.equal(jid.domain, domain);
      assert.equal(jid.resource, resource);
      // Round trip: toString parses back to an equal JID with the same text.
      const again = Jid.parse(jid.toString());
      assert.ok(again.equals(jid));
      assert.equal(again.toString(), jid.toString());
      assert.equal(domainOf(input), domain);
      assert.ok(Jid.tryParse(input)?.equals(jid));
    });
  }
});

/** [input, part at fault, fragment of the message] */
const invalid: [string, JidPart, string][] = [
  ["", "domainpart", "empty"],
  ["@example.com", "localpart", "empty"],
  ["a@", "domainpart", "empty"],
  ["a@/r", "domainpart", "empty"],
  ["example.com/", "resourcepart", "empty"],
  ["a@example.com/", "resourcepart", "empty"],
  ["/r", "domainpart", "empty"],
  [".", "domainpart", "empty"],
  ["a@.", "domainpart", "empty"],
  // Forbidden localpart characters (RFC 7622 §3.3.1), whitespace and controls.
  ['a"b@example.com', "localpart", '"\\""'],
  ["a&b@example.com", "localpart", '"&"'],
  ["a'b@example.com", "localpart", `"'"`],
  ["a:b@example.com", "localpart", '":"'],
  ["a<b@example.com", "localpart", '"<"'],
  ["a>b@example.com", "localpart", '">"'],
  ["a＠b@example.com", "localpart", '"@"'],
  ["a／b@example.com", "localpart", '"/"'],
  ["a b@example.com", "localpart", "U+0020"],
  ["a\tb@example.com", "localpart", "U+0009"],
  ["a\u00a0b@example.com", "localpart", "U+00A0"],
  ["a\u3000b@example.com", "localpart", "U+3000"],
  ["a\u0000b@example.com", "localpart", "U+0000"],
  ["a\u007fb@example.com", "localpart", "U+007F"],
  ["a\u200bb@example.com", "localpart", "U+200B"],
  ["a\ue000b@example.com", "localpart", "U+E000"],
  ["a\ud800b@example.com", "localpart", "U+D800"],
  // Resourcepart controls.
  ["a@example.com/x\ny", "resourcepart", "U+000A"],
  ["a@example.com/x\u0000", "resourcepart", "U+0000"],
  ["a@example.com/x\u0085", "resourcepart", "U+0085"],
  ["a@example.com/\udc00", "resourcepart", "U+DC00"],
  // Lengths: 1024 bytes is one too many, in ASCII and multibyte.
  [`${l1024}@example.com`, "localpart", "1024 bytes"],
  [`${euro1024}@example.com`, "localpart", "1024 bytes"],
  [`a@example.com/${l1024}`, "resourcepart", "1024 bytes"],
  [`a@example.com/${euro1024}`, "resourcepart", "1024 bytes"],
  [`${"é".repeat(600)}@example.com`, "localpart", "1200 bytes"],
  [domain1024, "domainpart", "1024 bytes"],
  [`a@${"x".repeat(100_000)}`, "domainpart", "longer than 1023"],
  // Bad domains.
  ["a..b", "domainpart", "empty label"],
  [".example.com", "domainpart", "empty label"],
  ["example.com..", "domainpart", "empty label"],
  [`${"b".repeat(64)}.example`, "domainpart", "longer than 63"],
  ["a b.example", "domainpart", "not a valid domain"],
  ["a%b.example", "domainpart", "not a valid domain"],
  ["xn--zz.example", "domainpart", "not a valid domain"],
  ["a*b.example", "domainpart", "letters, digits"],
  ["a&b", "domainpart", "letters, digits"],
  ["foo.123", "domainpart", "not a valid domain"],
  ["1.2.3", "domainpart", "dotted-quad"],
  ["0x7f.1", "domainpart", "dotted-quad"],
  ["256.1.1.1", "domainpart", "not a valid domain"],
  ["[::1", "domainpart", "not a valid domain"],
  ["[example.com]", "domainpart", "IPv6"],
  ["[fe80::1%eth0]", "domainpart", "IPv6"],
  ["[1.2.3.4]", "domainpart", "IPv6"],
];

describe("Jid.parse: invalid JIDs", () => {
  for (const [input, part, fragment] of invalid) {
    it(`${JSON.stringify(input.length > 40 ? `${input.slice(0, 37)}...` : input)} (${part})`, () => {
      assert.throws(
        () => Jid.parse(input),
        (err: unknown) => {
          assert.ok(err instanceof JidError);
          assert.equal(err.part, part);
          assert.equal(err.input, input);
          assert.ok(err.message.includes(part), err.message);
          assert.ok(err.message.includes(fragment), `${err.message} lacks ${fragment}`);
          assert.ok(err.message.length < 250, "the message quotes the input in short");
          return true;
        },
      );
      assert.equal(Jid.tryParse(input), undefined);
      assert.equal(domainOf(input), undefined);
    });
  }
});

describe("Jid equality and bare()", () => {
  const equal: [string, string][] = [
    ["User@Example.COM/r", "user@example.com/r"],
    ["cafe\u0301@example.com", "café@example.com"],
    ["a@b/e\u0301", "a@b/é"],
    ["Bücher.example", "xn--bcher-kva.example"],
    ["example.com.", "example.com"],
    ["[::0:1]", "[::1]"],
  ];
  for (const [a, b] of equal) {
    it(`${JSON.stringify(a)} equals ${JSON.stringify(b)}`, () => {
      assert.ok(Jid.parse(a).equals(Jid.parse(b)));
      assert.equal(Jid.parse(a).toString(), Jid.parse(b).toString());
    });
  }
  const different: [string, string][] = [
    ["a@b/R", "a@b/r"],
    ["a@b", "a@b/r"],
    ["a@b", "b"],
    ["a@b", "a@c"],
    ["b/a", "a@b"],
  ];
  for (const [a, b] of different) {
    it(`${JSON.stringify(a)} differs from ${JSON.stringify(b)}`, () => {
      assert.equal(Jid.parse(a).equals(Jid.parse(b)), false);
    });
  }

  it("bare() drops the resource only", () => {
    const full = Jid.parse("a@b/r");
    const bare = full.bare();
    assert.equal(bare.toString(), "a@b");
    assert.equal(bare.local, "a");
    assert.equal(bare.resource, "");
    assert.ok(bare.equals(Jid.parse("a@b")));
    assert.equal(bare.bare(), bare);
  });

  it("is immutable", () => {
    const jid = Jid.parse("a@b/r");
    assert.throws(() => {
      (jid as unknown as { local: string }).local = "x";
    }, TypeError);
  });
});

describe("toString is idempotent on tricky input", () => {
  const tricky = [
    "İstanbul@example.com",
    "ΣΑΣ@example.com",
    "Straße@example.com",
    "ǅ@example.com/ǅ",
    "ᾇ@x/ᾇ",
  ];
  for (const input of tricky) {
    it(JSON.stringify(input), () => {
      const once = Jid.parse(input).toString();
      assert.equal(Jid.parse(once).toString(), once);
    });
  }
});

describe("domainOf", () => {
  it("agrees with Jid.parse, whose domains domainToASCII leaves unchanged, on random strings", () => {
    const pieces = [
      "a",
      "Z",
      "0",
      "1",
      "-",
      "_",
      ".",
      ".",
      "@",
      "/",
      " ",
      "é",
      "e\u0301",
      "Ü",
      ":",
      "[",
      "]",
    ];
    pieces.push("xn--", "xn--bcher-kva", "::1", "0x", "\t", "'");
    let seed = 7;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      let text = "";
      const length = 1 + random(12);
      for (let j = 0; j < length; j++) text += pieces[random(pieces.length)] ?? "";
      const jid = Jid.tryParse(text);
      assert.equal(domainOf(text), jid?.domain, JSON.stringify(text));
      if (jid === undefined) continue;
      valid++;
      assert.equal(domainToASCII(jid.domain), jid.domain, JSON.stringify(text));
      assert.ok(Jid.parse(jid.toString()).equals(jid), JSON.stringify(text));
    }
    assert.ok(valid > 1000, `only ${valid} valid JIDs generated`);
  });

  const cases: [string, string | undefined][] = [
    ["user@example.com/res", "example.com"],
    ["example.com", "example.com"],
    ["USER@example.com", "example.com"],
    ["user@EXAMPLE.com", "example.com"],
    ["user@example.com.", "example.com"],
    ["user@xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["user@1.2.3.4/r", "1.2.3.4"],
    ["user@[::1]", "[::1]"],
    ["a:b@example.com", undefined],
    ["@example.com", undefined],
    ["example.com/", undefined],
    ["a@example.com/x\u0001", undefined],
  ];
  for (const [input, domain] of cases) {
    it(`${JSON.stringify(input)} → ${String(domain)}`, () => {
      assert.equal(domainOf(input), domain);
    });
  }
});
