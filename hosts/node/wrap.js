// The plain JS shape of the signer component's `signing` interface, for any
// jco transpile of it: the synchronous one here (hooksign.js) and the
// asynchronously instantiated one that workerd runs (hosts/workerd).

/** A contract error; `code` is one of docs/SPEC.md's kebab-case codes. */
export class HooksignError extends Error {
  constructor(code) {
    super(code);
    this.name = "HooksignError";
    this.code = code;
  }
}

// jco throws a WIT `result`'s error with the variant as `payload`.
function checked(call) {
  try {
    return call();
  } catch (error) {
    if (error && error.payload && typeof error.payload.tag === "string") {
      throw new HooksignError(error.payload.tag);
    }
    throw error;
  }
}

const bigOrUndefined = (value) => (value === undefined || value === null ? undefined : BigInt(value));

const toRecord = ({ key, notBefore, notAfter }) => ({
  key,
  notBefore: bigOrUndefined(notBefore),
  notAfter: bigOrUndefined(notAfter),
});

const fromRecord = ({ key, notBefore, notAfter }) => ({
  key,
  ...(notBefore === undefined ? {} : { notBefore }),
  ...(notAfter === undefined ? {} : { notAfter }),
});

const bytes = (payload) => (typeof payload === "string" ? new TextEncoder().encode(payload) : payload);

/** The wrapper's exports over a component's `signing` interface. */
export function wrap(signing) {
  /** An ordered list of secrets, current first, parsed once inside the component. */
  class Keyring {
    #inner;

    constructor(inner) {
      this.#inner = inner;
    }

    /** Secrets as docs/SPEC.md records: {key, notBefore?, notAfter?} (numbers or bigints),
     * for a scheme: "standard-webhooks" (default), "stripe", "github", "slack" or "shopify". */
    static parse(secrets, scheme) {
      return new Keyring(checked(() => signing.Keyring.parse(secrets.map(toRecord), scheme)));
    }

    sign(id, timestamp, payload) {
      return checked(() => this.#inner.sign(id, BigInt(timestamp), bytes(payload)));
    }

    verify(headers, payload, { now, toleranceSeconds } = {}) {
      const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
      const verified = checked(() =>
        this.#inner.verify(pairs, bytes(payload), bigOrUndefined(now), toleranceSeconds),
      );
      return { secret: verified.secret, id: verified.id, timestamp: verified.timestamp };
    }

    /** `verify` from the values of the headers the scheme reads, looked up by the caller
     * (docs/SPEC.md section 3): {secret, timestamp}; the id is the one passed in. */
    verifyValues({ id, timestamp, signature }, payload, { now, toleranceSeconds } = {}) {
      const verified = checked(() =>
        this.#inner.verifyValues(id ?? undefined, timestamp ?? undefined, signature ?? "", bytes(payload),
          bigOrUndefined(now), toleranceSeconds),
      );
      return { secret: verified.secret, timestamp: verified.timestamp };
    }

    rotate(newSecret, { now, graceSeconds } = {}) {
      return new Keyring(checked(() => this.#inner.rotate(newSecret, bigOrUndefined(now), graceSeconds)));
    }

    active(now) {
      return Array.from(this.#inner.active(bigOrUndefined(now)));
    }

    secrets() {
      return this.#inner.secrets().map(fromRecord);
    }

    /** The Ed25519 keys' public keys (`whpk_`) with their windows. */
    publicKeys() {
      return this.#inner.publicKeys().map(fromRecord);
    }
  }

  /** A new `whsec_` secret of 32 random bytes. */
  const generateSecret = () => signing.generateSecret();

  /** A new key: "hmac-sha256" (`whsec_`) or "ed25519" (`whsk_`). */
  const generateKey = (kind) => signing.generateKey(kind);

  /** The `webhook-signature` value for a message, signed with every usable secret. */
  const sign = (secrets, id, timestamp, payload) => Keyring.parse(secrets).sign(id, timestamp, payload);

  /** Verifies a delivery; returns {secret, id, timestamp} or throws HooksignError. */
  const verify = (secrets, headers, payload, options) => Keyring.parse(secrets).verify(headers, payload, options);

  /** The secret records after rotating to `newSecret`. */
  const rotate = (secrets, newSecret, options) => Keyring.parse(secrets).rotate(newSecret, options).secrets();

  return { Keyring, generateSecret, generateKey, sign, verify, rotate };
}
