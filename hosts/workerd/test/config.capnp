# The tests' workerd: the gateway worker as config.capnp builds it, and a
# harness worker (harness.js) that runs vector files and signs on request;
# both on free loopback ports, reported on the control descriptor.
using Workerd = import "/workerd/workerd.capnp";
using Gateway = import "../config.capnp";

const config :Workerd.Config = (
  services = [
    (name = "gateway", worker = Gateway.gatewayWorker),
    (name = "harness", worker = .harnessWorker),
    (name = "internet", network = (allow = ["local"])),
  ],
  sockets = [
    (name = "gateway", address = "127.0.0.1:0", http = (), service = "gateway"),
    (name = "harness", address = "127.0.0.1:0", http = (), service = "harness"),
  ],
);

const harnessWorker :Workerd.Worker = (
  modules = [
    (name = "harness.js", esModule = embed "../dist/test/harness.js"),
    (name = "gen/signer.core.wasm", wasm = embed "../gen/signer.core.wasm"),
    (name = "gen/signer.core2.wasm", wasm = embed "../gen/signer.core2.wasm"),
    (name = "gen/signer.core3.wasm", wasm = embed "../gen/signer.core3.wasm"),
  ],
  compatibilityDate = "2026-11-01",
);
