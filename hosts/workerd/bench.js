// Verify-and-forward of a signed 1 KiB delivery per request, through the
// gateway worker in workerd and through `hooksign serve`'s receiver gateway,
// both on loopback to the same origin (bench-origin.js, a process of its
// own): `npm run bench` after `npm run build`, with HOOKSIGN_CLI and
// HOOKSIGN_HTTP_WASM naming the CLI and the edge component. Rounds of the
// two alternate, so that machine noise hits both; prints requests/s (median
// round) and p50/p99 over every request, per concurrency.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Webhook } from "standardwebhooks";

import { workerd } from "./test/workerd.js";

const CLI = process.env.HOOKSIGN_CLI ?? fileURLToPath(new URL("../../target/release/hooksign", import.meta.url));
const COMPONENT = process.env.HOOKSIGN_HTTP_WASM;
const REQUESTS = 2000;
const ROUNDS = 3;
const CONCURRENCIES = [1, 16];

/** A child's first line of output that `pattern` matches, as its first group. */
function announced(child, pattern, what) {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${output}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const found = pattern.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`${what} exited with ${code}: ${output}`)));
  });
}

const originProcess = spawn(process.execPath, [fileURLToPath(new URL("bench-origin.js", import.meta.url))], { stdio: ["ignore", "pipe", "inherit"] });
const originUrl = `http://127.0.0.1:${await announced(originProcess, /^(\d+)\n/, "the origin")}/hooks`;

const key = "whsec_" + randomBytes(32).toString("base64");
const worker = await workerd({ HOOKSIGN_SECRETS: JSON.stringify([{ key }]), ORIGIN_URL: originUrl });

const data = mkdtempSync(join(tmpdir(), "hooksign-bench-"));
const sources = { bench: { secrets: [{ key }], forwardUrl: originUrl } };
const serveArgs = ["serve", "--listen", "127.0.0.1:0", "--data", data, "--variable", `inbound_sources=${JSON.stringify(sources)}`];
if (COMPONENT) serveArgs.push("--component", COMPONENT);
const serve = spawn(CLI, serveArgs, { stdio: ["ignore", "pipe", "inherit"] });
const serveBase = await announced(serve, /serving (http:\/\/\S+)/, "hooksign serve");

const targets = { "workerd (gateway worker)": worker.gateway + "/", "hooksign serve (/inbound)": `${serveBase}/inbound/bench` };

// 1 KiB of JSON, a fresh id per request: hooksign serve refuses a replay.
const signer = new Webhook(key);
const body = JSON.stringify({ type: "bench", data: "x".repeat(1000) });
let sequence = 0;
function delivery() {
  const id = `msg_${process.pid}_${sequence++}`;
  const now = new Date();
  return { "webhook-id": id, "webhook-timestamp": String(Math.floor(now / 1000)), "webhook-signature": signer.sign(id, now, body), "content-type": "application/json" };
}

function post(url, headers, agent) {
  return new Promise((resolve, reject) => {
    const sent = request(url, { method: "POST", headers, agent }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode));
    });
    sent.on("error", reject);
    sent.end(body);
  });
}

/** REQUESTS deliveries over `concurrency` kept-alive connections: requests/s and each latency (ms). */
async function round(url, concurrency) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const headers = Array.from({ length: REQUESTS }, delivery);
  const latencies = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < REQUESTS) {
      const sent = headers[next++];
      const begun = performance.now();
      const status = await post(url, sent, agent);
      if (status !== 204) throw new Error(`${url}: ${status}`);
      latencies.push(performance.now() - begun);
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  return { rate: REQUESTS / seconds, latencies };
}

const percentile = (values, p) => values.sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
try {
  console.log("| gateway | concurrency | requests | requests/s | p50 | p99 |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const concurrency of CONCURRENCIES) {
    for (const url of Object.values(targets)) await round(url, concurrency); // warm-up
    const results = Object.fromEntries(Object.keys(targets).map((name) => [name, { rates: [], latencies: [] }]));
    for (let i = 0; i < ROUNDS; i++) {
      for (const [name, url] of Object.entries(targets)) {
        const { rate, latencies } = await round(url, concurrency);
        results[name].rates.push(rate);
        results[name].latencies.push(...latencies);
      }
    }
    for (const [name, { rates, latencies }] of Object.entries(results)) {
      const ms = (value) => `${value.toFixed(2)} ms`;
      console.log(`| ${name} | ${concurrency} | ${REQUESTS * ROUNDS} | ${percentile(rates, 0.5).toFixed(0)} | ${ms(percentile(latencies, 0.5))} | ${ms(percentile(latencies, 0.99))} |`);
    }
  }
} finally {
  worker.stop();
  serve.kill();
  originProcess.kill();
  rmSync(data, { recursive: true, force: true });
}
