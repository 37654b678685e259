use hooksign::{
    DEFAULT_GRACE_SECONDS, DEFAULT_TOLERANCE_SECONDS, Error, HeaderValues, Keyring, Secret,
};

use crate::{ActiveInput, Backend, Outcome, RotateInput, SignInput, VerifyInput};

/// The native library as a vector backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

fn outcome(result: Result<Outcome, Error>) -> Result<Outcome, String> {
    Ok(result.unwrap_or_else(Outcome::Error))
}

impl Backend for Native {
    fn sign(&mut self, input: &SignInput) -> Result<Outcome, String> {
        outcome(
            Keyring::from_records_for(input.scheme, &input.secrets).and_then(|keyring| {
                keyring
                    .sign(&input.id, input.timestamp, &input.payload)
                    .map(Outcome::Signature)
            }),
        )
    }

    fn verify(&mut self, input: &VerifyInput) -> Result<Outcome, String> {
        let tolerance = input.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS);
        outcome(
            Keyring::from_records_for(input.scheme, &input.secrets).and_then(|keyring| {
                keyring
                    .verify(&input.headers, &input.payload, input.now, tolerance)
                    .map(|verified| Outcome::Verified {
                        secret: verified.secret as u64,
                    })
            }),
        )
    }

    fn verify_values(
        &mut self,
        input: &VerifyInput,
        values: HeaderValues<'_>,
    ) -> Result<Outcome, String> {
        let tolerance = input.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS);
        outcome(
            Keyring::from_records_for(input.scheme, &input.secrets).and_then(|keyring| {
                keyring
                    .verify_values(values, &input.payload, input.now, tolerance)
                    .map(|verified| Outcome::Verified {
                        secret: verified.secret as u64,
                    })
            }),
        )
    }

    fn rotate(&mut self, input: &RotateInput) -> Result<Outcome, String> {
        let grace = input.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        outcome(
            Keyring::from_records_for(input.scheme, &input.secrets).and_then(|keyring| {
                let new_secret = Secret::parse_for(input.scheme, &input.new_secret)?;
                let rotated = keyring.rotate(new_secret, input.now, grace)?;
                Ok(Outcome::Secrets(rotated.to_records()))
            }),
        )
    }

    fn active(&mut self, input: &ActiveInput) -> Result<Outcome, String> {
        outcome(
            Keyring::from_records_for(input.scheme, &input.secrets).map(|keyring| {
                Outcome::Active(
                    keyring
                        .active(input.now)
                        .into_iter()
                        .map(|i| i as u64)
                        .collect(),
                )
            }),
        )
    }
}
