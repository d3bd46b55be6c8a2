//! A job outlives the process that runs it: real `sluice` processes killed with real signals
//! (SIGKILL, SIGINT), then continued with `sluice redrive`, cancelled with `sluice cancel`, or
//! resumed by a restarted `sluice serve`; every assertion reads the job table afterwards.
//!
//! The tasks are shell commands that append their row's number to `runs.log` when they start,
//! so the tests can count how often each task really ran.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const TASKS: u32 = 12;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
    input: PathBuf,
}

/// A pipeline of `TASKS` tasks of ~0.4 s each, two at a time.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let runs = root.join("runs.log");
    let pipeline = format!(
        r#"
name = "slow"
[input]
columns = {{ n = "integer" }}
[task]
command = ["sh", "-c", "echo {{n}} >> {runs}; sleep 0.4; printf '{{{{\"k\": \"x\", \"n\": %s}}}}' {{n}} > {{output}}"]
[parallelism]
max = 2
[aggregate]
group_by = "k"
sum = ["n"]
"#,
        runs = runs.display()
    );
    std::fs::write(root.join("pipeline.toml"), pipeline).unwrap();
    let mut csv = String::from("n\n");
    for n in 1..=TASKS {
        csv.push_str(&format!("{n}\n"));
    }
    let input = root.join("in.csv");
    std::fs::write(&input, csv).unwrap();
    Setup {
        work: root.join("work"),
        input,
        root,
        _dir: dir,
    }
}

fn sluice(args: &[&str]) -> Output {
    Command::new(SLUICE)
        .args(args)
        .output()
        .expect("run sluice")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn spawn(args: &[&str]) -> Child {
    Command::new(SLUICE)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The job table as `sluice status --json` shows it.
fn status(work: &Path, job: &str) -> Value {
    let out = sluice(&["status", job, "--workdir", s(work), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn only_job(work: &Path) -> String {
    let out = sluice(&["status", "--workdir", s(work), "--json"]);
    let jobs: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    assert_eq!(jobs.len(), 1, "one job expected: {jobs:?}");
    jobs[0]["id"].as_str().unwrap().to_string()
}

fn tasks_in(st: &Value, state: &str) -> Vec<String> {
    st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == state)
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the job table has one job with at least `n` succeeded tasks.
fn wait_for_succeeded(work: &Path, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if work.join("sluice.db").is_file() {
            let out = sluice(&["status", "--workdir", s(work), "--json"]);
            let jobs: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if let Some(id) = jobs
                .as_array()
                .and_then(|j| j.first())
                .and_then(|j| j["id"].as_str())
                && tasks_in(&status(work, id), "SUCCEEDED").len() >= n
            {
                return id.to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no job reached {n} succeeded tasks within 60 s");
}

/// How many times each row's task started (from runs.log).
fn runs(root: &Path) -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(root.join("runs.log"))
        .unwrap_or_default()
        .lines()
    {
        *out.entry(line.trim().parse().unwrap()).or_default() += 1;
    }
    out
}

/// Attempts per task id.
fn attempts(st: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in st["attempts"].as_array().unwrap() {
        out.entry(a["key"]["task_id"].as_str().unwrap().to_string())
            .or_default()
            .push(a.clone());
    }
    out
}

/// Processes whose command line mentions `marker` (our tasks mention the temp directory).
fn processes_mentioning(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains(SLUICE) {
                found.push(cmd);
            }
        }
    }
    found
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sluice did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn results_csv(work: &Path, job: &str) -> String {
    std::fs::read_to_string(
        work.join("buckets/sluice-data/jobs")
            .join(job)
            .join("stages/aggregate/output/results.csv"),
    )
    .unwrap()
}

const EXPECTED_CSV: &str = "k,tasks,n\nx,12,78\n";

#[test]
fn sigkill_then_redrive_finishes_without_rerunning_finished_tasks() {
    let t = setup();
    let mut run = spawn(&[
        "run",
        s(&t.input),
        "--workdir",
        s(&t.work),
        "--max-parallel",
        "2",
    ]);
    let job = wait_for_succeeded(&t.work, 4);
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();

    let before = status(&t.work, &job);
    assert_eq!(
        before["job"]["state"], "RUNNING",
        "a killed run leaves the job RUNNING"
    );
    let done_before = tasks_in(&before, "SUCCEEDED");
    assert!(done_before.len() >= 4);
    let shown = text(&sluice(&["status", &job, "--workdir", s(&t.work)]));
    assert!(shown.contains("no live process"), "{shown}");
    // The tasks died with the process that ran them.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(processes_mentioning(s(&t.root)), Vec::<String>::new());

    let out = sluice(&["redrive", &job, "--workdir", s(&t.work)]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(printed.contains("state      SUCCEEDED"), "{printed}");
    assert!(printed.contains("redrives   1"), "{printed}");
    assert_eq!(results_csv(&t.work, &job), EXPECTED_CSV);

    let after = status(&t.work, &job);
    assert_eq!(after["job"]["state"], "SUCCEEDED");
    assert_eq!(after["job"]["redrive_count"], 1);
    assert_eq!(tasks_in(&after, "SUCCEEDED").len(), TASKS as usize);
    let per_task = attempts(&after);
    for id in &done_before {
        assert_eq!(
            per_task[id].len(),
            1,
            "task {id} had finished before the kill and must not run again: {:?}",
            per_task[id]
        );
    }
    // Attempts the kill left unfinished were interrupted, not failed: no application error.
    for list in per_task.values() {
        for a in list {
            assert!(
                a["state"] == "SUCCEEDED" || a["state"] == "INTERRUPTED",
                "unexpected attempt {a}"
            );
            if a["state"] == "INTERRUPTED" {
                assert_eq!(a["stop_code"], "RunnerLost");
            }
        }
    }
    let counts = runs(&t.root);
    let finished_rows: Vec<u32> = done_before
        .iter()
        .map(|id| {
            after["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == id.as_str())
                .unwrap()["params"]["n"]
                .as_u64()
                .unwrap() as u32
        })
        .collect();
    for n in finished_rows {
        assert_eq!(counts[&n], 1, "row {n} ran {} times", counts[&n]);
    }
    assert_eq!(counts.len(), TASKS as usize, "every row ran");
}

#[test]
fn ctrl_c_cancels_within_seconds_and_redrive_continues() {
    let t = setup();
    let mut run = spawn(&[
        "run",
        s(&t.input),
        "--workdir",
        s(&t.work),
        "--max-parallel",
        "2",
    ]);
    let job = wait_for_succeeded(&t.work, 2);
    let sent = Instant::now();
    signal(&run, "-INT");
    let code = wait_exit(&mut run, Duration::from_secs(10));
    let took = sent.elapsed();
    let mut stderr = String::new();
    use std::io::Read;
    run.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(code.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("sluice redrive {job}")),
        "says how to continue: {stderr}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(processes_mentioning(s(&t.root)), Vec::<String>::new());

    let st = status(&t.work, &job);
    assert_eq!(st["job"]["state"], "ABORTED");
    assert!(
        st["job"]["reason"]
            .as_str()
            .unwrap()
            .contains("cancelled by Ctrl-C"),
        "{}",
        st["job"]
    );
    for a in st["attempts"].as_array().unwrap() {
        assert!(
            a["state"] != "RUNNING" && a["state"] != "LAUNCHING",
            "no attempt is left live: {a}"
        );
    }
    let leases = sluice_leases(&t.work);
    assert_eq!(leases, 0, "the capacity lease is released");
    let events = std::fs::read_to_string(t.work.join("events.jsonl")).unwrap_or_default();
    assert!(
        events
            .lines()
            .any(|l| l.contains("Step Functions Execution Status Change")
                && l.contains("\"ABORTED\"")),
        "the status change is on the event log"
    );
    let notes = std::fs::read_to_string(t.work.join("notifications.jsonl")).unwrap_or_default();
    assert!(
        notes
            .lines()
            .any(|l| l.contains("ABORTED") && l.contains(&job)),
        "an ABORTED notification: {notes}"
    );

    let out = sluice(&["redrive", &job, "--workdir", s(&t.work)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(results_csv(&t.work, &job), EXPECTED_CSV);
    let again = sluice(&["redrive", &job, "--workdir", s(&t.work)]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).contains("already SUCCEEDED"),
        "{}",
        text(&again)
    );
}

/// Active capacity leases, read from the job table.
fn sluice_leases(work: &Path) -> i64 {
    let db = rusqlite::Connection::open(work.join("sluice.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn cancel_from_another_process_stops_the_running_job() {
    let t = setup();
    let mut run = spawn(&[
        "run",
        s(&t.input),
        "--workdir",
        s(&t.work),
        "--max-parallel",
        "2",
    ]);
    let job = wait_for_succeeded(&t.work, 1);
    let refused = sluice(&["redrive", &job, "--workdir", s(&t.work)]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused).contains("RUNNING under a live process"),
        "{}",
        text(&refused)
    );
    let out = sluice(&[
        "cancel",
        &job,
        "--workdir",
        s(&t.work),
        "--reason",
        "wrong input",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ABORTED"), "{}", text(&out));
    let code = wait_exit(&mut run, Duration::from_secs(10));
    assert_eq!(
        code.code(),
        Some(1),
        "the run ends with the job not succeeded"
    );
    let st = status(&t.work, &job);
    assert_eq!(st["job"]["state"], "ABORTED");
    assert!(
        st["job"]["reason"]
            .as_str()
            .unwrap()
            .contains("wrong input")
    );
    assert_eq!(processes_mentioning(s(&t.root)), Vec::<String>::new());
}

#[test]
fn killed_serve_resumes_the_job_and_does_not_ingest_the_file_twice() {
    let t = setup();
    let inbox = t.root.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::copy(&t.input, inbox.join("in.csv")).unwrap();
    let pipeline = t.root.join("pipeline.toml");
    let args = [
        "serve",
        "--watch",
        s(&inbox),
        "--pipeline",
        s(&pipeline),
        "--workdir",
        s(&t.work),
        "--max-parallel",
        "2",
        "--poll",
        "0.1",
    ];
    let mut serve = spawn(&args);
    let job = wait_for_succeeded(&t.work, 3);
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(status(&t.work, &job)["job"]["state"], "RUNNING");

    let mut once = args.to_vec();
    once.push("--once");
    let out = sluice(&once);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(printed.contains("resumed"), "{printed}");
    assert!(printed.contains("already ingested"), "{printed}");
    assert_eq!(only_job(&t.work), job, "the file was not ingested twice");
    let st = status(&t.work, &job);
    assert_eq!(st["job"]["state"], "SUCCEEDED");
    assert_eq!(st["job"]["redrive_count"], 1);
    assert_eq!(results_csv(&t.work, &job), EXPECTED_CSV);

    // A changed file at the same path is a new upload, as on S3: a new job.
    std::fs::write(inbox.join("in.csv"), "n\n5\n").unwrap();
    let out = sluice(&once);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = sluice(&["status", "--workdir", s(&t.work), "--json"]);
    let jobs: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let new = jobs.iter().find(|j| j["id"] != job.as_str()).unwrap();
    assert_eq!(new["state"], "SUCCEEDED");
    assert_eq!(new["task_count"], 1);
}

#[test]
fn a_job_that_failed_is_redriven_and_only_its_failed_task_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let runs_log = root.join("runs.log");
    let fixed = root.join("fixed");
    // Row 3 fails until the file `fixed` exists.
    let pipeline = format!(
        r#"
name = "flaky"
[input]
columns = {{ n = "integer" }}
[task]
command = ["sh", "-c", "echo {{n}} >> {runs}; if [ {{n}} = 3 ] && [ ! -e {fixed} ]; then exit 3; fi; printf '{{{{\"k\": \"x\", \"n\": %s}}}}' {{n}} > {{output}}"]
[retry]
task_failed_attempts = 1
[aggregate]
group_by = "k"
sum = ["n"]
"#,
        runs = runs_log.display(),
        fixed = fixed.display()
    );
    std::fs::write(root.join("pipeline.toml"), pipeline).unwrap();
    std::fs::write(root.join("in.csv"), "n\n1\n2\n3\n4\n").unwrap();
    let work = root.join("work");
    let out = sluice(&["run", s(&root.join("in.csv")), "--workdir", s(&work)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let job = only_job(&work);
    assert_eq!(status(&work, &job)["job"]["state"], "FAILED");
    assert_eq!(runs(root), BTreeMap::from([(1, 1), (2, 1), (3, 1), (4, 1)]));

    std::fs::write(&fixed, "").unwrap();
    let out = sluice(&["redrive", &job, "--workdir", s(&work)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        runs(root),
        BTreeMap::from([(1, 1), (2, 1), (3, 2), (4, 1)]),
        "only the failed task ran again"
    );
    let st = status(&work, &job);
    assert_eq!(st["job"]["state"], "SUCCEEDED");
    assert_eq!(st["job"]["reason"], Value::Null, "the old reason is gone");
    assert_eq!(results_csv(&work, &job), "k,tasks,n\nx,4,10\n");
}

#[test]
fn a_task_that_runs_past_its_timeout_is_stopped_and_retried_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let marker = root.join("sleeper");
    // The task outlives its 2 s timeout by far; `marker` in its command line finds it.
    let pipeline = format!(
        r#"
name = "stuck"
[input]
columns = {{ n = "integer" }}
[task]
command = ["sh", "-c", "sleep 30; echo {marker} > /dev/null"]
timeout_seconds = 2
"#,
        marker = marker.display()
    );
    std::fs::write(root.join("pipeline.toml"), pipeline).unwrap();
    std::fs::write(root.join("in.csv"), "n\n1\n").unwrap();
    let work = root.join("work");
    let started = Instant::now();
    let out = sluice(&["run", s(&root.join("in.csv")), "--workdir", s(&work)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the run does not wait for the stuck task"
    );
    assert_eq!(
        processes_mentioning(s(&marker)),
        Vec::<String>::new(),
        "no timed-out task is left running"
    );
    let job = only_job(&work);
    let st = status(&work, &job);
    assert_eq!(st["job"]["state"], "FAILED");
    let stops: Vec<String> = st["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}/{}",
                a["state"].as_str().unwrap(),
                a["stop_code"].as_str().unwrap_or("")
            )
        })
        .collect();
    // The pool stopped each attempt 2 s into its run; the timeout spends the application
    // budget (2 attempts by default), so attempt 2 was the last.
    assert_eq!(
        stops,
        ["TIMED_OUT/UserInitiated", "TIMED_OUT/UserInitiated"]
    );
}

/// The reference job, as a user runs it: `sluice run` of the BER example killed with SIGKILL
/// after some tasks finished, then `sluice redrive`: results.csv is byte-identical to an
/// uninterrupted run's and no task that had finished ran a second attempt.
#[test]
fn the_ber_example_killed_and_redriven_gives_byte_identical_results() {
    let ber_sim = Path::new(SLUICE).with_file_name("ber-sim");
    assert!(
        ber_sim.is_file(),
        "build ber-sim first: cargo build -p ber-sim"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let csv = repo.join("examples/ber/ber-job.csv");
    let pipeline = repo.join("examples/ber/pipeline.toml");
    let dir = tempfile::tempdir().unwrap();
    let run = |work: &Path| {
        vec![
            "run".to_string(),
            s(&csv).to_string(),
            "--pipeline".into(),
            s(&pipeline).to_string(),
            "--workdir".into(),
            s(work).to_string(),
            "--scale".into(),
            "0.01".into(),
        ]
    };
    let reference = dir.path().join("reference");
    let args = run(&reference);
    let out = sluice(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected = results_csv(&reference, &only_job(&reference));

    let work = dir.path().join("killed");
    let args = run(&work);
    let mut child = spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let job = wait_for_succeeded(&work, 20);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = status(&work, &job);
    assert_eq!(before["job"]["state"], "RUNNING");
    let done_before = tasks_in(&before, "SUCCEEDED");
    assert!(done_before.len() < 200, "killed before the end");

    let out = sluice(&["redrive", &job, "--workdir", s(&work)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        results_csv(&work, &job),
        expected,
        "byte-identical results.csv"
    );
    let per_task = attempts(&status(&work, &job));
    for id in &done_before {
        assert_eq!(per_task[id].len(), 1, "finished task {id} ran again");
    }
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_leaves_the_job_for_redrive() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Tasks that ignore SIGTERM: the graceful stop would wait out its grace period. Each runs
    // a child of its own (its command line names the test's directory), which the kernel's
    // parent-death signal does not reach: sluice must kill it on the way out.
    let pipeline = r#"
name = "stubborn"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "trap '' TERM; sh -c 'sleep 3; true' MARKER; printf '{{\"k\": \"x\", \"n\": %s}}' {n} > {output}"]
[aggregate]
group_by = "k"
sum = ["n"]
"#
    .replace("MARKER", s(root));
    std::fs::write(root.join("pipeline.toml"), pipeline).unwrap();
    std::fs::write(root.join("in.csv"), "n\n1\n2\n3\n4\n").unwrap();
    let work = root.join("work");
    let mut run = spawn(&[
        "run",
        s(&root.join("in.csv")),
        "--workdir",
        s(&work),
        "--max-parallel",
        "2",
    ]);
    // Both slots busy with stubborn tasks.
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        assert!(Instant::now() < deadline, "tasks never started");
        if work.join("sluice.db").is_file() {
            let out = sluice(&["status", "--workdir", s(&work), "--json"]);
            let jobs: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if let Some(id) = jobs
                .as_array()
                .and_then(|j| j.first())
                .and_then(|j| j["id"].as_str())
                && tasks_in(&status(&work, id), "RUNNING").len() == 2
            {
                break id.to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    signal(&run, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    signal(&run, "-INT");
    let code = wait_exit(&mut run, Duration::from_secs(10));
    assert_eq!(code.code(), Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "the second Ctrl-C exits at once, not after the stop's grace period: {:?}",
        sent.elapsed()
    );
    assert_eq!(
        processes_mentioning(s(root)),
        Vec::<String>::new(),
        "nothing of the stopped tasks is left running"
    );
    assert_eq!(
        status(&work, &job)["job"]["state"],
        "RUNNING",
        "left for redrive"
    );
    let out = sluice(&["redrive", &job, "--workdir", s(&work)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(results_csv(&work, &job), "k,tasks,n\nx,4,10\n");
}
