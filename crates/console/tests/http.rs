//! The console over real HTTP: a `LocalRuntime` on a temporary work directory, the console
//! bound to a port of 127.0.0.1 (or of every interface, for the token), and plain HTTP
//! requests — the hostile ones a browser or a script on another site could send, and the ones
//! the pages send to start, cancel and redrive jobs.

use serde_json::Value;
use sluice_console::{Console, ConsoleOptions};
use sluice_local::{LocalRuntime, RuntimeOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tasks sleep `pause` seconds; the row whose `n` is `fail` fails with a message on stderr.
const PIPELINE: &str = r#"
name = "shell"
[input]
columns = { n = "integer" }
[params]
pause = "0"
fail = -1
[task]
command = ["sh", "-c", "sleep {pause}; if [ {n} -eq {fail} ]; then echo \"row {n} is broken\" >&2; exit 3; fi; echo \"row {n} done\"; printf '{{\"k\": \"x\", \"n\": %s}}' {n} > {output}"]
[retry]
task_failed_attempts = 1
[aggregate]
group_by = "k"
sum = ["n"]
[[schedule]]
name = "nightly"
expression = "rate(1 day)"
input = "nightly.csv"
"#;

struct Console_ {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
    base: String,
    addr: SocketAddr,
    token: Option<String>,
    csrf: String,
    agent: ureq::Agent,
    _rt: tokio::runtime::Runtime,
}

fn start(bind: &str, upload_limit: usize) -> Console_ {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let work = root.join("work");
    std::fs::write(root.join("pipeline.toml"), PIPELINE).unwrap();
    std::fs::write(root.join("nightly.csv"), "n\n5\n6\n").unwrap();
    // A file beside the work directory that no request may ever read.
    std::fs::write(root.join("secret.txt"), "TOP-SECRET\n").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bind: SocketAddr = bind.parse().unwrap();
    let (addr, token) = rt.block_on(async {
        let runtime = Arc::new(LocalRuntime::open(RuntimeOptions::new(&work)).unwrap());
        let cfg =
            sluice_local::pipelines::load(&root.join("pipeline.toml"), &[]).expect("pipeline");
        runtime.register_pipeline(&cfg).unwrap();
        let console = Console::new(runtime.clone(), work.join("uploads"));
        let mut options = ConsoleOptions::new(bind);
        options.upload_limit = upload_limit;
        let bound = console.bind(options).await.unwrap();
        let (addr, token) = (bound.addr, bound.token.clone());
        tokio::spawn(bound.serve(std::future::pending()));
        (addr, token)
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let base = format!("http://127.0.0.1:{}", addr.port());
    let mut c = Console_ {
        _dir: dir,
        root,
        work,
        base,
        addr,
        token,
        csrf: String::new(),
        agent,
        _rt: rt,
    };
    let (status, session) = c.get("/api/session");
    assert_eq!(status, 200, "{session}");
    c.csrf = json(&session)["csrfToken"].as_str().unwrap().to_string();
    c
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("HTTP request");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    Reply {
        status: r.status().as_u16(),
        headers,
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// One part of a multipart/form-data body: (field, file name, content type, bytes).
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "sluice-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, file, ct, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
            ),
        }
        if let Some(ct) = ct {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Console_ {
    fn auth(
        &self,
        mut req: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        req
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = reply(
            self.auth(self.agent.get(&format!("{}{path}", self.base)))
                .call(),
        );
        (r.status, r.body)
    }

    fn post(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(&format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send_empty())
    }

    /// POST /api/jobs as the page does (CSRF header, same origin).
    fn trigger(&self, parts: &[Part]) -> Reply {
        let (ct, body) = multipart(parts);
        let req = self
            .agent
            .post(&format!("{}/api/jobs", self.base))
            .header("Content-Type", &ct)
            .header("X-Sluice-CSRF", &self.csrf)
            .header("Origin", &self.base);
        reply(req.send(&body[..]))
    }

    fn action(&self, job: &str, what: &str) -> Reply {
        let origin = self.base.clone();
        self.post(
            &format!("/api/jobs/{job}/{what}"),
            &[("X-Sluice-CSRF", &self.csrf), ("Origin", &origin)],
        )
    }

    /// Waits (bounded) until the job is in one of `states`; returns its detail.
    fn wait_for(&self, job: &str, states: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (status, body) = self.get(&format!("/api/jobs/{job}"));
            assert_eq!(status, 200, "{body}");
            let v = json(&body);
            if states.contains(&v["state"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} never reached {states:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_job(&self, csv: &str, params: &[(&str, &str)]) -> String {
        let mut parts: Vec<Part> = vec![
            ("pipeline", None, None, b"shell"),
            ("file", Some("rows.csv"), Some("text/csv"), csv.as_bytes()),
        ];
        let names: Vec<String> = params.iter().map(|(k, _)| format!("param.{k}")).collect();
        for ((_, v), name) in params.iter().zip(&names) {
            parts.push((name, None, None, v.as_bytes()));
        }
        let r = self.trigger(&parts);
        assert_eq!(r.status, 201, "{}", r.body);
        let v = json(&r.body);
        assert_eq!(v["status"], "started", "{v}");
        v["jobId"].as_str().unwrap().to_string()
    }
}

const ROWS: &str = "n\n1\n2\n3\n4\n";

#[test]
fn a_job_started_through_the_api_is_shown_with_its_tasks_logs_results_and_history() {
    let c = start("127.0.0.1:0", 1 << 20);
    let job = c.start_job(ROWS, &[]);
    let detail = c.wait_for(&job, &["SUCCEEDED", "FAILED"]);
    assert_eq!(detail["state"], "SUCCEEDED", "{detail}");
    assert_eq!(detail["progress"]["succeeded"], 4);
    assert_eq!(detail["states"]["RunTasks"]["status"], "succeeded");
    assert_eq!(detail["states"]["RecordFailure"]["status"], "not-run");
    assert_eq!(detail["stages"][0]["name"], "tasks");
    assert_eq!(detail["stages"][0]["progress"]["succeeded"], 4);
    assert_eq!(detail["stages"][1]["shape"], "aggregate");
    // Each task said a line and succeeded at once: its log is its block of the job's
    // succeeded.log, not a file of its own, and the console serves it all the same.
    let (_, tasks) = c.get(&format!("/api/jobs/{job}/tasks"));
    let tasks = json(&tasks)["tasks"].clone();
    let log = tasks[2]["attemptList"][0]["logUrl"].as_str().unwrap();
    let (status, text) = c.get(log);
    assert_eq!((status, text.as_str()), (200, "row 3 done\n"));
    let logs = c.work.join(format!("logs/{job}"));
    assert!(!logs.join("tasks_t-00002-1.log").exists());
    assert_eq!(
        std::fs::read_to_string(logs.join("succeeded.log"))
            .unwrap()
            .matches("==> tasks_t-")
            .count(),
        4
    );
    // The upload went into the inbox, whole, under the pipeline's name.
    assert_eq!(
        std::fs::read_to_string(c.work.join("uploads/shell/rows.csv")).unwrap(),
        ROWS
    );
    // results.csv as a table, and as it is.
    let csv = detail["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "csv")
        .expect("a CSV result");
    let (status, table) = c.get(&format!("{}?format=table", csv["url"].as_str().unwrap()));
    assert_eq!(status, 200, "{table}");
    let table = json(&table);
    assert_eq!(table["header"], serde_json::json!(["k", "tasks", "n"]));
    assert_eq!(table["rows"], serde_json::json!([["x", "4", "10"]]));
    let (_, history) = c.get(&format!("/api/jobs/{job}/history"));
    let history = json(&history);
    assert_eq!(history["events"][0]["type"], "ExecutionStarted");
    let (_, notes) = c.get(&format!("/api/jobs/{job}/notifications"));
    assert_eq!(json(&notes)[0]["message"]["jobId"], job.as_str());
    // The jobs list and the pages.
    let (_, jobs) = c.get("/api/jobs");
    assert_eq!(json(&jobs)[0]["id"], job.as_str());
    let (status, page) = c.get(&format!("/jobs/{job}"));
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"data-state="RunTasks""#) && page.contains("<td>x</td>"),
        "{page}"
    );
    let (status, page) = c.get("/");
    assert!(status == 200 && page.contains(&job), "{page}");

    // A failing row: its task is FAILED with its exit code, and its log says why.
    let broken = c.start_job(ROWS, &[("fail", "3")]);
    let detail = c.wait_for(&broken, &["SUCCEEDED", "FAILED"]);
    assert_eq!(detail["state"], "FAILED", "{detail}");
    assert_eq!(detail["canRedrive"], true);
    // The override made a variant of the pipeline, not a change of `shell`.
    assert_ne!(detail["pipeline"], "shell");
    assert_eq!(
        detail["pipelineDescription"], "variant of 'shell': fail = 3",
        "{detail}"
    );
    let (_, failed) = c.get(&format!("/api/jobs/{broken}/tasks?state=failed"));
    let failed = json(&failed)["tasks"].clone();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["exitCode"], 3);
    let log = failed[0]["attemptList"][0]["logUrl"].as_str().unwrap();
    let (status, text) = c.get(log);
    assert_eq!((status, text.trim()), (200, "row 3 is broken"));
    let (status, body) = c.get(&format!("/api/jobs/{broken}/tasks?state=lost"));
    assert_eq!(status, 400, "{body}");
    // Paged: the second and third of the four tasks.
    let (_, page) = c.get(&format!("/api/jobs/{broken}/tasks?offset=1&limit=2"));
    let page = json(&page);
    assert_eq!(page["total"], 4, "{page}");
    let ids: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tasks_t-00001", "tasks_t-00002"]);
    // What cannot be done is refused with the reason.
    let r = c.action(&job, "redrive");
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        json(&r.body)["error"]
            .as_str()
            .unwrap()
            .contains("SUCCEEDED")
    );
    let r = c.action(&broken, "cancel");
    assert_eq!(r.status, 409, "{}", r.body);
    let r = c.action("no-such-job", "cancel");
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn a_running_job_is_cancelled_and_redriven_through_the_api() {
    let c = start("127.0.0.1:0", 1 << 20);
    let rows: String = std::iter::once("n".to_string())
        .chain((1..=12).map(|n| n.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let job = c.start_job(&rows, &[("pause", "0.5")]);
    c.wait_for(&job, &["RUNNING"]);
    let r = c.action(&job, "cancel");
    assert_eq!(r.status, 200, "{}", r.body);
    // Answered once the job is stopped: ABORTED already.
    assert_eq!(json(&r.body)["state"], "ABORTED", "{}", r.body);
    assert_eq!(
        json(&r.body)["stoppedBy"]["kind"],
        "this-process",
        "{}",
        r.body
    );
    let detail = c.wait_for(&job, &["ABORTED"]);
    assert_eq!(detail["canRedrive"], true, "{detail}");
    assert_eq!(detail["canCancel"], false);
    let r = c.action(&job, "redrive");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json(&r.body)["redriveCount"], 1);
    let detail = c.wait_for(&job, &["SUCCEEDED", "FAILED"]);
    assert_eq!(detail["state"], "SUCCEEDED", "{detail}");
    assert_eq!(detail["redriveCount"], 1);
}

#[test]
fn hostile_ids_and_paths_never_read_outside_the_work_directory() {
    let c = start("127.0.0.1:0", 1 << 20);
    let job = c.start_job(ROWS, &[]);
    c.wait_for(&job, &["SUCCEEDED"]);
    let hostile = [
        "/api/jobs/..%2F..%2Fsecret.txt".to_string(),
        "/api/jobs/%2e%2e".to_string(),
        "/api/jobs/..%2Fwork/results/0".to_string(),
        format!("/api/jobs/{job}/results/..%2F..%2Fsecret.txt"),
        format!("/api/jobs/{job}/results/-1"),
        format!("/api/jobs/{job}/results/99"),
        format!("/api/jobs/{job}/rejects/..%2F..%2F..%2F..%2Fsecret.txt"),
        format!("/api/jobs/{job}/rejects/tasks"),
        format!("/api/jobs/{job}/tasks/..%2F..%2F..%2Fsecret/attempts/1/log"),
        format!("/api/jobs/{job}/tasks/tasks_t-00000/attempts/..%2F1/log"),
        format!("/api/jobs/{job}/tasks/tasks_t-00000/attempts/7/log"),
        format!("/api/jobs/{job}/tasks/tasks_t-00000/attempts/1%00/log"),
        "/api/jobs/%FF%FE/tasks".to_string(),
        "/jobs/..%2F..%2Fsecret.txt".to_string(),
        "/assets/..%2F..%2Fsecret.txt".to_string(),
        "/api/jobs?limit=-5".to_string(),
    ];
    for path in &hostile {
        let (status, body) = c.get(path);
        assert!(matches!(status, 400 | 403 | 404), "{path}: {status} {body}");
        assert!(!body.contains("TOP-SECRET"), "{path}: {body}");
    }
    // A log that is a link out of the work directory is refused, not followed. (These tasks
    // succeed at once with a line, so they have no log file: the link takes its place.)
    let log = c.work.join(format!("logs/{job}/tasks_t-00000-1.log"));
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(c.root.join("secret.txt"), &log).unwrap();
    let (status, body) = c.get(&format!(
        "/api/jobs/{job}/tasks/tasks_t-00000/attempts/1/log"
    ));
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("TOP-SECRET"));
    // The same log, read normally, for another task: its block.
    let (status, body) = c.get(&format!(
        "/api/jobs/{job}/tasks/tasks_t-00001/attempts/1/log"
    ));
    assert_eq!((status, body.as_str()), (200, "row 2 done\n"));
    // The job's succeeded.log as a link out of the work directory: refused too.
    let together = c.work.join(format!("logs/{job}/succeeded.log"));
    std::fs::rename(&together, c.root.join("elsewhere.log")).unwrap();
    std::os::unix::fs::symlink(c.root.join("elsewhere.log"), &together).unwrap();
    let (status, body) = c.get(&format!(
        "/api/jobs/{job}/tasks/tasks_t-00001/attempts/1/log"
    ));
    assert_eq!(status, 403, "{body}");
}

#[test]
fn uploads_must_be_csv_files_within_the_limit() {
    let c = start("127.0.0.1:0", 4096);
    let big = format!("n\n{}", "1\n".repeat(4000));
    let cases: Vec<(Vec<Part>, u16, &str)> = vec![
        (
            vec![
                ("pipeline", None, None, b"shell"),
                ("file", Some("big.csv"), Some("text/csv"), big.as_bytes()),
            ],
            413,
            "larger",
        ),
        (
            vec![
                ("pipeline", None, None, b"shell"),
                (
                    "file",
                    Some("plot.png"),
                    Some("image/png"),
                    b"\x89PNG\r\n\x1a\n",
                ),
            ],
            415,
            ".csv",
        ),
        (
            vec![
                ("pipeline", None, None, b"shell"),
                ("file", Some("rows.csv"), Some("image/png"), b"n\n1\n"),
            ],
            415,
            "CSV",
        ),
        (
            vec![
                ("pipeline", None, None, b"shell"),
                (
                    "file",
                    Some("rows.csv"),
                    Some("text/csv"),
                    b"\x00\x01\x02binary",
                ),
            ],
            400,
            "not a CSV",
        ),
        (
            vec![
                ("pipeline", None, None, b"shell"),
                ("file", Some("rows.csv"), Some("text/csv"), b"a,,b\n1,2,3\n"),
            ],
            400,
            "empty column name",
        ),
        (
            vec![
                ("pipeline", None, None, b"../shell"),
                ("file", Some("rows.csv"), Some("text/csv"), b"n\n1\n"),
            ],
            400,
            "pipeline name",
        ),
        (
            vec![
                ("pipeline", None, None, b"nope"),
                ("file", Some("rows.csv"), Some("text/csv"), b"n\n1\n"),
            ],
            404,
            "unknown pipeline",
        ),
        (vec![("pipeline", None, None, b"shell")], 400, "CSV file"),
        (
            vec![
                ("pipeline", None, None, b"shell"),
                ("param.nope", None, None, b"1"),
                ("file", Some("rows.csv"), Some("text/csv"), b"n\n1\n"),
            ],
            400,
            "no param",
        ),
        (
            vec![
                ("pipeline", None, None, b"shell"),
                ("param.fail", None, None, b"two"),
                ("file", Some("rows.csv"), Some("text/csv"), b"n\n1\n"),
            ],
            400,
            "not a integer",
        ),
    ];
    for (parts, want, says) in cases {
        let r = c.trigger(&parts);
        assert_eq!(r.status, want, "{}", r.body);
        let error = json(&r.body)["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{want}: {error}");
    }
    // Far beyond the limit, announced: refused before the body is sent (a client that asks
    // `Expect: 100-continue` is told 413 instead of "continue"). Written by hand because that
    // exchange is the point.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.addr.port())).unwrap();
        write!(
            s,
            "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Sluice-CSRF: {}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000000\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n",
            c.addr.port(),
            c.csrf
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains("larger than this console accepts"),
            "{answer}"
        );
    }
    // Nothing was written or started by any of them.
    assert!(
        !c.work.join("uploads").exists()
            || std::fs::read_dir(c.work.join("uploads/shell"))
                .map(|d| d.count())
                .unwrap_or(0)
                == 0
    );
    let (_, jobs) = c.get("/api/jobs");
    assert_eq!(json(&jobs), serde_json::json!([]));
    // A CSV whose rows do not fit the pipeline is a job, recorded FAILED by ingest with the
    // reason, as a dropped file would be.
    let r = c.trigger(&[
        ("pipeline", None, None, b"shell"),
        ("file", Some("bad.csv"), Some("text/csv"), b"n\nseven\n"),
    ]);
    assert_eq!(r.status, 201, "{}", r.body);
    let v = json(&r.body);
    let detail = c.wait_for(v["jobId"].as_str().unwrap(), &["FAILED"]);
    assert!(
        detail["reason"]
            .as_str()
            .unwrap()
            .contains("'seven' is not an integer"),
        "{detail}"
    );
}

#[test]
fn cross_site_and_tokenless_state_changes_are_refused() {
    let c = start("127.0.0.1:0", 1 << 20);
    let job = c.start_job(ROWS, &[("pause", "0.3")]);
    let base = c.base.clone();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "X-Sluice-CSRF"),
        (vec![("X-Sluice-CSRF", "guess")], "wrong"),
        (
            vec![
                ("X-Sluice-CSRF", &c.csrf),
                ("Origin", "http://evil.example"),
            ],
            "cross-origin",
        ),
        (
            vec![("X-Sluice-CSRF", &c.csrf), ("Origin", "null")],
            "cross-origin",
        ),
        (
            vec![("X-Sluice-CSRF", &c.csrf), ("Sec-Fetch-Site", "cross-site")],
            "cross-site",
        ),
    ];
    for (headers, says) in cases {
        let r = c.post(&format!("/api/jobs/{job}/cancel"), &headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
        assert!(r.body.contains(says), "{headers:?}: {}", r.body);
        // Refusals carry the same protective headers as any answer.
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // A state change is a POST: GET does not cancel.
    let (status, _) = c.get(&format!("/api/jobs/{job}/cancel"));
    assert_eq!(status, 405);
    // A page on another site whose name resolves to 127.0.0.1 (DNS rebinding) is not answered.
    let r = reply(
        c.agent
            .get(&format!("{base}/api/jobs"))
            .header("Host", &format!("evil.example:{}", c.addr.port()))
            .call(),
    );
    assert_eq!(r.status, 421, "{}", r.body);
    let r = reply(
        c.agent
            .get(&format!("{base}/api/jobs"))
            .header("Host", &format!("localhost:{}", c.addr.port()))
            .call(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    // The job ran on, untouched by all of the above.
    let detail = c.wait_for(&job, &["SUCCEEDED", "FAILED", "ABORTED"]);
    assert_eq!(detail["state"], "SUCCEEDED", "{detail}");
}

#[test]
fn bound_off_loopback_every_request_needs_the_token() {
    let mut c = start("0.0.0.0:0", 1 << 20);
    let token = c.token.clone().expect("a token off loopback");
    assert_eq!(token.len(), 64);
    let url = |p: &str| format!("{}{p}", c.base);
    // No token, a wrong one: refused, API and pages alike.
    let r = reply(c.agent.get(&url("/api/jobs")).call());
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("www-authenticate").is_some());
    let r = reply(
        c.agent
            .get(&url("/api/jobs"))
            .header("Authorization", "Bearer 0000")
            .call(),
    );
    assert_eq!(r.status, 401);
    let r = reply(c.agent.get(&url("/")).call());
    assert_eq!(r.status, 401);
    assert!(r.body.contains("needs its token"), "{}", r.body);
    let r = reply(c.agent.get(&url("/?token=wrong")).call());
    assert_eq!(r.status, 401);
    // The login link sets the cookie and drops the token from the address.
    let r = reply(c.agent.get(&url(&format!("/?token={token}"))).call());
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/"));
    let cookie = r.header("set-cookie").unwrap().to_string();
    // The login redirect stays on the console, whatever the path looks like.
    let r = reply(
        c.agent
            .get(&url(&format!("//evil.example/?token={token}")))
            .call(),
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = reply(c.agent.get(&url("/")).header("Cookie", &pair).call());
    assert_eq!(r.status, 200, "{}", r.body);
    // With the token (Bearer, as `get` sends it), the API answers; a POST still needs CSRF.
    let (status, _) = c.get("/api/jobs");
    assert_eq!(status, 200);
    let r = c.post("/api/jobs/x/cancel", &[]);
    assert_eq!(r.status, 403, "{}", r.body);
    // Without the token, even with the CSRF token, nothing changes.
    c.token = None;
    let r = c.post("/api/jobs/x/cancel", &[("X-Sluice-CSRF", &c.csrf.clone())]);
    assert_eq!(r.status, 401, "{}", r.body);
}

#[test]
fn a_schedule_is_fired_from_the_api() {
    let c = start("127.0.0.1:0", 1 << 20);
    let (_, pipelines) = c.get("/api/pipelines");
    let pipelines = json(&pipelines);
    assert_eq!(pipelines[0]["name"], "shell");
    assert_eq!(
        pipelines[0]["schedules"][0]["name"], "nightly",
        "{pipelines}"
    );
    let r = c.trigger(&[
        ("pipeline", None, None, b"shell"),
        ("schedule", None, None, b"nightly"),
    ]);
    assert_eq!(r.status, 201, "{}", r.body);
    let v = json(&r.body);
    let job = v["jobId"].as_str().unwrap();
    let detail = c.wait_for(job, &["SUCCEEDED", "FAILED"]);
    assert_eq!(detail["state"], "SUCCEEDED", "{detail}");
    assert_eq!(
        detail["input"],
        "s3://sluice-ingest/shell/schedules/nightly/nightly.csv"
    );
    let (_, table) = c.get(&format!("/api/jobs/{job}/results/0?format=table"));
    assert_eq!(json(&table)["rows"], serde_json::json!([["x", "2", "11"]]));
    // An unknown schedule, or a schedule and a file at once, are refused.
    let r = c.trigger(&[
        ("pipeline", None, None, b"shell"),
        ("schedule", None, None, b"hourly"),
    ]);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = c.trigger(&[
        ("pipeline", None, None, b"shell"),
        ("schedule", None, None, b"nightly"),
        ("file", Some("rows.csv"), Some("text/csv"), b"n\n1\n"),
    ]);
    assert_eq!(r.status, 400, "{}", r.body);
}
