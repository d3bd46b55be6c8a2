//! sluice-notify: the [`Notifier`] port for real — a webhook is an HTTP(S) POST of JSON (what
//! Slack's incoming webhooks and most chat tools accept), a command is a child process that
//! gets the job summary on stdin. Each delivery is tried [`ATTEMPTS`] times with a doubling
//! pause, and bounded by [`TIMEOUT`], so a dead endpoint cannot hold up the end of a job for
//! long. The same adapter serves the local runtime and the finish Lambda on AWS.

use async_trait::async_trait;
use sluice_core::ports::Notifier;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Tries per notification.
pub const ATTEMPTS: u32 = 3;
/// Pause before the second try; doubled after each.
pub const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// Longest a single try may take (an HTTP request, a command's run).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Webhooks over HTTP(S) and commands as child processes.
#[derive(Debug, Clone)]
pub struct HttpAndCommandNotifier {
    pub attempts: u32,
    pub first_pause: Duration,
    pub timeout: Duration,
}

impl Default for HttpAndCommandNotifier {
    fn default() -> Self {
        Self {
            attempts: ATTEMPTS,
            first_pause: FIRST_PAUSE,
            timeout: TIMEOUT,
        }
    }
}

impl HttpAndCommandNotifier {
    async fn retry<F, Fut>(&self, what: &str, mut once: F) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut pause = self.first_pause;
        let mut last = String::new();
        for attempt in 1..=self.attempts.max(1) {
            match tokio::time::timeout(self.timeout, once()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {:?}", self.timeout),
            }
            tracing::info!(%what, attempt, error = %last, "notification attempt failed");
            if attempt < self.attempts {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Err(format!("{last} (after {} attempts)", self.attempts.max(1)))
    }
}

#[async_trait]
impl Notifier for HttpAndCommandNotifier {
    async fn post_webhook(&self, url: &str, body: &serde_json::Value) -> Result<(), String> {
        let timeout = self.timeout;
        self.retry(url, || {
            let url = url.to_string();
            let target = url.clone();
            let body = body.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(timeout))
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let response = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(body.to_string())
                        .map_err(|e| format!("POST {url}: {e}"))?;
                    let status = response.status();
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(format!("POST {url}: HTTP {}", status.as_u16()))
                    }
                })
                .await
                .map_err(|e| format!("POST {target}: {e}"))?
            }
        })
        .await
    }

    async fn run_command(
        &self,
        argv: &[String],
        stdin: &[u8],
        working_dir: Option<&str>,
    ) -> Result<(), String> {
        let Some((program, args)) = argv.split_first() else {
            return Err("empty command".into());
        };
        // A relative program resolves against the pipeline's directory, as tasks do.
        let resolved = match working_dir {
            Some(dir) if program.contains('/') && std::path::Path::new(program).is_relative() => {
                std::path::Path::new(dir).join(program)
            }
            _ => std::path::PathBuf::from(program),
        };
        self.retry(program, || async {
            let mut cmd = tokio::process::Command::new(&resolved);
            cmd.args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            if let Some(dir) = working_dir {
                cmd.current_dir(dir);
            }
            let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
            if let Some(mut input) = child.stdin.take() {
                // A command that does not read its input is fine.
                let _ = input.write_all(stdin).await;
            }
            let out = child
                .wait_with_output()
                .await
                .map_err(|e| format!("{program}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let stderr = stderr.trim_end();
                let mut start = stderr.len().saturating_sub(300);
                while !stderr.is_char_boundary(start) {
                    start += 1;
                }
                let tail = &stderr[start..];
                Err(format!("{program} exited with {}: {tail}", out.status))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    fn quick() -> HttpAndCommandNotifier {
        HttpAndCommandNotifier {
            attempts: 3,
            first_pause: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        }
    }

    /// A one-connection-at-a-time HTTP server answering each request with the next status.
    fn server(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for status in statuses {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                bodies.push(String::from_utf8(body).unwrap());
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
            }
            bodies
        });
        (url, handle)
    }

    #[tokio::test]
    async fn a_webhook_is_retried_until_it_is_accepted() {
        let (url, server) = server(vec![500, 200]);
        let body = serde_json::json!({"text": "hi"});
        quick().post_webhook(&url, &body).await.unwrap();
        let bodies = server.join().unwrap();
        assert_eq!(bodies.len(), 2, "one failure, one retry");
        assert_eq!(bodies[1], r#"{"text":"hi"}"#);
    }

    #[tokio::test]
    async fn a_webhook_that_keeps_failing_names_the_status() {
        let (url, server) = server(vec![404, 404, 404]);
        let err = quick()
            .post_webhook(&url, &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(
            err.contains("HTTP 404") && err.contains("after 3 attempts"),
            "{err}"
        );
        server.join().unwrap();
    }

    #[tokio::test]
    async fn a_command_gets_the_summary_on_stdin_in_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let argv: Vec<String> = [
            "sh",
            "-c",
            "cat > got.json; echo \"$1\" >> got.json",
            "-",
            "ok",
        ]
        .map(String::from)
        .to_vec();
        quick()
            .run_command(&argv, b"{\"status\":\"SUCCEEDED\"}", dir.path().to_str())
            .await
            .unwrap();
        let got = std::fs::read_to_string(dir.path().join("got.json")).unwrap();
        assert_eq!(got, "{\"status\":\"SUCCEEDED\"}ok\n");

        let failing: Vec<String> = ["sh", "-c", "echo broken >&2; exit 4"]
            .map(String::from)
            .to_vec();
        let err = quick().run_command(&failing, b"", None).await.unwrap_err();
        assert!(
            err.contains("exit status: 4") && err.contains("broken"),
            "{err}"
        );
    }
}
