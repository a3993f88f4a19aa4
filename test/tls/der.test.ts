/**
 * The DER walker behind certificate identities: unit cases on hand-built structures, and fuzzing
 * with truncated, mutated and random input (nothing may throw; garbage yields no names).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { RunDir } from "../helpers/peers/runDir.js";
import { TestPki, srvIdSan, xmppAddrSan } from "../helpers/testPki.js";
import { readTlv } from "../../src/tls/der.js";
import { oidToString, readCertificateFields } from "../../src/tls/certFields.js";
import { identitiesFromDer } from "../../src/tls/identity.js";

// --- a tiny DER encoder for hand-built certificates -------------------------------------------------

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Uint8Array.of(tag, ...length), body]);
}
const seq = (...parts: Uint8Array[]): Uint8Array => tlv(0x30, ...parts);
const oid = (hex: string): Uint8Array => tlv(0x06, Buffer.from(hex, "hex"));
const str = (tag: number, text: string): Uint8Array => tlv(tag, Buffer.from(text, "utf8"));
const bytes = (tag: number, ...content: number[]): Uint8Array => tlv(tag, Uint8Array.from(content));

const OIDS = {
  cn: "550403",
  san: "551d11",
  eku: "551d25",
  xmppAddr: "2b06010505070805",
  dnsSrv: "2b06010505070807",
  ecdsaSha256: "2a8648ce3d040302",
};
const UTF8 = 0x0c;
const IA5 = 0x16;
const UTC = 0x17;
const GENERALIZED = 0x18;

const dnsName = (name: string): Uint8Array => str(0x82, name);
const otherName = (typeId: string, value: Uint8Array): Uint8Array => tlv(0xa0, oid(typeId), tlv(0xa0, value));
const extension = (id: string, value: Uint8Array, critical = false): Uint8Array =>
  seq(oid(id), ...(critical ? [bytes(0x01, 0xff)] : []), tlv(0x04, value));
const san = (...names: Uint8Array[]): Uint8Array => extension(OIDS.san, seq(...names));

interface Synthetic {
  cns?: string[];
  extensions?: Uint8Array[];
  notBefore?: Uint8Array;
  notAfter?: Uint8Array;
}

/** A certificate-shaped structure (RFC 5280 §4.1); its signature is not a real one. */
function synthetic(options: Synthetic = {}): Uint8Array {
  const name = (cns: string[]): Uint8Array =>
    seq(...cns.map((cn) => tlv(0x31, seq(oid(OIDS.cn), str(UTF8, cn)))));
  const tbs = seq(
    tlv(0xa0, bytes(0x02, 2)),
    bytes(0x02, 1),
    seq(oid(OIDS.ecdsaSha256)),
    name(["Issuer"]),
    seq(options.notBefore ?? str(UTC, "250101000000Z"), options.notAfter ?? str(UTC, "260101000000Z")),
    name(options.cns ?? ["cn.example"]),
    seq(seq(oid("2a8648ce3d0201")), bytes(0x03, 0, 4)),
    ...(options.extensions === undefined ? [] : [tlv(0xa3, seq(...options.extensions))]),
  );
  return seq(tbs, seq(oid(OIDS.ecdsaSha256)), bytes(0x03, 0));
}

const NONE = { dns: [], xmppAddr: [], srv: [] };

describe("readTlv", () => {
  const buf = (...b: number[]): Uint8Array => Uint8Array.from(b);

  it("reads short and long lengths", () => {
    assert.deepEqual(readTlv(buf(0x04, 0x02, 1, 2), 0, 4), { tag: 0x04, contentStart: 2, end: 4 });
    const long = Buffer.concat([buf(0x04, 0x81, 0x80), new Uint8Array(0x80)]);
    assert.deepEqual(readTlv(long, 0, long.length), { tag: 0x04, contentStart: 3, end: 0x83 });
    const longer = Buffer.concat([buf(0x04, 0x82, 0x01, 0x00), new Uint8Array(0x100)]);
    assert.equal(readTlv(longer, 0, longer.length)?.end, 0x104);
  });

  it("refuses what overruns its limit or is not DER", () => {
    assert.equal(readTlv(buf(0x04, 0x03, 1, 2), 0, 4), undefined); // content past the end
    assert.equal(readTlv(buf(0x04, 0x02, 1, 2), 0, 3), undefined); // past the parent's limit
    assert.equal(readTlv(buf(0x30, 0x80, 0, 0), 0, 4), undefined); // indefinite length
    assert.equal(readTlv(buf(0x04, 0x85, 0, 0, 0, 0, 1, 0), 0, 8), undefined); // 5 length octets
    assert.equal(readTlv(buf(0x04, 0x84, 0xff, 0xff, 0xff, 0xff), 0, 6), undefined);
    assert.equal(readTlv(buf(0x04, 0x82, 0x01), 0, 3), undefined); // truncated length
    assert.equal(readTlv(buf(0x1f, 0x01, 0x00), 0, 3), undefined); // high tag number
    assert.equal(readTlv(buf(0x04), 0, 1), undefined);
    assert.equal(readTlv(buf(0x04, 0x00), 2, 2), undefined);
    assert.equal(readTlv(buf(0x04, 0x00), -1, 2), undefined);
  });
});

describe("oidToString", () => {
  it("decodes arcs", () => {
    assert.equal(oidToString(Buffer.from("2a864886f70d010101", "hex")), "1.2.840.113549.1.1.1");
    assert.equal(oidToString(Buffer.from("551d11", "hex")), "2.5.29.17");
    assert.equal(oidToString(Buffer.from(OIDS.xmppAddr, "hex")), "1.3.6.1.5.5.7.8.5");
    assert.equal(oidToString(Buffer.from("8837", "hex")), "2.999");
  });

  it("refuses malformed encodings", () => {
    assert.equal(oidToString(new Uint8Array(0)), undefined);
    assert.equal(oidToString(Buffer.from("2a86", "hex")), undefined); // ends inside an arc
    assert.equal(oidToString(Buffer.from("2a8001", "hex")), undefined); // non-minimal
    assert.equal(oidToString(Buffer.from("2affffffffffffffff7f", "hex")), undefined); // too large
  });
});

describe("readCertificateFields on hand-built certificates", () => {
  it("reads names of every kind, ignoring wrongly typed values", () => {
    const der = synthetic({
      extensions: [
        san(
          dnsName("a.example"),
          otherName(OIDS.xmppAddr, str(UTF8, "bücher.example")),
          otherName(OIDS.dnsSrv, str(IA5, "_xmpp-server.s.example")),
          otherName(OIDS.xmppAddr, str(IA5, "ia5.example")), // XmppAddr must be UTF8String
          otherName(OIDS.dnsSrv, str(UTF8, "_xmpp-server.utf8.example")), // SRVName must be IA5String
          tlv(0xa0, oid(OIDS.xmppAddr), tlv(0xa0, str(UTF8, "x.example")), bytes(0x05)), // extra element
          tlv(0xa0, oid(OIDS.xmppAddr), tlv(0xa1, str(UTF8, "y.example"))), // wrong explicit tag
          str(0x82, "büc.example"), // dNSName must be ASCII
          str(0x82, ""),
          str(0x81, "admin@a.example"), // rfc822Name: not an identity here
        ),
      ],
    });
    assert.deepEqual(identitiesFromDer(der), {
      dns: ["a.example"],
      xmppAddr: ["bücher.example"],
      srv: ["_xmpp-server.s.example"],
    });
  });

  it("reads a critical subjectAltName", () => {
    const der = synthetic({ extensions: [extension(OIDS.san, seq(dnsName("a.example")), true)] });
    assert.deepEqual(identitiesFromDer(der), { ...NONE, dns: ["a.example"] });
  });

  it("gives no names and no CN for a duplicated or malformed subjectAltName", () => {
    const twice = synthetic({ extensions: [san(dnsName("a.example")), san(dnsName("b.example"))] });
    assert.deepEqual(identitiesFromDer(twice), NONE);
    const garbage = synthetic({ extensions: [extension(OIDS.san, Uint8Array.of(0x30, 0x05, 0x82))] });
    assert.deepEqual(identitiesFromDer(garbage), NONE);
    const notSequence = synthetic({ extensions: [extension(OIDS.san, dnsName("a.example"))] });
    assert.deepEqual(identitiesFromDer(notSequence), NONE);
    const trailing = synthetic({
      extensions: [extension(OIDS.san, Buffer.concat([seq(dnsName("a.example")), bytes(0x05)]))],
    });
    assert.deepEqual(identitiesFromDer(trailing), NONE);
  });

  it("counts unreadable extensions as a malformed subjectAltName and EKU", () => {
    for (const extensions of [
      [bytes(0x05)], // not a SEQUENCE
      [seq(oid(OIDS.eku), bytes(0x02, 1), tlv(0x04, seq()))], // criticality not a BOOLEAN
      [seq(oid(OIDS.eku))], // no value
      [seq(bytes(0x05), tlv(0x04, seq()))], // no OID
    ]) {
      const der = synthetic({ extensions });
      assert.deepEqual(identitiesFromDer(der), NONE);
      assert.deepEqual(readCertificateFields(der)?.extendedKeyUsage, []);
    }
  });

  it("takes the last CN when there is no subjectAltName", () => {
    assert.deepEqual(identitiesFromDer(synthetic({ cns: ["first.example", "last.example"] })), {
      ...NONE,
      cn: "last.example",
    });
    assert.deepEqual(identitiesFromDer(synthetic({ cns: [], extensions: [] })), NONE);
  });

  it("reads UTCTime (1950–2049) and GeneralizedTime", () => {
    const at = (nb: Uint8Array, na: Uint8Array) =>
      readCertificateFields(synthetic({ notBefore: nb, notAfter: na }));
    const iso = (fields: ReturnType<typeof at>) => [
      fields?.notBefore?.toISOString(),
      fields?.notAfter?.toISOString(),
    ];
    assert.deepEqual(iso(at(str(UTC, "500101000000Z"), str(UTC, "491231235959Z"))), [
      "1950-01-01T00:00:00.000Z",
      "2049-12-31T23:59:59.000Z",
    ]);
    assert.deepEqual(iso(at(str(GENERALIZED, "20500102030405Z"), str(GENERALIZED, "99991231235959Z"))), [
      "2050-01-02T03:04:05.000Z",
      "9999-12-31T23:59:59.000Z",
    ]);
    // UTCTime without seconds; GeneralizedTime with a two-digit year.
    assert.deepEqual(iso(at(str(UTC, "2501010000Z"), str(GENERALIZED, "250101000000Z"))), [
      undefined,
      undefined,
    ]);
  });

  it("reads the extended key usage", () => {
    const eku = (value: Uint8Array) =>
      readCertificateFields(synthetic({ extensions: [extension(OIDS.eku, value)] }))?.extendedKeyUsage;
    assert.deepEqual(eku(seq(oid("2b06010505070301"), oid("2b06010505070302"))), [
      "1.3.6.1.5.5.7.3.1",
      "1.3.6.1.5.5.7.3.2",
    ]);
    assert.deepEqual(eku(seq(bytes(0x05))), []);
    assert.deepEqual(eku(Uint8Array.of(0xff)), []);
    assert.equal(readCertificateFields(synthetic({ extensions: [] }))?.extendedKeyUsage, undefined);
  });
});

/** mulberry32: a small seeded PRNG, so a failing input can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Parses `der` both ways; fails the test with the input if anything throws. */
function parseSafely(der: Uint8Array): ReturnType<typeof identitiesFromDer> {
  try {
    readCertificateFields(der);
    const ids = identitiesFromDer(der);
    for (const name of [...ids.dns, ...ids.xmppAddr, ...ids.srv]) assert.equal(typeof name, "string");
    return ids;
  } catch (err) {
    assert.fail(`threw ${String(err)} on ${Buffer.from(der).toString("hex")}`);
  }
}

describe("DER walker fuzzing", () => {
  let run: RunDir;
  const samples: Uint8Array[] = [];

  before(() => {
    run = RunDir.create("tls-der");
    const pki = new TestPki(run);
    const ca = pki.issue("ca", { ca: true });
    const leaf = pki.issue("leaf", {
      issuer: ca,
      eku: "serverAuth",
      san: ["DNS:a.example", xmppAddrSan("a.example"), srvIdSan("a.example"), "email:x@a.example"],
    });
    samples.push(new Uint8Array(leaf.x509.raw), new Uint8Array(ca.x509.raw));
    samples.push(
      synthetic({ extensions: [san(dnsName("a.example"), otherName(OIDS.xmppAddr, str(UTF8, "x")))] }),
    );
  });

  after(() => {
    run.remove();
  });

  it("the samples parse", () => {
    assert.deepEqual(identitiesFromDer(samples[0]!), {
      dns: ["a.example"],
      xmppAddr: ["a.example"],
      srv: ["_xmpp-server.a.example"],
    });
  });

  it("every truncation yields nothing", () => {
    for (const der of samples)
      for (let length = 0; length < der.length; length++) {
        const cut = der.subarray(0, length);
        assert.deepEqual(parseSafely(cut), NONE, `truncated to ${length}`);
        assert.equal(readCertificateFields(cut), undefined);
      }
  });

  it("random mutations never throw", () => {
    const random = prng(6125);
    for (let i = 0; i < 6000; i++) {
      const der = Uint8Array.from(samples[i % samples.length]!);
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * der.length);
        // Half the edits hit length-like values, where a walker is most likely to go wrong.
        der[at] = random() < 0.5 ? Math.floor(random() * 256) : [0x00, 0x7f, 0x80, 0x81, 0x84, 0xff][i % 6]!;
      }
      parseSafely(der);
    }
  });

  it("random bytes yield no names, with or without a plausible outer SEQUENCE", () => {
    const random = prng(7590);
    for (let i = 0; i < 3000; i++) {
      const junk = Uint8Array.from({ length: Math.floor(random() * 600) }, () => Math.floor(random() * 256));
      assert.deepEqual(parseSafely(junk), NONE);
      assert.deepEqual(parseSafely(seq(junk)), NONE);
      assert.deepEqual(parseSafely(seq(seq(junk))), NONE);
    }
  });

  it("bytes spliced into a real certificate never throw", () => {
    const random = prng(178);
    const base = samples[0]!;
    for (let i = 0; i < 2000; i++) {
      const at = Math.floor(random() * base.length);
      const insert = Uint8Array.from({ length: 1 + Math.floor(random() * 8) }, () =>
        Math.floor(random() * 256),
      );
      const drop = Math.floor(random() * 8);
      parseSafely(Buffer.concat([base.subarray(0, at), insert, base.subarray(at + drop)]));
    }
  });
});
