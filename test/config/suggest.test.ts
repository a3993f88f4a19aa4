import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { closestMatch, editDistance } from "../../src/config/suggest.js";

describe("editDistance", () => {
  it("counts insertions, deletions, substitutions and adjacent transpositions as one", () => {
    assert.equal(editDistance("conection_timeout", "connection_timeout"), 1);
    assert.equal(editDistance("prot", "port"), 1);
    assert.equal(editDistance("shaper", "shaper"), 0);
    assert.equal(editDistance("", "abc"), 3);
  });
});

describe("closestMatch", () => {
  const keys = ["port", "shaper", "outgoing", "outgoing.port", "outgoing.connection_timeout"];
  it("suggests close keys and nothing for far ones", () => {
    assert.equal(closestMatch("prot", keys), "port");
    assert.equal(closestMatch("shapper", keys), "shaper");
    assert.equal(closestMatch("connection-timeout", keys), "outgoing.connection_timeout");
    assert.equal(closestMatch("completely_different", keys), undefined);
  });
  it("prefers a key of the table itself over a nested one", () => {
    assert.equal(closestMatch("port", keys), "port");
  });
});
