// A receiver's gateway on Cloudflare Workers: verifies an incoming Standard
// Webhooks delivery with the keyring in its bindings and forwards it to the
// origin, or refuses it with the problem document hooksign's own gateway
// answers (docs/API.md, "Receiver gateway").
//
// Bindings: HOOKSIGN_SECRETS (secret; JSON secret records, current first, as
// in docs/SPEC.md), ORIGIN_URL, TOLERANCE_SECONDS (optional, default 300),
// HOOKSIGN_SCHEME (optional: standard-webhooks, stripe, github, slack or
// shopify; docs/SPEC.md section 7).
import { HooksignError } from "../node/wrap.js";
import { signer } from "./signer.js";

const MAX_BODY_BYTES = 1024 * 1024;
const ORIGIN_TIMEOUT_MS = 10_000;

// docs/API.md's answers for each refusal: status, code, title.
const REFUSALS = {
  "missing-header": [400, "Missing header"],
  "invalid-header": [400, "Invalid header"],
  "timestamp-too-old": [401, "Timestamp too old"],
  "timestamp-too-new": [401, "Timestamp too new"],
  "no-usable-secret": [401, "No usable secret"],
  "no-matching-signature": [401, "No matching signature"],
};

function problem(status, code, title, detail, { cause, allow } = {}) {
  const document = {
    type: `https://thesignup.app/problems/${code.replaceAll("_", "-")}`,
    title,
    status,
    detail,
    code,
    errors: [],
    ...(cause ? { cause } : {}),
  };
  const headers = { "content-type": "application/problem+json", ...(allow ? { allow } : {}) };
  return new Response(JSON.stringify(document), { status, headers });
}

// A provider's headers that name the event, passed on as hooksign's own
// gateway does (edge/src/http/gateway.rs).
const PASSED_ON = {
  github: ["x-github-event", "x-github-hook-id"],
  shopify: ["x-shopify-topic", "x-shopify-shop-domain"],
};

// The keyring parsed once per isolate for the bindings' text and scheme.
let parsed = { text: undefined, scheme: undefined, keyring: undefined };

function keyring({ Keyring }, text, scheme) {
  if (parsed.text !== text || parsed.scheme !== scheme) {
    parsed = { text, scheme, keyring: Keyring.parse(JSON.parse(text), scheme) };
  }
  return parsed.keyring;
}

export default {
  async fetch(request, env) {
    if (request.method !== "POST") {
      return problem(405, "method_not_allowed", "Method not allowed", "Deliveries are POSTed.", { allow: "POST" });
    }
    if (Number(request.headers.get("content-length")) > MAX_BODY_BYTES) {
      return problem(413, "payload_too_large", "Payload too large", `The body is over ${MAX_BODY_BYTES} bytes.`);
    }
    const body = new Uint8Array(await request.arrayBuffer());
    if (body.length > MAX_BODY_BYTES) {
      return problem(413, "payload_too_large", "Payload too large", `The body is over ${MAX_BODY_BYTES} bytes.`);
    }
    const hooksign = await signer();
    const scheme = env.HOOKSIGN_SCHEME || undefined;
    let verifier;
    try {
      verifier = keyring(hooksign, env.HOOKSIGN_SECRETS ?? "", scheme);
    } catch {
      // Never the error's text: it could quote the secrets.
      return problem(500, "invalid_configuration", "Invalid configuration",
        "HOOKSIGN_SECRETS is not a list of valid secret records, or HOOKSIGN_SCHEME is not a scheme.");
    }
    const tolerance = env.TOLERANCE_SECONDS ? Number(env.TOLERANCE_SECONDS) : undefined;
    if (tolerance !== undefined && !(Number.isInteger(tolerance) && tolerance >= 0 && tolerance < 2 ** 32)) {
      return problem(500, "invalid_configuration", "Invalid configuration", "TOLERANCE_SECONDS is not a whole number of seconds.");
    }
    let verified;
    try {
      verified = verifier.verify([...request.headers], body, { toleranceSeconds: tolerance });
    } catch (error) {
      if (!(error instanceof HooksignError) || !REFUSALS[error.code]) throw error;
      const [status, title] = REFUSALS[error.code];
      return problem(status, error.code.replaceAll("-", "_"), title, "The delivery failed verification.", {
        cause: { code: error.code, detail: title },
      });
    }
    const headers = {
      "webhook-id": verified.id,
      "webhook-timestamp": String(verified.timestamp),
      "hooksign-verified-secret": String(verified.secret),
    };
    for (const name of ["content-type", ...(PASSED_ON[scheme] ?? [])]) {
      const value = request.headers.get(name);
      if (value) headers[name] = value;
    }
    let answer;
    try {
      answer = await fetch(env.ORIGIN_URL, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(ORIGIN_TIMEOUT_MS),
      });
    } catch (error) {
      return error?.name === "TimeoutError"
        ? problem(504, "origin_timeout", "Origin timeout", "The origin did not answer in time.")
        : problem(502, "origin_unreachable", "Origin unreachable", "The origin could not be reached.");
    }
    const relayed = {};
    const answerType = answer.headers.get("content-type");
    if (answerType) relayed["content-type"] = answerType;
    return new Response(answer.body, { status: answer.status, headers: relayed });
  },
};
