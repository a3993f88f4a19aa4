/**
 * MongooseIM's federation policy: `[s2s] host_policy` decides for the domains it lists,
 * `default_policy` for everyone else. Applied to both directions (seed 004).
 */
import type { Config } from "../config/schema.js";

export type FederationPolicy = (domain: string) => boolean;

export function federationPolicy(s2s: Config["s2s"]): FederationPolicy {
  const byHost = new Map(
    s2s.host_policy.map((entry) => [entry.host.toLowerCase(), entry.policy === "allow"]),
  );
  const byDefault = s2s.default_policy === "allow";
  return (domain) => byHost.get(domain) ?? byDefault;
}
