// Every file of tests/vectors/ through the component, in Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

import * as signer from "../hooksign.js";
import { normalise, outcome, parseVectors } from "../vectors.js";

const dir = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));
const files = readdirSync(dir).filter((name) => name.endsWith(".json")).sort();
let count = 0;
for (const file of files) {
  const { format, cases } = parseVectors(readFileSync(join(dir, file), "utf8"));
  assert.equal(format, "hooksign-vectors/1");
  for (const c of cases) {
    count += 1;
    test(`${file}: ${c.name}`, () => assert.deepEqual(outcome(signer, c), normalise(c.expect)));
  }
}

test("the vector set is all there", () => {
  assert.ok(files.length >= 5 && count >= 150, `${files.length} files, ${count} cases`);
});
