// The hooksign signer component in Node: jco transpiles hooksign_signer.wasm
// into gen/ (`npm run build`); wrap.js gives it a plain JS shape.
import { signing } from "./gen/signer.js";
import { wrap } from "./wrap.js";

export { HooksignError } from "./wrap.js";
export const { Keyring, generateSecret, generateKey, sign, verify, rotate } = wrap(signing);
