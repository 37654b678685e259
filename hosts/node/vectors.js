// Runs docs/SPEC.md section 6 vector cases against a wrapped signer (wrap.js),
// with no file system, so that both Node (test/vectors.test.js) and workerd
// (hosts/workerd) run the same files the same way.
import { HooksignError } from "./wrap.js";

const KNOWN = new Set(["name", "op", "secrets", "id", "timestamp", "payload", "payloadBase64", "headers",
  "now", "toleranceSeconds", "graceSeconds", "newSecret", "expect", "scheme"]);

/** A vector file's JSON. JSON.parse rounds integers past 2^53 and the vectors
 * hold i64 extremes, so long integer literals are read as strings, then BigInts. */
export const parseVectors = (text) => JSON.parse(text.replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));

const big = (value) => (value === undefined ? undefined : BigInt(value));
/** A case's secrets as the wrapper takes them. */
export const secrets = (records) => records.map(({ key, notBefore, notAfter }) => ({ key, notBefore: big(notBefore), notAfter: big(notAfter) }));
const fromBase64 = (text) => Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
/** A case's payload bytes. */
export const payload = (c) => (c.payloadBase64 !== undefined ? fromBase64(c.payloadBase64) : new TextEncoder().encode(c.payload));

/** A value with every number and bigint as a string: BigInt and number never compare equal. */
export const normalise = (value) => JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : typeof v === "number" ? String(v) : v)));

function run({ Keyring }, c) {
  const keyring = Keyring.parse(secrets(c.secrets), c.scheme);
  switch (c.op) {
    case "sign": return { signature: keyring.sign(c.id, BigInt(c.timestamp), payload(c)) };
    case "verify": return { ok: { secret: keyring.verify(c.headers, payload(c), { now: BigInt(c.now), toleranceSeconds: c.toleranceSeconds }).secret } };
    case "rotate": return { secrets: keyring.rotate(c.newSecret, { now: BigInt(c.now), graceSeconds: c.graceSeconds }).secrets() };
    case "active": return { active: keyring.active(BigInt(c.now)) };
    default: throw new Error(`unknown op ${c.op}`);
  }
}

/** A case's outcome as its `expect` would read, normalised; throws on an
 * unknown field or op, or on an error that is not a contract error. */
export function outcome(signer, c) {
  for (const field of Object.keys(c)) {
    if (!KNOWN.has(field)) throw new Error(`unknown field ${field}`);
  }
  try {
    return normalise(run(signer, c));
  } catch (error) {
    if (!(error instanceof HooksignError)) throw error;
    return { error: error.code };
  }
}
