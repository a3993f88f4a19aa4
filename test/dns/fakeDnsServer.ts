/**
 * A tiny authoritative-only DNS server over UDP on 127.0.0.1 for tests: it answers A, AAAA and SRV
 * questions from a table, so that Node's real `dns.promises.Resolver` (c-ares) is exercised end to
 * end. Names missing from the table get NXDOMAIN; a name present without the asked type gets an
 * empty NOERROR answer (NODATA). It can also stay silent (timeouts) or answer SERVFAIL.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";

export type FakeRecord =
  | { type: "A"; address: string }
  | { type: "AAAA"; address: string }
  | { type: "SRV"; priority: number; weight: number; port: number; target: string };

export interface FakeDnsOptions {
  /** Records by owner name (case-insensitive, no trailing dot). */
  records?: Record<string, FakeRecord[]>;
  /** Names answered with SERVFAIL. */
  servfail?: string[];
  /** Never answer anything (for timeouts). */
  silent?: boolean;
  /**
   * Names that take this many milliseconds to resolve, as in a recursive resolver on a cache miss:
   * the first question starts the recursion, and every question about the name is answered once it
   * is done (at once, after that).
   */
  recursionMs?: Record<string, number>;
}

export interface FakeDnsServer {
  /** "127.0.0.1:PORT", as `outgoing.dns.servers` takes it. */
  readonly address: string;
  /** Every question received, as "TYPE name", in arrival order. */
  readonly queries: string[];
  close(): Promise<void>;
}

const TYPE_CODES = { A: 1, AAAA: 28, SRV: 33 } as const;
const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE_CODES).map(([n, c]) => [c, n]));
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

export async function startFakeDns(options: FakeDnsOptions = {}): Promise<FakeDnsServer> {
  const table = new Map<string, FakeRecord[]>();
  for (const [name, recs] of Object.entries(options.records ?? {})) table.set(name.toLowerCase(), recs);
  const servfail = new Set((options.servfail ?? []).map((n) => n.toLowerCase()));
  const queries: string[] = [];
  const resolvedAt = new Map<string, number>();
  let closed = false;
  const socket = createSocket("udp4");

  socket.on("message", (msg: Buffer, peer: RemoteInfo) => {
    const q = parseQuery(msg);
    if (q === undefined) return;
    queries.push(`${TYPE_NAMES.get(q.qtype) ?? String(q.qtype)} ${q.name}`);
    if (options.silent === true) return;
    const key = q.name.toLowerCase();
    let rcode = 0;
    let answers: Buffer[] = [];
    if (servfail.has(key)) rcode = RCODE_SERVFAIL;
    else if (!table.has(key)) rcode = RCODE_NXDOMAIN;
    else
      answers = (table.get(key) ?? [])
        .filter((r) => TYPE_CODES[r.type] === q.qtype)
        .map((r) => encodeAnswer(r));
    const response = encodeResponse(msg, q.questionEnd, rcode, answers);
    const send = () => {
      if (!closed) socket.send(response, peer.port, peer.address);
    };
    const recursion = options.recursionMs?.[key];
    if (recursion === undefined) {
      send();
      return;
    }
    const ready = resolvedAt.get(key) ?? performance.now() + recursion;
    resolvedAt.set(key, ready);
    setTimeout(send, Math.max(0, ready - performance.now()));
  });

  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      socket.off("error", reject);
      resolve();
    });
  });
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    close: () => {
      closed = true;
      return closeSocket(socket);
    },
  };
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.close(() => {
      resolve();
    });
  });
}

interface Query {
  name: string;
  qtype: number;
  /** Offset just past the (first) question, to copy it into the response. */
  questionEnd: number;
}

function parseQuery(msg: Buffer): Query | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const len = msg[offset];
    if (len === undefined || len > 63) return undefined; // queries are never compressed
    offset += 1;
    if (len === 0) break;
    labels.push(msg.toString("latin1", offset, offset + len));
    offset += len;
  }
  if (offset + 4 > msg.length) return undefined;
  return { name: labels.join("."), qtype: msg.readUInt16BE(offset), questionEnd: offset + 4 };
}

function encodeResponse(query: Buffer, questionEnd: number, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  const rd = (query.readUInt16BE(2) >> 8) & 0x01;
  // QR=1, AA=1, RD copied, RA=1.
  header.writeUInt16BE(0x8400 | (rd << 8) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
}

function encodeAnswer(record: FakeRecord): Buffer {
  let rdata: Buffer;
  switch (record.type) {
    case "A":
      if (!isIPv4(record.address)) throw new Error(`not IPv4: ${record.address}`);
      rdata = Buffer.from(record.address.split(".").map(Number));
      break;
    case "AAAA":
      rdata = encodeIPv6(record.address);
      break;
    case "SRV": {
      const fixed = Buffer.alloc(6);
      fixed.writeUInt16BE(record.priority, 0);
      fixed.writeUInt16BE(record.weight, 2);
      fixed.writeUInt16BE(record.port, 4);
      rdata = Buffer.concat([fixed, encodeName(record.target)]);
      break;
    }
  }
  const rr = Buffer.alloc(12);
  rr.writeUInt16BE(0xc00c, 0); // owner name: pointer to the question's name (keeps its case)
  rr.writeUInt16BE(TYPE_CODES[record.type], 2);
  rr.writeUInt16BE(1, 4); // class IN
  rr.writeUInt32BE(0, 6); // TTL 0: nothing should be cached between tests
  rr.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([rr, rdata]);
}

function encodeName(name: string): Buffer {
  const labels = name === "." || name === "" ? [] : name.replace(/\.$/, "").split(".");
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "latin1")])),
    Buffer.from([0]),
  ]);
}

function encodeIPv6(address: string): Buffer {
  if (!isIPv6(address) || address.includes(".")) throw new Error(`not a plain IPv6 address: ${address}`);
  const [head = "", tail] = address.split("::");
  const words = (s: string): number[] => (s === "" ? [] : s.split(":").map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}
