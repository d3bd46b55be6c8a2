//! Test harness: a `moto_server` on a free 127.0.0.1 port for each test, stopped on drop.
//!
//! moto is found at `$SLUICE_MOTO_SERVER`, then in the venv `tests/aws/install.sh` creates
//! (`~/.cache/sluice-moto`), then on `PATH`. When it is missing the test prints why and returns
//! early, except under CI (`CI` set), where a missing moto is a failure: CI installs it and
//! must never pass by skipping.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// A running moto server; killed (and reaped) when dropped, also when a test panics.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    log: PathBuf,
}

fn find_moto_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let venv = PathBuf::from(home).join(".cache/sluice-moto/bin/moto_server");
        if venv.is_file() {
            return Some(venv);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// moto's server with werkzeug's `threaded=False`: requests are handled one at a time.
const SERIAL_SERVER: &str = "\
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=False)
";

/// The interpreter `moto_server` runs under, from its shebang line.
fn interpreter_of(script: &std::path::Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(script).ok()?;
    let line = text.lines().next()?.strip_prefix("#!")?.trim();
    let python = line.split_whitespace().next()?;
    Some(PathBuf::from(python))
}

impl Moto {
    /// Start moto, or `None` (with a printed reason) when it is not installed outside CI.
    pub fn start() -> Option<Moto> {
        Self::start_with(false)
    }

    /// Start moto handling one request at a time. moto's threaded server evaluates a
    /// DynamoDB condition and applies the update without a lock, so racing conditional
    /// writes can both pass there; DynamoDB applies each conditional write atomically, which
    /// a serial server models.
    pub fn start_serial() -> Option<Moto> {
        Self::start_with(true)
    }

    fn start_with(serial: bool) -> Option<Moto> {
        let Some(bin) = find_moto_server() else {
            let msg = "moto_server not found (run tests/aws/install.sh, or set SLUICE_MOTO_SERVER)";
            if std::env::var_os("CI").is_some() {
                panic!("{msg}: CI must run the moto tests");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        };
        // Two attempts: another process may grab the port between probing and binding.
        for _ in 0..2 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("sluice-moto-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("create moto log");
            let mut command = match (serial, interpreter_of(&bin)) {
                (true, Some(python)) => {
                    let mut c = Command::new(python);
                    c.args(["-c", SERIAL_SERVER, "127.0.0.1", &port.to_string()]);
                    c
                }
                (true, None) => panic!("cannot find the Python interpreter of {}", bin.display()),
                (false, _) => {
                    let mut c = Command::new(&bin);
                    c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                    c
                }
            };
            let child = command
                // moto's Step Functions executor calls other services (Lambda) on this port.
                .env("MOTO_PORT", port.to_string())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut moto = Moto {
                child,
                port,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
            };
            if moto.wait_ready(Duration::from_secs(60)) {
                return Some(moto);
            }
        }
        panic!(
            "moto_server did not start; see {}",
            std::env::temp_dir().display()
        );
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok((200, _)) = self.http("GET", "/moto-api/data.json", "") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A minimal HTTP/1.1 request to moto (its management API has no SDK).
    pub fn http(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        self.http_with(method, path, "application/json", body)
    }

    pub fn http_with(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// POST /moto-api/config, e.g. to let Step Functions execute state machines.
    pub fn configure(&self, config: serde_json::Value) {
        let (status, body) = self
            .http("POST", "/moto-api/config", &config.to_string())
            .expect("moto config request");
        assert!(status < 300, "moto config: {status} {body}");
    }

    /// SDK configuration pointing every client at this server with dummy credentials.
    pub async fn sdk(&self) -> SdkConfig {
        self.sdk_in(REGION).await
    }

    /// As [`Moto::sdk`], in another region: moto keeps separate state per region.
    pub async fn sdk_in(&self, region: &'static str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(region))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Start moto or return from the test (printing why) when it is not installed.
#[macro_export]
macro_rules! moto_or_skip {
    () => {
        match $crate::common::Moto::start() {
            Some(m) => m,
            None => return,
        }
    };
    (serial) => {
        match $crate::common::Moto::start_serial() {
            Some(m) => m,
            None => return,
        }
    };
}
