// The gateway worker in workerd: what the npm `standardwebhooks` library
// signs is verified and forwarded; what the component signs inside workerd,
// that library verifies; tampered, stale and unsigned deliveries are refused
// with docs/API.md's codes and never reach the origin.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";

import { origin, workerd } from "./workerd.js";

const secret = () => "whsec_" + randomBytes(32).toString("base64");
const [current, previous] = [secret(), secret()];
const now = () => Math.floor(Date.now() / 1000);
let server;
let receiver;
before(async () => {
  receiver = await origin();
  const secrets = [{ key: current }, { key: previous, notAfter: now() + 3600 }];
  server = await workerd({ HOOKSIGN_SECRETS: JSON.stringify(secrets), ORIGIN_URL: receiver.url });
});
after(() => {
  server.stop();
  receiver.close();
});

const TEXTS = ["plain ascii", "naïve café — ünïcödé", "日本語のテキスト", "emoji 🔐🚀"];
const message = (i) => ({ id: `msg_${i}_${randomBytes(6).toString("hex")}`, body: JSON.stringify({ type: "order.paid", text: TEXTS[i % TEXTS.length], n: i }) });

function signed(key, { id, body }, timestamp = now()) {
  const signature = new Webhook(key).sign(id, new Date(timestamp * 1000), body);
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature, "content-type": "application/json" };
}

const post = (headers, body) => fetch(server.gateway, { method: "POST", headers, body });

test("what standardwebhooks signs, with the current or the previous secret, is forwarded with the secret's index", async () => {
  for (let i = 0; i < 8; i++) {
    const key = i % 2 === 0 ? current : previous;
    const sent = message(i);
    const before = receiver.received.length;
    const response = await post(signed(key, sent), sent.body);
    assert.equal(response.status, 202);
    assert.equal(await response.text(), "queued");
    assert.equal(receiver.received.length, before + 1);
    const forwarded = receiver.received.at(-1);
    assert.equal(forwarded.body.toString("utf8"), sent.body);
    assert.equal(forwarded.headers["webhook-id"], sent.id);
    assert.equal(forwarded.headers["hooksign-verified-secret"], String(i % 2));
    assert.equal(forwarded.headers["content-type"], "application/json");
  }
});

test("standardwebhooks verifies what the component signs inside workerd, with one and with two secrets", async () => {
  for (const keys of [[current], [current, previous]]) {
    const { id, body } = message(keys.length);
    const timestamp = now();
    const response = await fetch(`${server.harness}/sign`, {
      method: "POST",
      body: JSON.stringify({ secrets: keys.map((key) => ({ key })), id, timestamp, payload: body }),
    });
    const { signature } = await response.json();
    assert.equal(signature.split(" ").length, keys.length);
    const headers = { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
    for (const key of keys) new Webhook(key).verify(body, headers);
    assert.throws(() => new Webhook(secret()).verify(body, headers));
  }
});

async function refused(response, status, code) {
  assert.equal(response.status, status);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  const problem = await response.json();
  assert.equal(problem.code, code);
  assert.equal(problem.status, status);
}

test("a tampered body, a stale or future timestamp, a stranger's secret and missing headers are refused and not forwarded", async () => {
  const before = receiver.received.length;
  const sent = message(100);
  await refused(await post(signed(current, sent), sent.body.replace("order", "0rder")), 401, "no_matching_signature");
  await refused(await post(signed(secret(), sent), sent.body), 401, "no_matching_signature");
  await refused(await post(signed(current, sent, now() - 600), sent.body), 401, "timestamp_too_old");
  await refused(await post(signed(current, sent, now() + 600), sent.body), 401, "timestamp_too_new");
  const { "webhook-signature": _, ...unsigned } = signed(current, sent);
  await refused(await post(unsigned, sent.body), 400, "missing_header");
  await refused(await fetch(server.gateway), 405, "method_not_allowed");
  assert.equal(receiver.received.length, before);
});

test("a keyring that does not parse is a 500 that does not quote it; an origin that is down is a 502", async () => {
  const sent = message(200);
  const bad = "whsec_c2hvcnQ=";
  const misconfigured = await workerd({ HOOKSIGN_SECRETS: JSON.stringify([{ key: bad }]), ORIGIN_URL: receiver.url });
  try {
    const response = await fetch(misconfigured.gateway, { method: "POST", headers: signed(current, sent), body: sent.body });
    assert.equal(response.status, 500);
    const text = await response.text();
    assert.equal(JSON.parse(text).code, "invalid_configuration");
    assert.ok(!text.includes(bad) && !text.includes("c2hvcnQ"), text);
  } finally {
    misconfigured.stop();
  }
  const closed = await origin();
  closed.close();
  const unreachable = await workerd({ HOOKSIGN_SECRETS: JSON.stringify([{ key: current }]), ORIGIN_URL: closed.url });
  try {
    await refused(await fetch(unreachable.gateway, { method: "POST", headers: signed(current, sent), body: sent.body }), 502, "origin_unreachable");
  } finally {
    unreachable.stop();
  }
});

test("wrangler.jsonc runs the worker as wrangler bundles it (wasm imports and all)", async () => {
  // The keyring is a wrangler secret, so not in the file: the worker loads
  // the component and answers that it has no keyring.
  const sent = message(300);
  const deployed = await workerd({}, { config: "wrangler.jsonc", sockets: ["http"], args: ["--socket-addr", "http=127.0.0.1:0"] });
  try {
    await refused(await fetch(deployed.http, { method: "POST", headers: signed(current, sent), body: sent.body }), 500, "invalid_configuration");
    await refused(await fetch(deployed.http), 405, "method_not_allowed");
  } finally {
    deployed.stop();
  }
});

test("HOOKSIGN_SCHEME=github verifies GitHub's signature and passes its event on; a bad scheme is a 500", async () => {
  const secret = `github ${randomBytes(8).toString("hex")}`;
  const github = await workerd({ HOOKSIGN_SECRETS: JSON.stringify([{ key: secret }]), HOOKSIGN_SCHEME: "github", ORIGIN_URL: receiver.url });
  try {
    const body = JSON.stringify({ ref: "refs/heads/main" });
    // GitHub's scheme, from Node's own HMAC: sha256= and the hex of the body's MAC.
    const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    const headers = { "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "x-hub-signature-256": signature, "x-github-event": "push", "content-type": "application/json" };
    const response = await fetch(github.gateway, { method: "POST", headers, body });
    assert.equal(response.status, 202);
    const forwarded = receiver.received.at(-1);
    assert.equal(forwarded.headers["webhook-id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert.equal(forwarded.headers["x-github-event"], "push");
    assert.equal(forwarded.body.toString("utf8"), body);
    const before = receiver.received.length;
    await refused(await fetch(github.gateway, { method: "POST", headers, body: `${body} ` }), 401, "no_matching_signature");
    const sent = message(400);
    await refused(await fetch(github.gateway, { method: "POST", headers: signed(current, sent), body: sent.body }), 400, "missing_header");
    assert.equal(receiver.received.length, before);
  } finally {
    github.stop();
  }
  const unknown = await workerd({ HOOKSIGN_SECRETS: JSON.stringify([{ key: secret }]), HOOKSIGN_SCHEME: "paypal", ORIGIN_URL: receiver.url });
  try {
    const sent = message(401);
    await refused(await fetch(unknown.gateway, { method: "POST", headers: signed(current, sent), body: sent.body }), 500, "invalid_configuration");
  } finally {
    unknown.stop();
  }
});
