// Every file of tests/vectors/ through the component, in Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

import { HooksignError, Keyring } from "../hooksign.js";

const dir = fileURLToPath(new URL("../../../tests/vectors/", import.meta.url));
const KNOWN = new Set(["name", "op", "secrets", "id", "timestamp", "payload", "payloadBase64", "headers",
  "now", "toleranceSeconds", "graceSeconds", "newSecret", "expect"]);

// JSON.parse rounds integers past 2^53; the vectors hold i64 extremes, so
// long integer literals are read as strings and turned into BigInts.
const parse = (text) => JSON.parse(text.replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
const big = (value) => (value === undefined ? undefined : BigInt(value));
const secrets = (records) => records.map(({ key, notBefore, notAfter }) => ({ key, notBefore: big(notBefore), notAfter: big(notAfter) }));
const payload = (c) => (c.payloadBase64 !== undefined ? Buffer.from(c.payloadBase64, "base64") : new TextEncoder().encode(c.payload));
// Expected keyrings compared as strings: BigInt and number never compare equal.
const normalise = (value) => JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : typeof v === "number" ? String(v) : v)));

function run(c) {
  const keyring = Keyring.parse(secrets(c.secrets));
  switch (c.op) {
    case "sign": return { signature: keyring.sign(c.id, BigInt(c.timestamp), payload(c)) };
    case "verify": return { ok: { secret: keyring.verify(c.headers, payload(c), { now: BigInt(c.now), toleranceSeconds: c.toleranceSeconds }).secret } };
    case "rotate": return { secrets: keyring.rotate(c.newSecret, { now: BigInt(c.now), graceSeconds: c.graceSeconds }).secrets() };
    case "active": return { active: keyring.active(BigInt(c.now)) };
    default: throw new Error(`unknown op ${c.op}`);
  }
}

const files = readdirSync(dir).filter((name) => name.endsWith(".json")).sort();
let count = 0;
for (const file of files) {
  const { format, cases } = parse(readFileSync(join(dir, file), "utf8"));
  assert.equal(format, "hooksign-vectors/1");
  for (const c of cases) {
    count += 1;
    test(`${file}: ${c.name}`, () => {
      for (const field of Object.keys(c)) assert.ok(KNOWN.has(field), `unknown field ${field}`);
      let got;
      try {
        got = run(c);
      } catch (error) {
        if (!(error instanceof HooksignError)) throw error;
        got = { error: error.code };
      }
      assert.deepEqual(normalise(got), normalise(c.expect));
    });
  }
}

test("the vector set is all there", () => {
  assert.ok(files.length >= 5 && count >= 150, `${files.length} files, ${count} cases`);
});
