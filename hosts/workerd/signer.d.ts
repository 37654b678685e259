/** The signer component's wrapper (hosts/node/hooksign.d.ts), instantiated once per isolate. */
export function signer(): Promise<typeof import("../node/hooksign.js")>;
