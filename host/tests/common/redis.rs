//! A real Redis server (Debian's `redis-server`) of the test's own, on a
//! free loopback port, persisting every write to a temporary directory so
//! that a restart keeps what was written. Optionally on TLS only, with a
//! certificate from a CA of the test's own (made with `openssl`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    password: Option<String>,
    tls: bool,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server; with a password, clients must give it.
    pub fn start(password: Option<&str>) -> RedisServer {
        RedisServer::start_as(password, false)
    }

    /// Starts a server that speaks TLS only (`rediss://`), its certificate
    /// signed by the CA at [`RedisServer::ca_path`].
    pub fn start_tls(password: Option<&str>) -> RedisServer {
        RedisServer::start_as(password, true)
    }

    fn start_as(password: Option<&str>, tls: bool) -> RedisServer {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut server = RedisServer {
            child: None,
            port,
            password: password.map(str::to_string),
            tls,
            dir: tempfile::tempdir().unwrap(),
        };
        if tls {
            super::tls::certificates(server.dir.path(), "IP:127.0.0.1");
        }
        server.run();
        server
    }

    /// Everything the server has persisted (its append-only file).
    pub fn persisted(&self) -> String {
        super::files_text(self.dir.path())
    }

    /// The CA certificate (PEM) a TLS server's certificate chains to.
    pub fn ca_path(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn run(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        if self.tls {
            command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .args([
                    "--tls-cert-file",
                    "server.crt",
                    "--tls-key-file",
                    "server.key",
                ])
                .current_dir(self.dir.path());
        } else {
            command.args(["--port", &port]);
        }
        command
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .spawn()
            .expect("redis-server (Debian's redis-server package) must be installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://[:PASSWORD@]127.0.0.1:PORT` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        match &self.password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
