// Every file of tests/vectors/ run inside workerd by the harness worker,
// compared here with each case's `expect`.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

import { normalise, parseVectors } from "../../node/vectors.js";
import { workerd } from "./workerd.js";

const dir = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));
const files = readdirSync(dir).filter((name) => name.endsWith(".json")).sort();
let server;
before(async () => {
  server = await workerd({ HOOKSIGN_SECRETS: "[]", ORIGIN_URL: "http://127.0.0.1:9/" });
});
after(() => server.stop());

test("every vector file passes inside workerd", async () => {
  let passed = 0;
  const failures = [];
  for (const file of files) {
    const text = readFileSync(join(dir, file), "utf8");
    const { cases } = parseVectors(text);
    const response = await fetch(`${server.harness}/vectors`, { method: "POST", body: text });
    assert.equal(response.status, 200);
    const { format, outcomes } = await response.json();
    assert.equal(format, "hooksign-vectors/1");
    assert.deepEqual(outcomes.map((o) => o.name), cases.map((c) => c.name), file);
    outcomes.forEach((o, i) => {
      if (o.thrown === undefined && isDeepStrictEqual(o.outcome, normalise(cases[i].expect))) passed += 1;
      else failures.push({ file, name: o.name, got: o.thrown ?? o.outcome, expect: cases[i].expect });
    });
  }
  console.log(`workerd vectors: ${passed} passed, ${failures.length} failed`);
  assert.deepEqual(failures, []);
  assert.ok(files.length >= 5 && passed >= 150, `${files.length} files, ${passed} cases`);
});
