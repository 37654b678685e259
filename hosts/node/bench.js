// jco-transpiled hooksign verify (and verifyValues) against the npm `standardwebhooks` library
// on the same 1 KiB message: `npm run bench`. Samples of the two alternate,
// so that machine noise hits both; prints the median time per verify.
import { Webhook } from "standardwebhooks";

import { Keyring, generateSecret } from "./hooksign.js";

const key = generateSecret();
const now = Math.floor(Date.now() / 1000);
// 1 KiB of JSON: the peer's verify also parses the body (part of its API).
const body = JSON.stringify({ data: "x".repeat(1013) });
const keyring = Keyring.parse([{ key }]);
const payload = new TextEncoder().encode(body);
const headers = { "webhook-id": "msg_bench", "webhook-timestamp": String(now), "webhook-signature": keyring.sign("msg_bench", now, payload) };
const pairs = Object.entries(headers);
const peer = new Webhook(key);

const candidates = {
  "hooksign (jco component)": () => keyring.verify(pairs, payload, { now }),
  "standardwebhooks (npm)": () => peer.verify(body, headers),
  "hooksign verifyValues (jco component)": () =>
    keyring.verifyValues({ id: headers["webhook-id"], timestamp: headers["webhook-timestamp"], signature: headers["webhook-signature"] }, payload, { now }),
};
const ITERATIONS = 2000;
const SAMPLES = 31;
const samples = Object.fromEntries(Object.keys(candidates).map((name) => [name, []]));
for (let round = 0; round < SAMPLES + 3; round++) {
  for (const [name, verify] of Object.entries(candidates)) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) verify();
    const perCall = Number(process.hrtime.bigint() - start) / ITERATIONS;
    if (round >= 3) samples[name].push(perCall); // the first rounds warm the JIT
  }
}
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
const medians = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
for (const [name, ns] of Object.entries(medians)) console.log(`${name}: ${(ns / 1000).toFixed(2)} µs per verify (median of ${SAMPLES})`);
const [ours, theirs, values] = Object.values(medians);
console.log(`ratio standardwebhooks / hooksign: ${(theirs / ours).toFixed(2)}; / verifyValues: ${(theirs / values).toFixed(2)}`);
