// The providers' own libraries against the component and the native CLI,
// both directions: Stripe's (`stripe.webhooks`) and GitHub's
// (`@octokit/webhooks-methods`). Messages come from a seeded generator.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { sign as githubSign, verify as githubVerify } from "@octokit/webhooks-methods";
import Stripe from "stripe";

import { HooksignError, Keyring } from "../hooksign.js";

const CLI = process.env.HOOKSIGN_CLI ?? fileURLToPath(new URL("../../../target/release/hooksign", import.meta.url));
const stripe = new Stripe("sk_test_interop_never_sent");

let seed = 20261127;
const random = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 32;
};
const text = (length) => Array.from({ length }, () => "abcdefghijklmnopqrstuvwxyz0123456789"[Math.floor(random() * 36)]).join("");
const stripeSecret = () => `whsec_${text(32)}`;
const body = () => JSON.stringify({ id: `evt_${text(14)}`, object: "event", text: "naïve café 🔐", n: Math.floor(random() * 1e9) });
const now = () => Math.floor(Date.now() / 1000);

test("the component verifies what stripe-node signs, with the current or the previous secret", () => {
  for (let i = 0; i < 8; i++) {
    const [current, previous] = [stripeSecret(), stripeSecret()];
    const payload = body();
    const keyring = Keyring.parse([{ key: current }, { key: previous, notAfter: now() + 60 }], "stripe");
    for (const [index, secret] of [current, previous].entries()) {
      const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
      assert.equal(keyring.verify([["Stripe-Signature", header]], payload).secret, index);
    }
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret: current });
    assert.throws(() => keyring.verify([["Stripe-Signature", header]], payload + " "),
      (error) => error instanceof HooksignError && error.code === "no-matching-signature");
    const stale = stripe.webhooks.generateTestHeaderString({ payload, secret: current, timestamp: now() - 400 });
    assert.throws(() => keyring.verify([["Stripe-Signature", stale]], payload),
      (error) => error instanceof HooksignError && error.code === "timestamp-too-old");
  }
});

test("stripe-node verifies what the component and the CLI sign, with one and with two secrets", () => {
  for (const secrets of [[stripeSecret()], [stripeSecret(), stripeSecret()]]) {
    const payload = body();
    const header = Keyring.parse(secrets.map((key) => ({ key })), "stripe").sign("evt_1", now(), payload);
    assert.equal(header.split(",v1=").length, secrets.length + 1);
    for (const secret of secrets) assert.ok(stripe.webhooks.signature.verifyHeader(payload, header, secret));
    const args = ["sign", "--scheme", "stripe", "--id", "evt_1", ...secrets.flatMap((key) => ["--secret", key])];
    const printed = execFileSync(CLI, args, { input: payload }).toString().trim();
    assert.match(printed, /^stripe-signature: t=\d+,v1=[0-9a-f]{64}/);
    for (const secret of secrets) assert.ok(stripe.webhooks.signature.verifyHeader(payload, printed.split(": ")[1], secret));
    assert.throws(() => stripe.webhooks.signature.verifyHeader(payload, header, stripeSecret()));
  }
});

test("the component verifies what @octokit/webhooks-methods signs, and the other way", async () => {
  for (let i = 0; i < 8; i++) {
    const secret = `${text(20)} ${text(8)}`;
    const payload = body();
    const delivery = `${text(8)}-${text(4)}-${text(4)}`;
    const keyring = Keyring.parse([{ key: text(12) }, { key: secret }], "github");
    const signature = await githubSign(secret, payload);
    const headers = [["X-GitHub-Delivery", delivery], ["X-Hub-Signature-256", signature]];
    const verified = keyring.verify(headers, payload);
    assert.equal(verified.secret, 1);
    assert.equal(verified.id, delivery);
    assert.throws(() => keyring.verify(headers, `${payload} `),
      (error) => error instanceof HooksignError && error.code === "no-matching-signature");
    const ours = Keyring.parse([{ key: secret }], "github").sign(delivery, now(), payload);
    assert.equal(ours, signature);
    assert.ok(await githubVerify(secret, payload, ours));
  }
});
