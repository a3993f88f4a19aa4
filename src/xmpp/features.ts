/** `<stream:features/>` as Ferry offers them (RFC 6120 §4.3.2), and reading a peer's. */
import { Element, el } from "../xml/element.js";
import { NS } from "./namespaces.js";

export type StartTlsOffer = "none" | "optional" | "required";

export interface ServerFeatureOffer {
  starttls: StartTlsOffer;
  /** XEP-0220 §2.4: dialback advertised with `<errors/>` (we understand dialback errors). */
  dialback: boolean;
  /** SASL mechanisms (EXTERNAL once a certificate is verified, XEP-0178). */
  saslMechanisms?: readonly string[];
  /** XEP-0198: acknowledgements may be enabled once the stream is authenticated. */
  streamManagement?: boolean;
}

export function serverFeatures(offer: ServerFeatureOffer): Element {
  const features = el("stream:features");
  if (offer.starttls !== "none") {
    features.append(
      el("starttls", { xmlns: NS.TLS }, ...(offer.starttls === "required" ? [el("required")] : [])),
    );
  }
  if (offer.saslMechanisms && offer.saslMechanisms.length > 0) {
    features.append(
      el("mechanisms", { xmlns: NS.SASL }, ...offer.saslMechanisms.map((m) => el("mechanism", {}, m))),
    );
  }
  if (offer.dialback) features.append(el("dialback", { xmlns: NS.DIALBACK_FEATURE }, el("errors")));
  if (offer.streamManagement === true) features.append(el("sm", { xmlns: NS.SM }, el("optional")));
  return features;
}

/** What a peer's features offer, for the outgoing side's `gotFeatures` decision. */
export interface PeerFeatures {
  starttls: StartTlsOffer;
  saslMechanisms: string[];
  dialback: boolean;
  dialbackErrors: boolean;
  /** XEP-0198 `urn:xmpp:sm:3` offered. */
  sm: boolean;
}

export function readFeatures(features: Element): PeerFeatures {
  const starttls = features.getChild("starttls", NS.TLS);
  const mechanisms = features.getChild("mechanisms", NS.SASL);
  const dialback = features.getChild("dialback", NS.DIALBACK_FEATURE);
  return {
    starttls: starttls === undefined ? "none" : starttls.getChild("required") ? "required" : "optional",
    saslMechanisms: mechanisms ? mechanisms.getChildren("mechanism").map((m) => m.text().trim()) : [],
    dialback: dialback !== undefined,
    dialbackErrors: dialback?.getChild("errors") !== undefined,
    sm: features.getChild("sm", NS.SM) !== undefined,
  };
}
