// keyring.verifyValues through jco: every Standard Webhooks verify vector
// whose headers are the three lowercase names, once each, gives the same
// outcome from their values as from the headers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

import { Keyring, HooksignError } from "../hooksign.js";
import { normalise, parseVectors, payload, secrets } from "../vectors.js";

const NAMES = ["webhook-id", "webhook-timestamp", "webhook-signature"];
const dir = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));

/** The values of a case whose headers are exactly the three names, once each. */
function values(c) {
  const names = c.headers.map(([name]) => name);
  if (names.length !== 3 || !NAMES.every((name) => names.filter((n) => n === name).length === 1)) return null;
  const value = (name) => c.headers.find(([n]) => n === name)[1];
  return { id: value("webhook-id"), timestamp: value("webhook-timestamp"), signature: value("webhook-signature") };
}

let count = 0;
for (const file of readdirSync(dir).filter((name) => name.endsWith(".json")).sort()) {
  for (const c of parseVectors(readFileSync(join(dir, file), "utf8")).cases) {
    if (c.op !== "verify" || (c.scheme ?? "standard-webhooks") !== "standard-webhooks" || !values(c)) continue;
    count += 1;
    test(`${file}: ${c.name}`, () => {
      let got;
      try {
        const keyring = Keyring.parse(secrets(c.secrets));
        got = { ok: { secret: keyring.verifyValues(values(c), payload(c), { now: BigInt(c.now), toleranceSeconds: c.toleranceSeconds }).secret } };
      } catch (error) {
        if (!(error instanceof HooksignError)) throw error;
        got = { error: error.code };
      }
      assert.deepEqual(normalise(got), normalise(c.expect));
    });
  }
}

test("the cases are there", () => assert.ok(count >= 40, `${count} cases`));

test("a value the scheme reads that is absent or empty is missing-header", () => {
  const keyring = Keyring.parse([{ key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }]);
  const signature = keyring.sign("msg_1", 1700000000n, "{}");
  const good = { id: "msg_1", timestamp: "1700000000", signature };
  assert.equal(keyring.verifyValues(good, "{}", { now: 1700000000n }).timestamp, 1700000000n);
  for (const field of ["id", "timestamp", "signature"]) {
    for (const missing of [undefined, ""]) {
      assert.throws(() => keyring.verifyValues({ ...good, [field]: missing }, "{}", { now: 1700000000n }),
        (error) => error instanceof HooksignError && error.code === "missing-header", `${field} ${missing}`);
    }
  }
});
