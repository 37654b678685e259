//! The `hooksign` command line, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn hooksign(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hooksign"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails early exits without reading its input: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn sign_then_verify_round_trip() {
    let secret = stdout(&hooksign(&["generate-secret"], b""));
    let secret = secret.trim();
    assert!(secret.starts_with("whsec_"), "{secret}");

    let signed = hooksign(
        &[
            "sign",
            "--secret",
            secret,
            "--id",
            "msg_1",
            "--timestamp",
            "1700000000",
        ],
        b"{\"a\":1}",
    );
    assert!(signed.status.success(), "{}", stderr(&signed));
    let lines: Vec<String> = stdout(&signed).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "webhook-id: msg_1");
    assert_eq!(lines[1], "webhook-timestamp: 1700000000");
    assert!(lines[2].starts_with("webhook-signature: v1,"));

    let mut args = vec!["verify", "--secret", secret, "--now", "1700000060"];
    for line in &lines {
        args.extend(["-H", line.as_str()]);
    }
    let verified = hooksign(&args, b"{\"a\":1}");
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert_eq!(stdout(&verified), "0\n");

    let tampered = hooksign(&args, b"{\"a\":2}");
    assert_eq!(tampered.status.code(), Some(1));
    assert!(stderr(&tampered).starts_with("hooksign: no-matching-signature"));
    assert!(!stderr(&tampered).contains(secret));

    args[4] = "1700000301";
    let stale = hooksign(&args, b"{\"a\":1}");
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).starts_with("hooksign: timestamp-too-old"));
}

#[test]
fn rotate_prints_the_new_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    std::fs::write(
        &keyring,
        r#"[{"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]"#,
    )
    .unwrap();
    let new = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let output = hooksign(
        &[
            "rotate",
            "--keyring",
            keyring.to_str().unwrap(),
            "--now",
            "1000",
            "--grace",
            "60",
            "--new-secret",
            new,
        ],
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let records: Vec<hooksign::SecretRecord> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].key, new);
    assert_eq!(records[1].key, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    assert_eq!(records[1].not_after, Some(1060));

    // The rotated keyring verifies with the previous secret's signature.
    std::fs::write(&keyring, stdout(&output)).unwrap();
    let signed = hooksign(
        &[
            "sign",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--id",
            "m",
            "--timestamp",
            "1010",
        ],
        b"body",
    );
    let mut args = vec![
        "verify",
        "--keyring",
        keyring.to_str().unwrap(),
        "--now",
        "1010",
    ];
    let lines: Vec<String> = stdout(&signed).lines().map(String::from).collect();
    for line in &lines {
        args.extend(["-H", line.as_str()]);
    }
    let verified = hooksign(&args, b"body");
    assert_eq!(stdout(&verified), "1\n", "{}", stderr(&verified));
}

#[test]
fn ed25519_keyrings_and_provider_schemes_rotate_and_configure_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    let pair = stdout(&hooksign(&["generate-secret", "--kind", "ed25519"], b""));
    let (secret, public) = pair.trim().split_once('\n').unwrap();
    std::fs::write(&keyring, format!(r#"[{{"key": "{secret}"}}]"#)).unwrap();
    let path = keyring.to_str().unwrap();
    let rotated = hooksign(
        &[
            "rotate",
            "--keyring",
            path,
            "--kind",
            "ed25519",
            "--now",
            "1000",
        ],
        b"",
    );
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let records: Vec<hooksign::SecretRecord> = serde_json::from_str(&stdout(&rotated)).unwrap();
    assert!(records[0].key.starts_with("whsk_") && records[0].key != secret);
    assert_eq!(records[1].key, secret);

    // A provider issues its own secrets: rotating needs the new one.
    std::fs::write(&keyring, r#"[{"key": "whsec_stripe"}]"#).unwrap();
    let refused = hooksign(&["rotate", "--keyring", path, "--scheme", "stripe"], b"");
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("--new-secret"));
    let rotated = hooksign(
        &[
            "rotate",
            "--keyring",
            path,
            "--scheme",
            "stripe",
            "--new-secret",
            "whsec_next",
        ],
        b"",
    );
    assert!(
        stdout(&rotated).contains(r#""key": "whsec_next""#),
        "{}",
        stderr(&rotated)
    );
    let unknown = hooksign(&["verify", "--scheme", "paypal", "--secret", "x"], b"");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("stripe, github, slack, shopify"));

    // `inbound add` records the scheme; a public key is a Standard Webhooks source's key.
    let added = hooksign(
        &[
            "inbound",
            "add",
            "--source",
            "repo",
            "--scheme",
            "github",
            "--secret",
            "s3cret",
            "--forward",
            "http://127.0.0.1:1/hook",
        ],
        b"",
    );
    let sources: serde_json::Value = serde_json::from_str(&stdout(&added)).unwrap();
    assert_eq!(sources["repo"]["scheme"], "github");
    let added = hooksign(
        &[
            "inbound",
            "add",
            "--source",
            "std",
            "--secret",
            public,
            "--forward",
            "http://127.0.0.1:1/hook",
            "--org",
            "acme",
        ],
        b"",
    );
    let sources: serde_json::Value = serde_json::from_str(&stdout(&added)).unwrap();
    assert!(sources["std"].get("scheme").is_none(), "{sources}");
    assert_eq!(sources["std"]["secrets"][0]["key"], public);
    assert_eq!(sources["std"]["org"], "acme");
    assert!(sources["repo"].get("org").is_none(), "{sources}");
}

#[test]
fn vectors_command_on_both_engines() {
    let files: Vec<String> = common::vector_files()
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    let component = common::component_path().display().to_string();
    for engine in [
        vec!["--engine", "native"],
        vec!["--engine", "component", "--component", &component],
    ] {
        let mut args = vec!["vectors"];
        args.extend(files.iter().map(String::as_str));
        args.extend(engine);
        let output = hooksign(&args, b"");
        assert!(
            output.status.success(),
            "{}{}",
            stdout(&output),
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(text.ends_with(" passed, 0 failed\n"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}

#[test]
fn a_broken_vector_makes_the_vectors_command_fail() {
    let dir = tempfile::tempdir().unwrap();
    let starter = common::vector_files()
        .into_iter()
        .find(|path| path.ends_with("starter.json"))
        .unwrap();
    let broken = std::fs::read_to_string(starter)
        .unwrap()
        // The first occurrence is the expectation of the first (sign) case.
        .replacen("OLJ1OE=", "OLJ1OF=", 1);
    let path = dir.path().join("broken.json");
    std::fs::write(&path, broken).unwrap();
    let component = common::component_path().display().to_string();
    for engine in ["native", "component"] {
        let output = hooksign(
            &[
                "vectors",
                path.to_str().unwrap(),
                "--engine",
                engine,
                "--component",
                &component,
            ],
            b"",
        );
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let text = stdout(&output);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("standard-webhooks-spec-example: expected {\"signature\":\"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=\"}, got"), "{text}");
        assert_eq!(lines[1], "10 passed, 1 failed");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["sign", "--secret", "whsec_AAAA", "--id", "m"],
            1,
            "hooksign: invalid-secret",
        ),
        (
            vec!["sign", "--secret", key, "--id", "a.b"],
            1,
            "hooksign: invalid-input",
        ),
        (
            vec!["verify", "--secret", key, "-H", "no colon here"],
            2,
            "a header is `name: value`",
        ),
        (
            vec!["verify", "--secret", key, "-H", "webhook-id: x"],
            1,
            "hooksign: missing-header",
        ),
        (
            vec![
                "verify",
                "--secret",
                key,
                "--tolerance",
                "86401",
                "-H",
                "a: b",
            ],
            1,
            "hooksign: invalid-input",
        ),
        (
            vec!["verify", "--secret", key, "--tolerance", "-1"],
            2,
            "error:",
        ),
        (vec!["sign", "--id", "m"], 2, "--secret"),
        (
            vec!["sign", "--secret", key, "--id", "m", "/nonexistent/body"],
            2,
            "/nonexistent/body",
        ),
        (
            vec!["rotate", "--keyring", "/nonexistent/keyring.json"],
            2,
            "/nonexistent/keyring.json",
        ),
        (
            vec!["vectors", "/nonexistent/v.json"],
            2,
            "/nonexistent/v.json",
        ),
        (
            vec![
                "vectors",
                "x.json",
                "--engine",
                "component",
                "--component",
                "/nonexistent.wasm",
            ],
            2,
            "cannot read component",
        ),
        (vec!["frobnicate"], 2, "unrecognized subcommand"),
    ];
    for (args, code, message) in cases {
        let output = hooksign(&args, b"payload");
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{args:?}");
    }
}

#[test]
fn a_malformed_keyring_file_does_not_echo_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring.json");
    std::fs::write(
        &keyring,
        r#"[{"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "extra": 1}]"#,
    )
    .unwrap();
    let output = hooksign(&["rotate", "--keyring", keyring.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a JSON list of secret records"));
    assert!(!stderr(&output).contains("MfKQ9r8"));
}

#[test]
fn every_command_has_help() {
    for command in ["generate-secret", "sign", "verify", "rotate", "vectors"] {
        let output = hooksign(&[command, "--help"], b"");
        assert!(output.status.success(), "{command}");
        assert!(stdout(&output).contains("Usage: hooksign"), "{command}");
    }
}

#[test]
fn sealing_key_new_prints_an_entry_the_service_accepts() {
    let first = hooksign(&["sealing-key", "new", "--id", "k2"], b"");
    assert!(first.status.success());
    let entry = String::from_utf8(first.stdout).unwrap().trim().to_string();
    let (id, key) = entry.split_once(':').unwrap();
    assert_eq!(id, "k2");
    // 32 bytes: 44 characters of padded base64.
    assert_eq!((key.len(), key.ends_with('=')), (44, true), "{entry}");
    let second = hooksign(&["sealing-key", "new", "--id", "k2"], b"");
    assert_ne!(String::from_utf8(second.stdout).unwrap().trim(), entry);
    let config = hooksign_edge::Config::from_variables(|name| {
        (name == "sealing_keys").then(|| entry.clone())
    });
    assert!(config.is_ok());
    let refused = hooksign(&["sealing-key", "new", "--id", "not an id"], b"");
    assert!(!refused.status.success());
}

#[test]
fn serve_refuses_a_dispatch_token_that_guessing_could_reach() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hooksign"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .arg("--component")
        .arg(common::edge_component_path())
        .args(["--variable", "dispatch_token=tok_short_guessable"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("at least 32 characters"), "{message}");
    assert!(!message.contains("tok_short_guessable"), "{message}");
}
