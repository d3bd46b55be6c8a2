//! `sluice ui` as a user runs it, over HTTP: beside a `sluice run` in another process, bound off
//! loopback (so with the token it prints), it cancels the job that process runs and redrives it
//! to the end in its own process.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn call(req: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut r = req.expect("HTTP request");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[test]
fn sluice_ui_cancels_a_job_another_process_runs_and_redrives_it_itself() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("pipeline.toml"),
        r#"
name = "slow"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "sleep 0.5; printf '{{\"k\": \"x\", \"n\": %s}}' {n} > {output}"]
[parallelism]
max = 1
[aggregate]
group_by = "k"
sum = ["n"]
"#,
    )
    .unwrap();
    let rows: String = (1..=20).map(|n| format!("{n}\n")).collect();
    std::fs::write(root.join("in.csv"), format!("n\n{rows}")).unwrap();
    let work = root.join("work");
    let mut children = Children(Vec::new());

    // Without a job table (and no pipeline to start one) there is nothing to show: say so.
    let out = Command::new(SLUICE)
        .args(["ui", "--workdir"])
        .arg(root.join("nothing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no job table"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    children.0.push(
        Command::new(SLUICE)
            .arg("run")
            .arg(root.join("in.csv"))
            .arg("--workdir")
            .arg(&work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The job table exists once the run has started its job.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !work.join("sluice.db").is_file() {
        assert!(Instant::now() < deadline, "sluice run never started");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut ui = Command::new(SLUICE)
        .args(["ui", "--addr", "0.0.0.0:0", "--workdir"])
        .arg(&work)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = ui.stderr.take().unwrap();
    children.0.push(ui);
    let mut lines = BufReader::new(stderr).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("console: ").map(str::to_string))
        .expect("sluice ui printed its address");
    std::thread::spawn(move || lines.for_each(drop));
    let (base, token) = url
        .split_once("/?token=")
        .expect("a login link with a token");
    let auth = format!("Bearer {token}");
    let agent = agent();
    let get = |path: &str| {
        call(
            agent
                .get(&format!("{base}{path}"))
                .header("Authorization", &auth)
                .call(),
        )
    };
    let post = |path: &str, csrf: &str| {
        call(
            agent
                .post(&format!("{base}{path}"))
                .header("Authorization", &auth)
                .header("X-Sluice-CSRF", csrf)
                .send_empty(),
        )
    };
    let (status, _) = call(agent.get(&format!("{base}/api/jobs")).call());
    assert_eq!(status, 401, "off loopback the token is required");

    let (_, session) = get("/api/session");
    let csrf = session["csrfToken"].as_str().unwrap().to_string();
    let job = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, jobs) = get("/api/jobs");
            if let Some(j) = jobs.get(0).filter(|j| j["state"] == "RUNNING") {
                assert_eq!(j["driver"]["kind"], "process", "{j}");
                break j["id"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "the job never ran: {jobs}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Cancelled here, stopped by the `sluice run` that drives it.
    let (status, r) = post(&format!("/api/jobs/{job}/cancel"), &csrf);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["state"], "ABORTED", "{r}");
    assert_eq!(r["stoppedBy"]["kind"], "process", "{r}");
    let (status, r) = post(&format!("/api/jobs/{job}/cancel"), &csrf);
    assert_eq!(status, 409, "{r}");
    // Redriven here: it runs in the ui's process to the end.
    let (status, r) = post(&format!("/api/jobs/{job}/redrive"), &csrf);
    assert_eq!(status, 200, "{r}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let detail = loop {
        let (_, d) = get(&format!("/api/jobs/{job}"));
        if d["state"] == "SUCCEEDED" || d["state"] == "FAILED" {
            break d;
        }
        if d["state"] == "RUNNING" {
            assert_eq!(d["driver"]["kind"], "this-process", "{d}");
        }
        assert!(Instant::now() < deadline, "the redrive never ended: {d}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(detail["state"], "SUCCEEDED", "{detail}");
    assert_eq!(detail["redriveCount"], 1);
    let (_, table) = get(&format!("/api/jobs/{job}/results/0?format=table"));
    assert_eq!(
        table["rows"],
        serde_json::json!([["x", "20", "210"]]),
        "{table}"
    );
}
