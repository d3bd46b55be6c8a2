//! Differential test: the conformance corpus on sluice-asl AND on moto's Step Functions
//! executor (the LocalStack-derived interpreter in `moto/stepfunctions/parser`), compared field
//! by field (status, output as JSON, error, cause).
//!
//! - moto_server is started on a free 127.0.0.1 port and stopped by a drop guard, also when the
//!   test panics. It comes from `$SLUICE_MOTO_SERVER`, else the venv `tests/aws/install.sh`
//!   creates (`$SLUICE_MOTO_VENV`, default `~/.cache/sluice-moto`). A missing moto FAILS the
//!   test, unless `SLUICE_SKIP_MOTO=1`.
//! - Execution is switched on with `POST /moto-api/config` before any state machine is created.
//!   moto 5.1.22 cannot start a second execution in a backend that already ran one (the
//!   `copy.deepcopy(state_machine)` in `StartExecution` reaches the first execution's live
//!   worker thread and its `RLock`: getmoto/moto#10077, fixed after 5.1.22 by #10093), so each
//!   case runs after `POST /moto-api/reset` and the config is posted again.
//! - Our engine runs the same definition and input in-process on a virtual clock (the way the
//!   conformance runner does), with the same state machine name and execution name, so
//!   `$$.StateMachine.Name` / `$$.Execution.Name` agree.
//! - The corpus is `tests/conformance/*` plus `tests/differential/cases/*` (same layout, no
//!   `expected.json`: differential-only cases for features the conformance corpus does not
//!   cover and for moto deviations we want pinned, e.g. `$.a[0].b`).
//! - Cases with a `mock-config.json` (moto has no Step Functions Local mocks) and cases with a
//!   Task state (moto would call its own emulated AWS service, our engine has none) are excluded,
//!   each with its reason in the output.
//! - `tests/differential/deviations.json` lists the cases where moto is known to differ, with the
//!   reason and what moto returns. For those cases the test asserts that moto STILL returns
//!   exactly that and that it still differs from our engine, so the list cannot go stale: a case
//!   that starts agreeing (or deviates in a new way) fails the test until the list is updated.
//!
//! Run: `cargo test -p sluice-asl --test differential -- --nocapture` for the table.

use serde_json::{Value, json};
use sluice_asl::{Engine, EngineConfig, StateMachine, VirtualClock};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/x";
const EXECUTION_NAME: &str = "differential";
/// How long a case may run on moto before it counts as stuck (moto's Wait states really sleep:
/// `map_max_concurrency_path` takes 30 s there).
const MOTO_CASE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long our engine may take on one case (virtual clock: Waits are instant).
const ENGINE_CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// One execution result, as DescribeExecution reports it (output parsed from its JSON text).
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    status: String,
    output: Option<Value>,
    /// moto only: the output text as DescribeExecution returned it. moto does not JSON-encode a
    /// top-level string output (`big` instead of `"big"`), so such text does not parse and
    /// `output` is `None`.
    output_text: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

impl Outcome {
    fn to_json(&self) -> Value {
        let mut v = json!({"status": self.status, "output": self.output, "error": self.error, "cause": self.cause});
        if let Some(t) = &self.output_text {
            v["outputText"] = json!(t);
        }
        v
    }

    /// The fields in which `self` and `other` differ.
    fn differences(&self, other: &Outcome) -> Vec<&'static str> {
        let mut d = Vec::new();
        if self.status != other.status {
            d.push("status");
        }
        if self.output != other.output {
            d.push("output");
        }
        if self.error != other.error {
            d.push("error");
        }
        if self.cause != other.cause {
            d.push("cause");
        }
        d
    }
}

// ---------------------------------------------------------------------------------------------
// moto

/// A running moto_server; killed and reaped on drop (also when the test panics).
struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn find_moto_server() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SLUICE_MOTO_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("SLUICE_MOTO_SERVER={} is not a file", p.display()))
        };
    }
    let venv = match std::env::var_os("SLUICE_MOTO_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sluice-moto")
        }
    };
    let bin = venv.join("bin/moto_server");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} not found", bin.display()))
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl Moto {
    fn start(bin: &Path) -> Moto {
        // Two attempts: another process may take the port between probing and binding.
        for _ in 0..2 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("sluice-differential-moto-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("create the moto log");
            let child = Command::new(bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_PORT", port.to_string())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log handle"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
            let mut moto = Moto { child, port, log };
            if moto.wait_ready(Duration::from_secs(60)) {
                return moto;
            }
        }
        panic!("moto_server ({}) did not start twice", bin.display());
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok((200, _)) = self.http("GET", "/moto-api/data.json", &[], "") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A minimal HTTP/1.1 request (`Connection: close`, body read to EOF).
    fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Ok((status, body))
    }

    fn post_json(&self, path: &str, body: &Value) {
        let (status, text) = self
            .http(
                "POST",
                path,
                &[("Content-Type", "application/json")],
                &body.to_string(),
            )
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert!(status < 300, "POST {path}: HTTP {status}: {text}");
    }

    /// A fresh backend with execution enabled (see the module docs for why per case).
    fn reset_and_enable_execution(&self) {
        self.post_json("/moto-api/reset", &json!({}));
        self.post_json(
            "/moto-api/config",
            &json!({"stepfunctions": {"execute_state_machine": true}}),
        );
    }

    /// One Step Functions API call (JSON 1.0 protocol; moto does not check signatures but
    /// routes on the credential scope's service name).
    fn sfn(&self, action: &str, body: &Value) -> Result<Value, String> {
        let target = format!("AWSStepFunctions.{action}");
        let headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", target.as_str()),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/states/aws4_request, \
                 SignedHeaders=host, Signature=0",
            ),
        ];
        let (status, text) = self
            .http("POST", "/", &headers, &body.to_string())
            .map_err(|e| format!("{action}: {e}"))?;
        if status != 200 {
            return Err(format!("{action}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{action}: {e}: {text}"))
    }

    /// Creates the state machine, starts one execution and polls DescribeExecution until it
    /// leaves RUNNING or `bound` passes (then the outcome is the RUNNING description).
    fn run(
        &self,
        name: &str,
        definition: &str,
        input: &Value,
        bound: Duration,
    ) -> Result<Outcome, String> {
        self.reset_and_enable_execution();
        let created = self.sfn(
            "CreateStateMachine",
            &json!({"name": name, "definition": definition, "roleArn": ROLE_ARN}),
        )?;
        let machine_arn = created["stateMachineArn"]
            .as_str()
            .ok_or_else(|| format!("CreateStateMachine returned {created}"))?
            .to_string();
        let started = self.sfn(
            "StartExecution",
            &json!({"stateMachineArn": machine_arn, "name": EXECUTION_NAME, "input": input.to_string()}),
        )?;
        let execution_arn = started["executionArn"]
            .as_str()
            .ok_or_else(|| format!("StartExecution returned {started}"))?
            .to_string();
        let start = Instant::now();
        loop {
            let d = self.sfn("DescribeExecution", &json!({"executionArn": execution_arn}))?;
            let status = d["status"].as_str().unwrap_or("").to_string();
            if status != "RUNNING" || start.elapsed() >= bound {
                let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
                let output_text = text("output");
                let output = output_text
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok());
                return Ok(Outcome {
                    status,
                    output,
                    output_text,
                    error: text("error"),
                    cause: text("cause"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// sluice-asl

async fn run_ours(name: &str, definition: &str, input: Value) -> Result<Outcome, String> {
    let machine = StateMachine::from_json(definition)
        .map_err(|d| format!("invalid definition: {d:?}"))?
        .named(name.to_string());
    let engine = Engine::new(EngineConfig {
        clock: Arc::new(VirtualClock::new()),
        ..EngineConfig::default()
    });
    let handle = engine
        .start_execution(Arc::new(machine), Some(EXECUTION_NAME.into()), input)
        .map_err(|e| e.to_string())?;
    let o = tokio::time::timeout(ENGINE_CASE_TIMEOUT, handle.wait())
        .await
        .map_err(|_| format!("our engine did not finish within {ENGINE_CASE_TIMEOUT:?}"))?;
    Ok(Outcome {
        status: o.status.as_str().to_string(),
        output: o.output,
        output_text: None,
        error: o.error,
        cause: o.cause,
    })
}

// ---------------------------------------------------------------------------------------------
// the corpus and the known deviations

struct Case {
    name: String,
    definition: String,
    input: Value,
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every Task state's Resource anywhere in the definition (including Map/Parallel bodies).
fn task_resources(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("Type").and_then(Value::as_str) == Some("Task") {
                out.push(
                    m.get("Resource")
                        .and_then(Value::as_str)
                        .unwrap_or("(no Resource)")
                        .to_string(),
                );
            }
            m.values().for_each(|c| task_resources(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| task_resources(c, out)),
        _ => {}
    }
}

/// The pure-ASL cases of both corpora (conformance first, then differential-only cases; names
/// are unique across them), and the excluded ones with the reason.
fn load_corpus() -> (Vec<Case>, Vec<(String, String)>) {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = Vec::new();
    for root in ["tests/conformance", "tests/differential/cases"] {
        let root = manifest.join(root);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("definition.asl.json").exists())
            .collect();
        found.sort();
        dirs.extend(found);
    }
    let mut cases: Vec<Case> = Vec::new();
    let mut excluded = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        assert!(
            !cases.iter().any(|c| c.name == name),
            "two cases are named {name}"
        );
        if dir.join("mock-config.json").exists() {
            excluded.push((
                name,
                "uses a Step Functions Local mock config, which moto does not support".into(),
            ));
            continue;
        }
        let definition = read(&dir.join("definition.asl.json"));
        let parsed: Value =
            serde_json::from_str(&definition).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut resources = Vec::new();
        task_resources(&parsed, &mut resources);
        if !resources.is_empty() {
            excluded.push((
                name,
                format!(
                    "Task state(s) calling {} (moto would call its own emulated service, \
                     our engine has no resource behind it): not pure ASL",
                    resources.join(", ")
                ),
            ));
            continue;
        }
        let input: Value = serde_json::from_str(&read(&dir.join("input.json")))
            .unwrap_or_else(|e| panic!("{}/input.json: {e}", dir.display()));
        cases.push(Case {
            name,
            definition,
            input,
        });
    }
    (cases, excluded)
}

/// One entry of `tests/differential/deviations.json`.
struct Deviation {
    reason: String,
    /// What moto returns: any of `status`, `output`, `error`, `cause` (exact; `null` = absent),
    /// `outputText` (the raw DescribeExecution output) and `causeContains` (substring).
    moto: serde_json::Map<String, Value>,
    /// Optionally, what our engine returns (same fields): pins the AWS behaviour of the
    /// differential-only cases, which have no `expected.json`.
    ours: Option<serde_json::Map<String, Value>>,
    /// For cases moto cannot finish (a Wait really sleeping): poll only this long and expect
    /// moto to be still RUNNING.
    still_running_after: Option<Duration>,
}

fn load_deviations() -> BTreeMap<String, Deviation> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/differential/deviations.json");
    let doc: Value =
        serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = doc
        .get("cases")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{}: no \"cases\" object", path.display()));
    cases
        .iter()
        .map(|(name, d)| {
            let reason = d["reason"]
                .as_str()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| panic!("deviation {name}: no reason"))
                .to_string();
            let moto = d["moto"]
                .as_object()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| panic!("deviation {name}: no \"moto\" expectation"))
                .clone();
            let ours = d.get("ours").map(|o| {
                o.as_object()
                    .unwrap_or_else(|| panic!("deviation {name}: \"ours\" is not an object"))
                    .clone()
            });
            for k in moto.keys().chain(ours.iter().flat_map(|o| o.keys())) {
                assert!(
                    [
                        "status",
                        "output",
                        "outputText",
                        "error",
                        "cause",
                        "causeContains"
                    ]
                    .contains(&k.as_str()),
                    "deviation {name}: unknown moto field {k}"
                );
            }
            let still_running_after = d
                .get("stillRunningAfterSeconds")
                .and_then(Value::as_f64)
                .map(Duration::from_secs_f64);
            (
                name.clone(),
                Deviation {
                    reason,
                    moto,
                    ours,
                    still_running_after,
                },
            )
        })
        .collect()
}

/// Whether an outcome is the one the deviation list records; `Err` says how it is not.
fn matches_recorded(
    outcome: &Outcome,
    want: &serde_json::Map<String, Value>,
) -> Result<(), String> {
    let got = outcome.to_json();
    let mut problems = Vec::new();
    for (k, v) in want {
        if k == "causeContains" {
            let needle = v.as_str().unwrap_or_default();
            if !outcome
                .cause
                .as_deref()
                .unwrap_or_default()
                .contains(needle)
            {
                problems.push(format!(
                    "cause {:?} does not contain {needle:?}",
                    outcome.cause
                ));
            }
        } else if got[k.as_str()] != *v {
            problems.push(format!("{k}: recorded {v}, now {}", got[k.as_str()]));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn conformance_corpus_agrees_with_moto() {
    let bin = match find_moto_server() {
        Ok(b) => b,
        Err(why) => {
            if std::env::var("SLUICE_SKIP_MOTO").as_deref() == Ok("1") {
                eprintln!("SKIPPED (SLUICE_SKIP_MOTO=1): {why}");
                return;
            }
            panic!(
                "moto is required for the differential test: {why}. Run `bash tests/aws/install.sh` \
                 (or set SLUICE_MOTO_SERVER), or set SLUICE_SKIP_MOTO=1 to skip"
            );
        }
    };
    let (cases, excluded) = load_corpus();
    let deviations = load_deviations();
    assert!(
        cases.len() >= 20,
        "only {} pure-ASL cases found",
        cases.len()
    );
    for name in deviations.keys() {
        assert!(
            cases.iter().any(|c| &c.name == name),
            "deviations.json lists {name}, which is not a pure-ASL case of either corpus"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let moto = Moto::start(&bin);

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let (mut agree, mut deviate) = (0usize, 0usize);
    for case in &cases {
        let ours = runtime.block_on(run_ours(&case.name, &case.definition, case.input.clone()));
        let ours = match ours {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{}: our engine: {e}", case.name));
                continue;
            }
        };
        let deviation = deviations.get(&case.name);
        let bound = deviation
            .and_then(|d| d.still_running_after)
            .unwrap_or(MOTO_CASE_TIMEOUT);
        let started = Instant::now();
        let theirs = moto.run(&case.name, &case.definition, &case.input, bound);
        let took = started.elapsed().as_secs_f64();
        let theirs = match theirs {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{}: moto: {e}", case.name));
                continue;
            }
        };
        let diff = ours.differences(&theirs);
        match deviation {
            None if diff.is_empty() => {
                agree += 1;
                rows.push(format!("{:<26} {took:5.2}s agree", case.name));
            }
            None => failures.push(format!(
                "{}: differs in {}\n      ours: {}\n      moto: {}",
                case.name,
                diff.join(", "),
                ours.to_json(),
                theirs.to_json()
            )),
            Some(d) => {
                deviate += 1;
                rows.push(format!(
                    "{:<26} {took:5.2}s known deviation ({}): {}",
                    case.name,
                    diff.join(", "),
                    d.reason
                ));
                if diff.is_empty() {
                    failures.push(format!(
                        "{}: listed as a moto deviation but moto now agrees with our engine \
                         ({}); remove it from tests/differential/deviations.json",
                        case.name,
                        theirs.to_json()
                    ));
                } else if let Err(why) = matches_recorded(&theirs, &d.moto) {
                    failures.push(format!(
                        "{}: moto no longer deviates as recorded: {why}\n      ours: {}\n      moto: {}",
                        case.name,
                        ours.to_json(),
                        theirs.to_json()
                    ));
                }
                if let Some(Err(why)) = d.ours.as_ref().map(|o| matches_recorded(&ours, o)) {
                    failures.push(format!(
                        "{}: our engine no longer returns the recorded (AWS) result: {why}",
                        case.name
                    ));
                }
            }
        }
    }
    drop(moto);

    let summary = format!(
        "{} cases compared, {agree} agree, {deviate} known deviations ({} excluded)",
        cases.len(),
        excluded.len()
    );
    println!("differential test against moto's Step Functions executor:");
    for r in &rows {
        println!("  {r}");
    }
    for (name, why) in &excluded {
        println!("  {name:<26} excluded: {why}");
    }
    println!("{summary}");
    assert!(
        failures.is_empty(),
        "{summary}; {} problem(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    assert_eq!(agree + deviate, cases.len(), "{summary}");
}
