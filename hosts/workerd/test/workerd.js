// Starts workerd on test/config.capnp for a test file: free loopback ports
// read from its control descriptor, an origin server of the test's own that
// records what the gateway forwards, and the gateway's secrets in its
// environment.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const WORKERD = fileURLToPath(new URL("../node_modules/.bin/workerd", import.meta.url));

/** An HTTP server on 127.0.0.1 that answers 202 "queued" and records each request. */
export async function origin() {
  const received = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ url: request.url, headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(202, { "content-type": "text/plain" }).end("queued");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/hooks`, received, close: () => server.close() };
}

/** workerd serving a config (by default the gateway, with `environment`'s
 * bindings, and the harness); resolves with a base URL per socket. */
export async function workerd(environment, { config = "test/config.capnp", sockets = ["gateway", "harness"], args = [] } = {}) {
  const child = spawn(WORKERD, ["serve", config, "--control-fd=3", ...args], {
    cwd: root,
    env: { ...process.env, ...environment },
    stdio: ["ignore", "inherit", "inherit", "pipe"],
  });
  const ports = {};
  const lines = createInterface({ input: child.stdio[3] });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("workerd did not listen in 20 s")), 20_000);
    child.on("exit", (code) => reject(new Error(`workerd exited with ${code}`)));
    lines.on("line", (line) => {
      const message = JSON.parse(line);
      if (message.event === "listen") ports[message.socket] = message.port;
      if (sockets.every((name) => ports[name])) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const bases = Object.fromEntries(sockets.map((name) => [name, `http://127.0.0.1:${ports[name]}`]));
  return { ...bases, stop: () => child.kill() };
}
