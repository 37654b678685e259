// Byte-exact interop with the Node `standardwebhooks` library, both
// directions; messages come from a seeded generator, not from fixtures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Webhook } from "standardwebhooks";

import { HooksignError, Keyring, generateSecret } from "../hooksign.js";

// mulberry32: a small seeded generator, so that every run checks the same messages.
function generator(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = generator(20261127);
const TEXTS = ["plain ascii", "naïve café — ünïcödé", "日本語のテキスト", "emoji 🔐🚀"];
const secret = () => "whsec_" + Buffer.from(Array.from({ length: 32 }, () => Math.floor(random() * 256))).toString("base64");
const message = () => ({
  id: "msg_" + Math.floor(random() * 1e12).toString(36),
  body: JSON.stringify({ type: "order.paid", text: TEXTS[Math.floor(random() * TEXTS.length)], n: Math.floor(random() * 1e9) }),
});

test("standardwebhooks verifies what the component signs, with one and with two secrets", () => {
  for (let i = 0; i < 10; i++) {
    const [current, previous] = [secret(), secret()];
    const now = Math.floor(Date.now() / 1000);
    const { id, body } = message();
    const keyring = Keyring.parse([{ key: current }, { key: previous, notAfter: now + 3600 }]);
    const signature = keyring.sign(id, now, body);
    assert.equal(signature.split(" ").length, 2);
    const headers = { "webhook-id": id, "webhook-timestamp": String(now), "webhook-signature": signature };
    for (const key of [current, previous]) new Webhook(key).verify(body, headers);
    assert.throws(() => new Webhook(secret()).verify(body, headers));
    const single = Keyring.parse([{ key: current }]).sign(id, now, body);
    assert.equal(single, signature.split(" ")[0]);
  }
});

test("the component verifies what standardwebhooks signs, including non-ASCII text", () => {
  for (let i = 0; i < 10; i++) {
    const key = secret();
    const { id, body } = message();
    const now = Math.floor(Date.now() / 1000);
    const signature = new Webhook(key).sign(id, new Date(now * 1000), body);
    const headers = { "webhook-id": id, "webhook-timestamp": String(now), "webhook-signature": signature };
    const verified = Keyring.parse([{ key: secret() }, { key, notAfter: now + 60 }]).verify(headers, body, { now });
    assert.equal(verified.secret, 1);
    assert.equal(verified.id, id);
    assert.throws(() => Keyring.parse([{ key }]).verify(headers, body + " ", { now }), (error) => error instanceof HooksignError && error.code === "no-matching-signature");
  }
});

test("svix-* header names verify", () => {
  const key = generateSecret();
  const { id, body } = message();
  const now = Math.floor(Date.now() / 1000);
  const signature = new Webhook(key).sign(id, new Date(now * 1000), body);
  const headers = [["svix-id", id], ["svix-timestamp", String(now)], ["svix-signature", signature]];
  assert.equal(Keyring.parse([{ key }]).verify(headers, body, { now }).secret, 0);
});

test("standardwebhooks verifies what the native CLI signs, with one and with two secrets", () => {
  const cli = process.env.HOOKSIGN_CLI ?? fileURLToPath(new URL("../../../target/release/hooksign", import.meta.url));
  for (const keys of [[secret()], [secret(), secret()]]) {
    const { id, body } = message();
    const now = Math.floor(Date.now() / 1000);
    const args = ["sign", "--id", id, "--timestamp", String(now), ...keys.flatMap((key) => ["--secret", key])];
    const out = execFileSync(cli, args, { input: body }).toString();
    const headers = Object.fromEntries(out.trim().split("\n").map((line) => line.split(": ")));
    assert.equal(headers["webhook-signature"].split(" ").length, keys.length);
    for (const key of keys) new Webhook(key).verify(body, headers);
  }
});
