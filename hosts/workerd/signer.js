// The signer component in workerd: jco's transpile with asynchronous
// instantiation (gen/, `npm run build`) over core modules that workerd
// compiles when it loads the worker (declared as `wasm` modules in
// config.capnp), since it refuses to compile wasm bytes while serving. Its
// two WASI imports come from preview2-shim's browser build.
import * as clocks from "@bytecodealliance/preview2-shim/clocks";
import * as random from "@bytecodealliance/preview2-shim/random";

import { wrap } from "../node/wrap.js";
import { instantiate } from "./gen/signer.js";
import core from "./gen/signer.core.wasm";
import core2 from "./gen/signer.core2.wasm";
import core3 from "./gen/signer.core3.wasm";

const modules = { "signer.core.wasm": core, "signer.core2.wasm": core2, "signer.core3.wasm": core3 };
// The component imports nothing else (it has no standard library).
const imports = {
  "wasi:clocks/wall-clock": clocks.wallClock,
  "wasi:random/random": random.random,
};

let loaded;

/** wrap.js's exports over the component, instantiated once per isolate. */
export const signer = () =>
  (loaded ??= instantiate((name) => modules[name], imports).then(({ signing }) => wrap(signing)));
