import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compileRequireFor, type TlsRequirement } from "../../src/tls/requireFor.js";

describe("require_for (seed 001's secure-relaying list)", () => {
  const cases: { patterns: string[]; domain: string; expected: TlsRequirement; why: string }[] = [
    { patterns: [], domain: "any.example", expected: "opportunistic", why: "empty list" },
    { patterns: ["partner.example"], domain: "partner.example", expected: "required", why: "exact" },
    {
      patterns: ["partner.example"],
      domain: "x.partner.example",
      expected: "opportunistic",
      why: "exact only",
    },
    {
      patterns: ["partner.example"],
      domain: "PARTNER.Example",
      expected: "required",
      why: "case-insensitive",
    },
    { patterns: ["Partner.EXAMPLE"], domain: "partner.example", expected: "required", why: "pattern case" },
    { patterns: ["partner.example"], domain: "partner.example.", expected: "required", why: "root dot" },
    { patterns: ["*.corp.example"], domain: "a.corp.example", expected: "required", why: "one label" },
    { patterns: ["*.corp.example"], domain: "a.b.corp.example", expected: "required", why: "two labels" },
    { patterns: ["*.corp.example"], domain: "corp.example", expected: "opportunistic", why: "not itself" },
    { patterns: ["*.corp.example"], domain: "xcorp.example", expected: "opportunistic", why: "label edge" },
    {
      patterns: ["*.corp.example"],
      domain: "a.corp.example.net",
      expected: "opportunistic",
      why: "anchored",
    },
    { patterns: ["mail*.example"], domain: "mail2.example", expected: "required", why: "* mid-label" },
    { patterns: ["xmpp.*.example"], domain: "xmpp.eu.example", expected: "required", why: "* inside" },
    { patterns: ["*"], domain: "anything.example", expected: "required", why: "everything" },
    { patterns: ["a.b.example"], domain: "axb.example", expected: "opportunistic", why: "dot is literal" },
    { patterns: ["!broken.example"], domain: "broken.example", expected: "never", why: "exception" },
    {
      patterns: ["*.corp.example", "!old.corp.example"],
      domain: "old.corp.example",
      expected: "never",
      why: "exception wins over a wildcard",
    },
    {
      patterns: ["!old.corp.example", "*.corp.example"],
      domain: "old.corp.example",
      expected: "never",
      why: "whatever the order",
    },
    {
      patterns: ["*.corp.example", "!old.corp.example"],
      domain: "new.corp.example",
      expected: "required",
      why: "exception is exact",
    },
    {
      patterns: ["partner.example", "!*.legacy.example"],
      domain: "x.legacy.example",
      expected: "never",
      why: "wildcard exception",
    },
  ];
  for (const { patterns, domain, expected, why } of cases) {
    it(`${JSON.stringify(patterns)} → ${domain}: ${expected} (${why})`, () => {
      assert.equal(compileRequireFor(patterns)(domain), expected);
    });
  }

  const invalid: { patterns: string[]; message: RegExp }[] = [
    { patterns: [""], message: /^require_for\[0\]: invalid entry "": empty pattern$/ },
    { patterns: ["ok.example", "!"], message: /^require_for\[1\]: invalid entry "!": empty pattern$/ },
    { patterns: ["a .example"], message: /require_for\[0\].*"a \.example".*whitespace/ },
    { patterns: [" a.example"], message: /whitespace/ },
    { patterns: ["!!a.example"], message: /more than one leading !/ },
    { patterns: ["a!b.example"], message: /only as the first character/ },
    { patterns: ["a..example"], message: /empty label/ },
    { patterns: [".example"], message: /empty label/ },
  ];
  for (const { patterns, message } of invalid) {
    it(`rejects ${JSON.stringify(patterns)}`, () => {
      assert.throws(() => compileRequireFor(patterns), { message });
    });
  }
});
