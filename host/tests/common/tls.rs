//! A certificate authority of the test's own, made with `openssl`
//! (Debian's package), and a server certificate it signed.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `ca.crt`, and `server.crt` with `server.key` for `subject_alt_name`
/// (`IP:127.0.0.1`, `DNS:hooks.example`), into `dir`.
pub fn certificates(dir: &Path, subject_alt_name: &str) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (Debian's openssl package) must be installed");
        assert!(status.success(), "openssl {args:?}");
    };
    std::fs::write(
        dir.join("san"),
        format!("subjectAltName={subject_alt_name}\n"),
    )
    .unwrap();
    let days = ["-days", "2"];
    openssl(
        &[
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            ][..],
            &["-out", "ca.crt", "-subj", "/CN=hooksign test CA"],
            &days,
        ]
        .concat(),
    );
    openssl(
        &[
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
            ][..],
            &["-out", "server.csr", "-subj", "/CN=hooksign test server"],
        ]
        .concat(),
    );
    openssl(
        &[
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
            ][..],
            &["-CAcreateserial", "-out", "server.crt", "-extfile", "san"],
            &days,
        ]
        .concat(),
    );
}
