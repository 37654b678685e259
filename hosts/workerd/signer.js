// The signer component in workerd: jco's transpile with asynchronous
// instantiation (gen/, `npm run build`) over core modules that workerd
// compiles when it loads the worker (declared as `wasm` modules in
// config.capnp), since it refuses to compile wasm bytes while serving. The
// WASI imports come from preview2-shim's browser build.
import * as cli from "@bytecodealliance/preview2-shim/cli";
import * as clocks from "@bytecodealliance/preview2-shim/clocks";
import * as io from "@bytecodealliance/preview2-shim/io";
import * as random from "@bytecodealliance/preview2-shim/random";

import { wrap } from "../node/wrap.js";
import { instantiate } from "./gen/signer.js";
import core from "./gen/signer.core.wasm";
import core2 from "./gen/signer.core2.wasm";
import core3 from "./gen/signer.core3.wasm";

const modules = { "signer.core.wasm": core, "signer.core2.wasm": core2, "signer.core3.wasm": core3 };
const imports = {
  "wasi:cli/environment": cli.environment,
  "wasi:cli/exit": cli.exit,
  "wasi:cli/stderr": cli.stderr,
  "wasi:cli/stdin": cli.stdin,
  "wasi:cli/stdout": cli.stdout,
  "wasi:cli/terminal-input": cli.terminalInput,
  "wasi:cli/terminal-output": cli.terminalOutput,
  "wasi:cli/terminal-stderr": cli.terminalStderr,
  "wasi:cli/terminal-stdin": cli.terminalStdin,
  "wasi:cli/terminal-stdout": cli.terminalStdout,
  "wasi:clocks/monotonic-clock": clocks.monotonicClock,
  "wasi:clocks/wall-clock": clocks.wallClock,
  "wasi:io/error": io.error,
  "wasi:io/poll": io.poll,
  "wasi:io/streams": io.streams,
  "wasi:random/random": random.random,
};

let loaded;

/** wrap.js's exports over the component, instantiated once per isolate. */
export const signer = () =>
  (loaded ??= instantiate((name) => modules[name], imports).then(({ signing }) => wrap(signing)));
