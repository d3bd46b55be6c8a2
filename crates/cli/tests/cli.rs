//! The `sluice` binary as a user runs it: exit codes, what it prints, AWS-shaped sample events.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sluice(args: &[&str]) -> Output {
    Command::new(SLUICE)
        .args(args)
        .output()
        .expect("run sluice")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

const SHELL_PIPELINE: &str = r#"
name = "shell"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "printf '{{\"k\": \"x\", \"n\": %s}}' {n} > {output}"]
[aggregate]
group_by = "k"
sum = ["n"]
"#;

/// `sluice run` of `csv` with `pipeline` in a fresh directory, which must succeed: its output
/// and the directory (its work directory is `work` in it).
fn run_ok(pipeline: &str, csv: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.toml"), pipeline).unwrap();
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let out = sluice(&[
        "run",
        dir.path().join("in.csv").to_str().unwrap(),
        "--workdir",
        dir.path().join("work").to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (text, dir)
}

/// A job whose last stage is a fan-out with no aggregate has a prefix for its result: `sluice
/// run` shows its directory and exits 0 (it printed an invalid-object error and exited 2).
#[test]
fn a_job_whose_result_is_a_prefix_shows_its_directory() {
    let (text, _dir) = run_ok(
        r#"
name = "fan"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "echo {n} > {output}"]
"#,
        "n\n1\n2\n",
    );
    let result = text
        .lines()
        .find_map(|l| l.strip_prefix("result     "))
        .unwrap_or_else(|| panic!("no result line: {text}"));
    let files = std::fs::read_dir(result).unwrap().count();
    assert_eq!(files, 2, "{result}: one output per task");
}

#[test]
fn run_succeeds_and_status_lists_the_job() {
    let (text, dir) = run_ok(SHELL_PIPELINE, "n\n1\n2\n39\n");
    let work = dir.path().join("work");
    assert!(text.contains("state      SUCCEEDED"), "{text}");
    assert!(text.contains("k,tasks,n\nx,3,42\n"), "{text}");
    let status = sluice(&["status", "--workdir", work.to_str().unwrap()]);
    assert_eq!(status.status.code(), Some(0));
    assert!(stdout(&status).contains("SUCCEEDED"), "{}", stdout(&status));
}

#[test]
fn bad_csv_exits_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.toml"), SHELL_PIPELINE).unwrap();
    std::fs::write(dir.path().join("bad.csv"), "n\n1\n\"unterminated\n").unwrap();
    std::fs::write(dir.path().join("worse.csv"), "n\n1\nx\n").unwrap();
    let work = dir.path().join("work");
    let out = sluice(&[
        "run",
        dir.path().join("worse.csv").to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("state      FAILED"), "{text}");
    assert!(
        text.contains("reason     worse.csv:3:1: column 'n': 'x' is not an integer"),
        "{text}"
    );
    let out = sluice(&[
        "run",
        dir.path().join("bad.csv").to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn run_with_a_missing_pipeline_is_an_argument_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "n\n1\n").unwrap();
    let out = sluice(&[
        "run",
        dir.path().join("in.csv").to_str().unwrap(),
        "--workdir",
        dir.path().join("w").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pipeline.toml"));
}

#[test]
fn invoke_task_events_classifies_aws_sample_events_for_unknown_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_str().unwrap();
    let events = repo().join("tests/events");

    let out = sluice(&[
        "invoke",
        "task-events",
        "--event",
        events.join("ecs-task-stopped-spot.json").to_str().unwrap(),
        "--workdir",
        work,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let r = json(&out);
    assert_eq!(r["classification"], "spot-interrupted");
    assert!(
        r["action"]
            .as_str()
            .unwrap()
            .contains("not a task sluice knows"),
        "{r}"
    );

    let out = sluice(&[
        "invoke",
        "task-events",
        "--event",
        events
            .join("batch-job-failed-host-terminated.json")
            .to_str()
            .unwrap(),
        "--workdir",
        work,
    ]);
    let r = json(&out);
    assert_eq!(r["classification"], "spot-interrupted", "{r}");

    // Truncated event: a clear error, no panic.
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, r#"{"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": {"containers": "oops"}}"#).unwrap();
    let out = sluice(&[
        "invoke",
        "task-events",
        "--event",
        truncated.to_str().unwrap(),
        "--workdir",
        work,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    assert_eq!(r["errorType"], "Sluice.InvalidInput");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("malformed ECS Task State Change"),
        "{r}"
    );
}

#[test]
fn invoke_ingest_on_the_s3_sample_records_a_failed_job_for_an_unknown_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_str().unwrap();
    let event = repo().join("tests/events/s3-object-created.json");
    let out = sluice(&[
        "invoke",
        "ingest",
        "--event",
        event.to_str().unwrap(),
        "--workdir",
        work,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let r = json(&out);
    assert_eq!(r["status"], "rejected");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("unknown pipeline 'ber'"),
        "{r}"
    );
    // Delivered twice: the same job, recorded once.
    let again = json(&sluice(&[
        "invoke",
        "ingest",
        "--event",
        event.to_str().unwrap(),
        "--workdir",
        work,
    ]));
    assert_eq!(again["jobId"], r["jobId"]);
    let status = stdout(&sluice(&["status", "--workdir", work, "--json"]));
    let jobs: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["state"], "FAILED");
}

#[test]
fn mistakes_in_a_pipeline_file_are_reported_at_load_and_no_job_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = SHELL_PIPELINE
        .replace("{n} > {output}", "{nope} > {output}")
        .replace(
            "group_by = \"k\"",
            "group_by = \"k\"\nratio = { name = \"r\", numerator = \"m\", denominator = \"n\" }",
        );
    let file = dir.path().join("pipeline.toml");
    std::fs::write(&file, pipeline).unwrap();
    std::fs::write(dir.path().join("in.csv"), "n\n1\n").unwrap();
    let work = dir.path().join("w");
    let out = sluice(&[
        "run",
        dir.path().join("in.csv").to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display().to_string();
    assert!(
        err.contains(&format!(
            "{f}: stage.tasks.command[2]: unknown placeholder '{{nope}}'"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{f}: stage.aggregate.aggregate.ratio.numerator: 'm' is not one of the summed fields"
        )),
        "every problem at once: {err}"
    );
    assert!(
        !work.join("sluice.db").exists(),
        "no job, no work directory"
    );

    // `sluice pipeline check` says the same, for someone editing the file.
    let check = sluice(&["pipeline", "check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert!(
        check_err.contains("unknown placeholder '{nope}'"),
        "{check_err}"
    );

    std::fs::write(&file, SHELL_PIPELINE).unwrap();
    let check = sluice(&[
        "pipeline",
        "check",
        file.to_str().unwrap(),
        "--input",
        dir.path().join("in.csv").to_str().unwrap(),
    ]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let text = stdout(&check);
    assert!(text.contains("pipeline 'shell' is valid"), "{text}");
    assert!(
        text.contains("stage 0 tasks: one task per row of the input"),
        "{text}"
    );
    assert!(text.contains("in.csv: 1 rows, 0 rejected"), "{text}");
}

/// Relative paths as a user types them: `--workdir w` and `--pipeline pipeline.toml` from the
/// current directory, with the pipeline (and so its tasks) in another directory than the work
/// directory. Every location a task gets must still resolve where the task runs.
#[test]
fn relative_work_directory_and_pipeline_paths_work_from_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("pipelines");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("pipeline.toml"),
        r#"
name = "rel"
[[stage]]
name = "count"
command = ["sh", "-c", "wc -l < \"$1\" | tr -d ' ' > \"$2\"", "-", "{input}", "{output}"]
file = "count.txt"
[[stage]]
name = "copy"
command = ["cp", "{stages.count}", "{output}"]
file = "copy.txt"
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("in.csv"), "n\n1\n2\n").unwrap();
    let run = |cwd: &Path, input: &str, pipeline: &str| {
        let out = Command::new(SLUICE)
            .current_dir(cwd)
            .args(["run", input, "--pipeline", pipeline, "--workdir", "w"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        let copies: Vec<PathBuf> = walk(&cwd.join("w/buckets/sluice-data/jobs"))
            .into_iter()
            .filter(|p| p.ends_with("copy/output/copy.txt"))
            .collect();
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert_eq!(std::fs::read_to_string(&copies[0]).unwrap(), "3\n");
    };
    // A bare file name: its directory is the current one.
    run(&home, "../in.csv", "pipeline.toml");
    // Tasks run in the pipeline's directory, not in the current one where `w` is.
    run(dir.path(), "in.csv", "pipelines/pipeline.toml");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
