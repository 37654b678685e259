# workerd's configuration for the gateway worker (worker.js). After `npm run
# build`:
#   HOOKSIGN_SECRETS='[{"key": "whsec_..."}]' ORIGIN_URL=http://127.0.0.1:8080/hooks \
#     npx workerd serve config.capnp
# serves it on 127.0.0.1:8787 (`--socket-addr http=ADDR` for another).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "gateway", worker = .gatewayWorker),
    # fetch()'s network: a local origin is on loopback or a private address.
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "gateway")],
);

const gatewayWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "dist/worker.js"),
    (name = "gen/signer.core.wasm", wasm = embed "gen/signer.core.wasm"),
    (name = "gen/signer.core2.wasm", wasm = embed "gen/signer.core2.wasm"),
    (name = "gen/signer.core3.wasm", wasm = embed "gen/signer.core3.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "HOOKSIGN_SECRETS", fromEnvironment = "HOOKSIGN_SECRETS"),
    (name = "ORIGIN_URL", fromEnvironment = "ORIGIN_URL"),
    (name = "TOLERANCE_SECONDS", fromEnvironment = "TOLERANCE_SECONDS"),
    (name = "HOOKSIGN_SCHEME", fromEnvironment = "HOOKSIGN_SCHEME"),
  ],
);
