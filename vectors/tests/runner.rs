//! The runner itself: it must reject malformed files and catch wrong expectations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hooksign::HeaderValues;
use hooksign_vectors::{
    ActiveInput, Backend, Native, Outcome, RotateInput, SignInput, VerifyInput, parse, run,
};

const SIGN_CASE: &str = r#"{
    "name": "spec-example", "op": "sign",
    "secrets": [{"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}],
    "id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "timestamp": 1614265330,
    "payload": "{\"test\": 2432232314}",
    "expect": {"signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
}"#;

fn file_with(cases: &[&str]) -> String {
    format!(
        r#"{{"format": "hooksign-vectors/1", "description": "test", "cases": [{}]}}"#,
        cases.join(",")
    )
}

#[test]
fn a_correct_case_passes() {
    let file = parse(&file_with(&[SIGN_CASE])).unwrap();
    let report = run(&file, &mut Native);
    assert_eq!((report.passed, report.failures.len()), (1, 0));
    assert_eq!(report.summary(), "1 passed, 0 failed");
}

#[test]
fn a_wrong_expected_signature_fails_and_names_the_case() {
    let broken = SIGN_CASE.replace("OLJ1OE=", "OLJ1OF=");
    let file = parse(&file_with(&[
        SIGN_CASE,
        &broken.replace("spec-example", "broken"),
    ]))
    .unwrap();
    let report = run(&file, &mut Native);
    assert_eq!(report.summary(), "1 passed, 1 failed");
    let failure = &report.failures[0];
    assert_eq!(failure.name, "broken");
    assert!(failure.expected.contains("OLJ1OF="), "{failure}");
    assert!(failure.got.contains("OLJ1OE="), "{failure}");
}

#[test]
fn a_wrong_expected_error_fails() {
    let case = SIGN_CASE.replace(
        r#""expect": {"signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}"#,
        r#""expect": {"error": "invalid-input"}"#,
    );
    let report = run(&parse(&file_with(&[&case])).unwrap(), &mut Native);
    assert_eq!(report.failures.len(), 1);
}

fn parse_error(text: &str) -> String {
    parse(text).expect_err("must be rejected").to_string()
}

#[test]
fn malformed_files_are_rejected_with_the_reason() {
    let unknown_op = SIGN_CASE.replace(r#""op": "sign""#, r#""op": "sing""#);
    assert!(parse_error(&file_with(&[&unknown_op])).contains("unknown op \"sing\""));

    let unknown_field = SIGN_CASE.replace(r#""id":"#, r#""tolerance": 5, "id":"#);
    assert!(parse_error(&file_with(&[&unknown_field])).contains("unknown field `tolerance`"));

    let both_payloads = SIGN_CASE.replace(r#""id":"#, r#""payloadBase64": "", "id":"#);
    assert!(parse_error(&file_with(&[&both_payloads])).contains("exactly one of"));

    let unknown_code = SIGN_CASE.replace(
        r#"{"signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}"#,
        r#"{"error": "bad-signature"}"#,
    );
    assert!(parse_error(&file_with(&[&unknown_code])).contains("unknown error code"));

    let wrong_shape = SIGN_CASE.replace(
        r#"{"signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}"#,
        r#"{"ok": {"secret": 0}}"#,
    );
    assert!(parse_error(&file_with(&[&wrong_shape])).contains("does not fit this op"));

    assert!(parse_error(&file_with(&[SIGN_CASE, SIGN_CASE])).contains("used twice"));
    assert!(parse_error(&file_with(&[]).replace("/1", "/2")).contains("format"));
    assert!(parse_error("{").contains("EOF"));
}

#[test]
fn outcomes_print_in_the_expect_form() {
    assert_eq!(
        Outcome::Verified { secret: 1 }.to_string(),
        r#"{"ok":{"secret":1}}"#
    );
    assert_eq!(
        Outcome::Error(hooksign::Error::TooManySecrets).to_string(),
        r#"{"error":"too-many-secrets"}"#
    );
}

const VERIFY_CASE: &str = r#"{
    "name": "spec-example-verifies", "op": "verify",
    "secrets": [{"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}],
    "headers": [
        ["webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"],
        ["webhook-timestamp", "1614265330"],
        ["webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="]
    ],
    "payload": "{\"test\": 2432232314}", "now": 1614265330,
    "expect": {"ok": {"secret": 0}}
}"#;

/// The native library, except that `verify-values` answers another secret.
struct WrongValues;

impl Backend for WrongValues {
    fn sign(&mut self, input: &SignInput) -> Result<Outcome, String> {
        Native.sign(input)
    }
    fn verify(&mut self, input: &VerifyInput) -> Result<Outcome, String> {
        Native.verify(input)
    }
    fn verify_values(&mut self, _: &VerifyInput, _: HeaderValues<'_>) -> Result<Outcome, String> {
        Ok(Outcome::Verified { secret: 1 })
    }
    fn rotate(&mut self, input: &RotateInput) -> Result<Outcome, String> {
        Native.rotate(input)
    }
    fn active(&mut self, input: &ActiveInput) -> Result<Outcome, String> {
        Native.active(input)
    }
}

#[test]
fn a_verify_case_runs_through_verify_values_too() {
    let file = parse(&file_with(&[VERIFY_CASE])).unwrap();
    assert_eq!(run(&file, &mut Native).summary(), "1 passed, 0 failed");
    let report = run(&file, &mut WrongValues);
    assert_eq!(report.summary(), "0 passed, 1 failed");
    assert!(
        report.failures[0]
            .got
            .contains("verify-values gave {\"ok\":{\"secret\":1}}"),
        "{}",
        report.failures[0]
    );
}
