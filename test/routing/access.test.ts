import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compileAccess } from "../../src/routing/access.js";
import { Jid } from "../../src/xmpp/jid.js";

const lists = {
  admins: ["admin@a.example", "ops@b.example/console"],
  locals: ["*@a.example"],
  partner: ["partner.example"],
};

describe("[access] lists", () => {
  const cases: [rule: string, jid: string, allowed: boolean][] = [
    ["all", "anyone@anywhere.example/x", true],
    ["admins", "admin@a.example", true],
    ["admins", "Admin@A.Example/phone", true],
    ["admins", "other@a.example", false],
    ["admins", "ops@b.example/console", true],
    ["admins", "ops@b.example/laptop", false],
    ["locals", "bob@a.example/r", true],
    ["locals", "a.example", false],
    ["locals", "bob@b.example", false],
    ["partner", "partner.example", true],
    ["partner", "bot@partner.example/r", true],
    ["partner", "bot@sub.partner.example", false],
  ];
  for (const [rule, jid, allowed] of cases) {
    it(`${rule}: ${jid} → ${allowed ? "allowed" : "refused"}`, () => {
      assert.equal(compileAccess(rule, lists)(Jid.parse(jid)), allowed);
    });
  }

  it("names an unknown list", () => {
    assert.throws(() => compileAccess("nobody", lists), /unknown access list "nobody"/);
  });
});
