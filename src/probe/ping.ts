/**
 * POST /api/xmpp-s2s/ping (seed 002): what a federated server does before its first stanza. Connect
 * as for connect, authenticate as `fromDomain` (SASL EXTERNAL when our certificate for it is valid
 * and offered, else dialback with a XEP-0185 key from `[s2s] shared`, so the remote's db:verify to
 * this Ferry is answered "valid"), then an XEP-0199 ping. The reply comes back over the remote's
 * own connection to us (IqReplies), or on this stream.
 */
import { serialize } from "../xml/serialize.js";
import { establish, failureResponse, sessionFacts, type StreamProbeResponse } from "./connect.js";
import { ProbeFailure, since, type Timings } from "./failure.js";
import type { ProbeEnv } from "./probeEnv.js";
import type { StreamRequest } from "./validate.js";

export interface PingResponse extends StreamProbeResponse {
  /** How we authenticated: "sasl-external" or "dialback". */
  auth?: "sasl-external" | "dialback";
  /** SASL EXTERNAL was tried first and refused with this condition. */
  externalRefused?: string;
  /** The raw reply stanzas. */
  stanzas?: string[];
  /** The reply's type: "result", or "error" (the remote answered, without supporting ping). */
  reply?: string;
}

export async function probePing(request: StreamRequest, from: string, env: ProbeEnv): Promise<PingResponse> {
  const startedAt = performance.now();
  const timings: Timings = {};
  let facts: Partial<StreamProbeResponse> = {};
  try {
    const { session, attempts } = await establish(request, from, env, startedAt, timings);
    // The features and stream id worth reporting are the negotiated stream's, before SASL restarts it.
    facts = {
      ...sessionFacts(session, request.toDomain, env),
      ...(attempts.length === 0 ? {} : { attempts }),
    };
    try {
      const auth = await session.authenticate();
      const { rtt, reply } = await session.ping();
      const stanzas = [reply, ...session.stanzas.filter((s) => s !== reply)].map(serialize);
      return {
        success: true,
        host: request.host,
        port: request.port,
        ...facts,
        auth: auth.method === "external" ? "sasl-external" : "dialback",
        ...(auth.externalRefused === undefined ? {} : { externalRefused: auth.externalRefused }),
        stanzas,
        reply: reply.attrs.type ?? "",
        rtt,
        timings: { ...timings, total: since(startedAt) },
      };
    } finally {
      session.close();
    }
  } catch (err) {
    if (!(err instanceof ProbeFailure)) throw err;
    return { ...failureResponse(request, err, timings, env, startedAt), ...facts };
  }
}
