use core::fmt;

/// Why signing, verification or rotation failed.
///
/// One variant per error code of the hooksign contract (docs/SPEC.md
/// section 5). Messages name the rule that failed and never include key
/// material or header values.
///
/// Exhaustive on purpose: the WIT variant, the HTTP problems and the
/// vector runner each map every code, so a new code must fail to compile
/// in each of them until it is mapped (it is a change of the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// One of the id, timestamp and signature headers is absent or empty.
    MissingHeader,
    /// A webhook header appears more than once, the timestamp is not a
    /// 1-to-19-digit number that fits in an `i64`, or the signature header is
    /// over 8192 bytes or 32 entries.
    InvalidHeader,
    /// The timestamp is further in the past than the tolerance allows.
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    TimestampTooNew,
    /// No secret of the keyring is inside its validity window at that time.
    NoUsableSecret,
    /// No `v1` signature in the header matches any usable secret.
    NoMatchingSignature,
    /// A secret is not base64 (with optional `whsec_` prefix) of 24 to 64 bytes.
    InvalidSecret,
    /// An argument is out of range: message id, timestamp, tolerance or grace.
    InvalidInput,
    /// A rotation would keep more than ten previous secrets.
    TooManySecrets,
}

impl Error {
    /// Every error, in the order of docs/SPEC.md section 5.
    pub const ALL: [Error; 9] = [
        Error::MissingHeader,
        Error::InvalidHeader,
        Error::TimestampTooOld,
        Error::TimestampTooNew,
        Error::NoUsableSecret,
        Error::NoMatchingSignature,
        Error::InvalidSecret,
        Error::InvalidInput,
        Error::TooManySecrets,
    ];

    /// The contract's kebab-case code, as used in WIT and in vector files.
    pub const fn code(self) -> &'static str {
        match self {
            Error::MissingHeader => "missing-header",
            Error::InvalidHeader => "invalid-header",
            Error::TimestampTooOld => "timestamp-too-old",
            Error::TimestampTooNew => "timestamp-too-new",
            Error::NoUsableSecret => "no-usable-secret",
            Error::NoMatchingSignature => "no-matching-signature",
            Error::InvalidSecret => "invalid-secret",
            Error::InvalidInput => "invalid-input",
            Error::TooManySecrets => "too-many-secrets",
        }
    }

    /// The error with this kebab-case code, if there is one.
    pub fn from_code(code: &str) -> Option<Error> {
        Error::ALL.into_iter().find(|error| error.code() == code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::MissingHeader => {
                "a webhook id, timestamp or signature header is missing or empty"
            }
            Error::InvalidHeader => "a webhook header is repeated or malformed",
            Error::TimestampTooOld => "the webhook timestamp is too far in the past",
            Error::TimestampTooNew => "the webhook timestamp is too far in the future",
            Error::NoUsableSecret => "no secret of the keyring is valid at this time",
            Error::NoMatchingSignature => "no signature matches a valid secret",
            Error::InvalidSecret => "a secret is not base64 of 24 to 64 bytes",
            Error::InvalidInput => "an argument is out of range",
            Error::TooManySecrets => "the rotation would keep more than ten previous secrets",
        })
    }
}

impl core::error::Error for Error {}
