/** A secret record of docs/SPEC.md: the key and its optional validity window (Unix seconds). */
export interface SecretRecord {
  key: string;
  notBefore?: number | bigint;
  notAfter?: number | bigint;
}

export type ErrorCode =
  | "missing-header" | "invalid-header" | "timestamp-too-old" | "timestamp-too-new"
  | "no-usable-secret" | "no-matching-signature" | "invalid-secret" | "invalid-input"
  | "too-many-secrets";

export class HooksignError extends Error {
  readonly code: ErrorCode;
}

export interface Verified {
  secret: number;
  id: string;
  timestamp: bigint;
}

/** The values of the headers a scheme reads (docs/SPEC.md section 3). */
export interface HeaderValues {
  id?: string;
  timestamp?: string;
  signature: string;
}

export type Headers = Array<[string, string]> | Record<string, string>;
export type Payload = Uint8Array | string;

export type Scheme = "standard-webhooks" | "stripe" | "github" | "slack" | "shopify";
export type KeyKind = "hmac-sha256" | "ed25519";

export class Keyring {
  static parse(secrets: SecretRecord[], scheme?: Scheme): Keyring;
  sign(id: string, timestamp: number | bigint, payload: Payload): string;
  verify(headers: Headers, payload: Payload, options?: { now?: number | bigint; toleranceSeconds?: number }): Verified;
  verifyValues(values: HeaderValues, payload: Payload, options?: { now?: number | bigint; toleranceSeconds?: number }): { secret: number; timestamp: bigint };
  rotate(newSecret: string, options?: { now?: number | bigint; graceSeconds?: number }): Keyring;
  active(now?: number | bigint): number[];
  secrets(): Array<{ key: string; notBefore?: bigint; notAfter?: bigint }>;
  publicKeys(): Array<{ key: string; notBefore?: bigint; notAfter?: bigint }>;
}

export function generateSecret(): string;
export function generateKey(kind: KeyKind): string;
export function sign(secrets: SecretRecord[], id: string, timestamp: number | bigint, payload: Payload): string;
export function verify(secrets: SecretRecord[], headers: Headers, payload: Payload, options?: { now?: number | bigint; toleranceSeconds?: number }): Verified;
export function rotate(secrets: SecretRecord[], newSecret: string, options?: { now?: number | bigint; graceSeconds?: number }): Array<{ key: string; notBefore?: bigint; notAfter?: bigint }>;
