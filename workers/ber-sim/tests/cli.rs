//! End-to-end tests of the `ber-sim` binary: result file contract, stdout
//! output, determinism across thread counts, argument errors and SIGTERM.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn ber_sim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ber-sim"));
    // Don't let the developer's environment leak into flag parsing.
    for var in [
        "SLUICE_EBN0_DB",
        "SLUICE_SEED",
        "SLUICE_FRAMES",
        "SLUICE_BITS_PER_FRAME",
        "SLUICE_OUTPUT",
        "SLUICE_TASK_ID",
        "SLUICE_THREADS",
        "SLUICE_KERNEL",
    ] {
        c.env_remove(var);
    }
    c
}

fn run(args: &[&str]) -> Output {
    ber_sim().args(args).output().expect("spawn ber-sim")
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

fn small(out: &str, threads: &str) -> Vec<String> {
    [
        "--ebn0-db",
        "3",
        "--seed",
        "17",
        "--frames",
        "16",
        "--bits-per-frame",
        "10000",
        "--threads",
        threads,
        "--output",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn writes_result_file_atomically_into_new_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("results/job-1/task-17.json");
    let mut args = small(path.to_str().expect("utf-8 path"), "2");
    args.extend(["--task-id".into(), "job-1/17".into()]);
    let out = ber_sim().args(&args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&std::fs::read(&path).expect("result file"));
    assert_eq!(v["ebn0_db"], 3.0);
    assert_eq!(v["seed"], 17);
    assert_eq!(v["bits"], 160_000);
    let errors = v["errors"].as_u64().expect("errors");
    assert!(errors > 0 && errors < 160_000);
    assert_eq!(v["ber"].as_f64(), Some(errors as f64 / 160_000.0));
    assert!(v["elapsed_s"].as_f64().expect("elapsed") >= 0.0);
    assert_eq!(v["task_id"], "job-1/17");
    // Only the result file: no temporary left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn dash_prints_json_to_stdout_and_is_thread_count_independent() {
    let one = ber_sim().args(small("-", "1")).output().expect("spawn");
    let two = ber_sim().args(small("-", "2")).output().expect("spawn");
    assert!(one.status.success() && two.status.success());
    let (a, b) = (json(&one.stdout), json(&two.stdout));
    assert_eq!(a["errors"], b["errors"]);
    assert_eq!(a["bits"], b["bits"]);
    // A rerun (a retried task) is identical too.
    let again = json(
        &ber_sim()
            .args(small("-", "2"))
            .output()
            .expect("spawn")
            .stdout,
    );
    assert_eq!(again["errors"], a["errors"]);
}

#[test]
fn environment_variables_are_fallbacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("env.json");
    let out = ber_sim()
        .env("SLUICE_EBN0_DB", "-1.5")
        .env("SLUICE_SEED", "3")
        .env("SLUICE_FRAMES", "2")
        .env("SLUICE_BITS_PER_FRAME", "999")
        .env("SLUICE_OUTPUT", &path)
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&std::fs::read(&path).expect("result"));
    assert_eq!(v["ebn0_db"], -1.5);
    assert_eq!(v["bits"], 1998);
    // Flags win over the environment.
    let out = ber_sim()
        .env("SLUICE_SEED", "3")
        .args([
            "--ebn0-db",
            "0",
            "--seed",
            "4",
            "--frames",
            "1",
            "--bits-per-frame",
            "8",
            "--output",
            "-",
        ])
        .output()
        .expect("spawn");
    assert_eq!(json(&out.stdout)["seed"], 4);
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "args {args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "args {args:?}: stderr lacks {needle:?}: {err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_arguments_fail_with_clear_messages() {
    let base = ["--seed", "1", "--output", "-"];
    assert_usage_error(&base, "--ebn0-db");
    assert_usage_error(&["--ebn0-db", "4", "--output", "-"], "--seed");
    assert_usage_error(&["--ebn0-db", "4", "--seed", "1"], "--output");
    for (flag, value, needle) in [
        ("--ebn0-db", "abc", "not a number"),
        ("--ebn0-db", "NaN", "outside"),
        ("--ebn0-db", "inf", "outside"),
        ("--ebn0-db", "45", "outside"),
        ("--frames", "0", "--frames"),
        ("--bits-per-frame", "0", "--bits-per-frame"),
        ("--threads", "0", "--threads"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        if flag != "--ebn0-db" {
            args.extend(["--ebn0-db", "4"]);
        }
        assert_usage_error(&args, needle);
    }
    assert_usage_error(
        &["--ebn0-db", "4", "--seed", "-3", "--output", "-"],
        "--seed",
    );
}

#[test]
fn runtime_errors_exit_1() {
    // Unknown kernel.
    let out = run(&[
        "--ebn0-db",
        "4",
        "--seed",
        "1",
        "--frames",
        "1",
        "--bits-per-frame",
        "8",
        "--output",
        "-",
        "--kernel",
        "sse9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kernel `sse9`"));
    // Output path is a directory.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&[
        "--ebn0-db",
        "4",
        "--seed",
        "1",
        "--frames",
        "1",
        "--bits-per-frame",
        "8",
        "--output",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writing result"));
    // frames × bits overflow.
    let out = run(&[
        "--ebn0-db",
        "4",
        "--seed",
        "1",
        "--frames",
        "18446744073709551615",
        "--bits-per-frame",
        "2",
        "--output",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("overflows"));
}

#[test]
fn sigterm_exits_promptly_with_143_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("never.json");
    // ~1e12 bits: would take an hour.
    let mut child = ber_sim()
        .args([
            "--ebn0-db",
            "4",
            "--seed",
            "1",
            "--frames",
            "1000000",
            "--bits-per-frame",
            "1000000",
            "--threads",
            "2",
            "--output",
        ])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    let killed_at = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(5),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(143));
    assert!(killed_at.elapsed() < Duration::from_secs(2));
    assert!(!Path::new(&path).exists());
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
}
