//! The signer component as a backend of the vector runner
//! (`hooksign-vectors`): every vector file runs against it as against the
//! native library.

use hooksign_vectors::{ActiveInput, Backend, Outcome, RotateInput, SignInput, VerifyInput};

use crate::{HostError, KeyringHandle, Session, SignerComponent};

/// The signer component as a vector backend: each case runs in a fresh
/// instance.
pub struct ComponentBackend<'a> {
    component: &'a SignerComponent,
}

impl<'a> ComponentBackend<'a> {
    /// Runs cases against this component.
    pub fn new(component: &'a SignerComponent) -> ComponentBackend<'a> {
        ComponentBackend { component }
    }

    /// Runs `op` with the case's keyring in a fresh session; contract errors
    /// become [`Outcome::Error`], anything else a backend failure.
    fn with_keyring(
        &self,
        scheme: hooksign::Scheme,
        secrets: &[hooksign::SecretRecord],
        op: impl FnOnce(&mut Session, KeyringHandle) -> Result<Outcome, HostError>,
    ) -> Result<Outcome, String> {
        let result = self.component.session().and_then(|mut session| {
            let keyring = session.parse_keyring_for(scheme, secrets)?;
            op(&mut session, keyring)
        });
        match result {
            Ok(outcome) => Ok(outcome),
            Err(HostError::Signing(error)) => Ok(Outcome::Error(error)),
            Err(failure) => Err(failure.to_string()),
        }
    }
}

impl Backend for ComponentBackend<'_> {
    fn sign(&mut self, input: &SignInput) -> Result<Outcome, String> {
        self.with_keyring(input.scheme, &input.secrets, |session, keyring| {
            let signature = session.sign(keyring, &input.id, input.timestamp, &input.payload)?;
            Ok(Outcome::Signature(signature))
        })
    }

    fn verify(&mut self, input: &VerifyInput) -> Result<Outcome, String> {
        self.with_keyring(input.scheme, &input.secrets, |session, keyring| {
            let verified = session.verify(
                keyring,
                &input.headers,
                &input.payload,
                Some(input.now),
                input.tolerance_seconds,
            )?;
            Ok(Outcome::Verified {
                secret: verified.secret as u64,
            })
        })
    }

    fn verify_values(
        &mut self,
        input: &VerifyInput,
        values: hooksign::HeaderValues<'_>,
    ) -> Result<Outcome, String> {
        self.with_keyring(input.scheme, &input.secrets, |session, keyring| {
            let verified = session.verify_values(
                keyring,
                values,
                &input.payload,
                Some(input.now),
                input.tolerance_seconds,
            )?;
            Ok(Outcome::Verified {
                secret: verified.secret as u64,
            })
        })
    }

    fn rotate(&mut self, input: &RotateInput) -> Result<Outcome, String> {
        self.with_keyring(input.scheme, &input.secrets, |session, keyring| {
            let rotated = session.rotate(
                keyring,
                &input.new_secret,
                Some(input.now),
                input.grace_seconds,
            )?;
            Ok(Outcome::Secrets(session.secrets(rotated)?))
        })
    }

    fn active(&mut self, input: &ActiveInput) -> Result<Outcome, String> {
        self.with_keyring(input.scheme, &input.secrets, |session, keyring| {
            let active = session.active(keyring, Some(input.now))?;
            Ok(Outcome::Active(active.into_iter().map(u64::from).collect()))
        })
    }
}
