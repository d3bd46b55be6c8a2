//! End-to-end tests of the embedded runtime: the real state machine file on the sluice-asl
//! engine, the real handlers, SQLite, directory buckets and real processes.

use serde_json::{Value, json};
use sluice_core::{AttemptState, JobId, JobState, PipelineConfig, TaskState};
use sluice_local::{LocalRuntime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Directory holding the workspace's binaries (ber-sim), next to this test's `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn runtime(dir: &Path, spot: Option<(f64, u64)>) -> LocalRuntime {
    let mut options = RuntimeOptions::new(dir);
    options.bin_dirs = vec![bin_dir()];
    options.max_slots = Some(4);
    options.spot_interruptions = spot;
    LocalRuntime::open(options).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A generic pipeline whose task is a shell one-liner: proves any command works, and lets a
/// row decide to fail.
fn shell_pipeline(task_failed_attempts: u32) -> PipelineConfig {
    let text = format!(
        r#"
name = "shell"
[input]
columns = {{ group = "string", n = "integer", fail = "boolean" }}
[task]
command = ["sh", "-c", "if [ {{fail}} = true ]; then echo boom >&2; exit 3; fi; printf '{{{{\"group\": \"%s\", \"n\": %s}}}}' {{group}} {{n}} > {{output}}"]
[parallelism]
max = 3
[retry]
task_failed_attempts = {task_failed_attempts}
[aggregate]
group_by = "group"
sum = ["n"]
"#
    );
    PipelineConfig::from_toml("shell.toml", &text).unwrap()
}

async fn submit(rt: &LocalRuntime, file: &Path, key: &str) -> Value {
    let event = rt.upload(file, key).unwrap();
    rt.deliver(event).await.unwrap()
}

async fn wait_job(rt: &LocalRuntime, id: &str) -> sluice_core::Job {
    let id = JobId::new(id).unwrap();
    for _ in 0..1200 {
        let job = rt.services.jobs.get_job(&id).await.unwrap().unwrap();
        if let Some(arn) = &job.execution_arn
            && let Some(h) = rt.engine.execution(arn)
        {
            tokio::time::timeout(Duration::from_secs(120), h.wait())
                .await
                .expect("execution timed out");
            return rt.services.jobs.get_job(&id).await.unwrap().unwrap();
        }
        if job.state.is_final() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never started");
}

fn results_csv(rt: &LocalRuntime, job: &sluice_core::Job) -> String {
    let csv = job
        .results
        .iter()
        .find(|r| r.key.ends_with(".csv"))
        .expect("no results.csv");
    std::fs::read_to_string(rt.path_of(csv).unwrap()).unwrap()
}

fn ber_pipeline() -> PipelineConfig {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/ber/pipeline.toml"
    ))
    .unwrap();
    let mut cfg = PipelineConfig::from_toml("pipeline.toml", &text).unwrap();
    // Small: 2 frames x 5,000,000 bits per task, some 50 ms: long enough for the Spot
    // simulator's reclaims to land (none comes in a run's first 20 ms).
    cfg.params.insert("frames".into(), toml::Value::Integer(2));
    cfg.params
        .insert("bits_per_frame".into(), toml::Value::Integer(5_000_000));
    cfg
}

const BER_CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/ber/ber-job.csv"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ber_job_runs_end_to_end_and_spot_reclaims_do_not_change_the_results() {
    assert!(
        bin_dir().join("ber-sim").is_file(),
        "build ber-sim first: cargo build -p ber-sim"
    );
    let dir = tempfile::tempdir().unwrap();

    let rt = runtime(&dir.path().join("calm"), None);
    rt.register_pipeline(&ber_pipeline()).unwrap();
    let started = submit(&rt, Path::new(BER_CSV), "ber/ber-job.csv").await;
    assert_eq!(started["status"], "started");
    let job = wait_job(&rt, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.reason);
    assert_eq!(job.task_count, 200);
    let calm = results_csv(&rt, &job);
    let lines: Vec<&str> = calm.lines().collect();
    assert_eq!(lines.len(), 9, "{calm}");
    assert!(lines[1].starts_with("0,25,250000000,"), "{calm}");
    let png = job
        .results
        .iter()
        .find(|r| r.key.ends_with(".png"))
        .expect("no results.png");
    let bytes = std::fs::read(rt.path_of(png).unwrap()).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let notes = std::fs::read_to_string(dir.path().join("calm/notifications.jsonl")).unwrap();
    assert!(
        notes.contains(job.id.as_str()),
        "no notification for the job"
    );

    // Same job with 30% of attempts reclaimed: retried, same bytes.
    let rt2 = runtime(&dir.path().join("spot"), Some((0.3, 11)));
    rt2.register_pipeline(&ber_pipeline()).unwrap();
    let started = submit(&rt2, Path::new(BER_CSV), "ber/ber-job.csv").await;
    let job2 = wait_job(&rt2, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job2.state, JobState::Succeeded, "{:?}", job2.reason);
    let tasks = rt2.services.jobs.list_tasks(&job2.id).await.unwrap();
    let reclaimed: u32 = tasks.iter().map(|t| t.spot_interruptions).sum();
    let attempts: u32 = tasks.iter().map(|t| t.attempts).sum();
    assert!(reclaimed > 0, "no attempt was interrupted");
    assert_eq!(
        attempts,
        200 + reclaimed,
        "each reclaim is exactly one extra attempt"
    );
    assert_eq!(
        results_csv(&rt2, &job2),
        calm,
        "results must not depend on interruptions"
    );
    // Each reclaim was recorded as such on its attempt, as on EC2: the Spot warning for its
    // instance was noted first, and the STOPPED event itself carried only an exit code.
    let mut spot_attempts = 0;
    for t in &tasks {
        for a in rt2
            .services
            .jobs
            .list_attempts(&job2.id, &t.id)
            .await
            .unwrap()
        {
            if a.state == sluice_core::AttemptState::SpotInterrupted {
                assert_eq!(a.stop_code.as_deref(), Some("EssentialContainerExited"));
                let notice = a.reclaim_notice.as_deref().unwrap_or_default();
                assert!(
                    notice.starts_with("EC2 Spot Instance Interruption Warning for i-"),
                    "{a:?}"
                );
                assert_eq!(a.exit_code, Some(143), "SIGTERM, nothing else: {a:?}");
                assert!(a.answered, "{a:?}");
                spot_attempts += 1;
            }
        }
    }
    assert_eq!(spot_attempts, reclaimed);
    let lease_totals = rt2.store.lease_totals().unwrap();
    assert_eq!(lease_totals, (0, 0), "capacity must be released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn application_errors_follow_the_retry_policy_and_fail_the_job_not_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    rt.register_pipeline(&shell_pipeline(2)).unwrap();
    let csv = write(
        dir.path(),
        "in.csv",
        "group,n,fail\na,1,false\na,2,false\nb,5,true\nb,7,false\n",
    );
    let started = submit(&rt, &csv, "shell/in.csv").await;
    let job = wait_job(&rt, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Failed);
    let reason = job.reason.clone().unwrap();
    assert!(
        reason.starts_with(
            "stage 'tasks': 1 of 4 tasks failed: tasks_t-00002 (Sluice.RetriesExhausted"
        ),
        "{reason}"
    );
    let tasks = rt.services.jobs.list_tasks(&job.id).await.unwrap();
    let failed = &tasks[2];
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(
        failed.attempts, 2,
        "task_failed_attempts = 2 means exactly one retry"
    );
    assert!(
        tasks
            .iter()
            .filter(|t| t.id != failed.id)
            .all(|t| t.state == TaskState::Succeeded && t.attempts == 1)
    );
    // The stage failed, so the aggregate did not run on a partial input: a redrive after the
    // fix runs the failed task and then the aggregate.
    assert!(job.results.is_empty(), "{:?}", job.results);
    assert_eq!(
        rt.store.lease_totals().unwrap(),
        (0, 0),
        "scale-down runs on the failure path"
    );
    let attempts = rt
        .services
        .jobs
        .list_attempts(&job.id, &failed.id)
        .await
        .unwrap();
    assert!(attempts.iter().all(|a| a.exit_code == Some(3)));
    // Each failed attempt's log holds what it wrote; a task that wrote nothing has no log.
    let logs = dir.path().join("logs").join(job.id.as_str());
    for n in [1, 2] {
        let log = std::fs::read_to_string(logs.join(format!("tasks_t-00002-{n}.log"))).unwrap();
        assert_eq!(log, "boom\n");
    }
    assert!(!logs.join("tasks_t-00000-1.log").exists());
}

/// A stage's `timeout_seconds` is how long an attempt may *run*: attempts launched ahead and
/// waiting for the one slot do not spend it (four 1.2 s tasks behind each other, 2 s each),
/// and a run past it is stopped by the pool, recorded as timed out and retried within the
/// application budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_counts_from_the_start_of_the_run_not_the_launch() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    let text = r#"
name = "timed"
[input]
columns = { seconds = "string" }
[task]
command = ["sh", "-c", "sleep {seconds} && echo '{{}}' > {output}"]
timeout_seconds = 2
[parallelism]
max = 1
[retry]
task_failed_attempts = 2
"#;
    rt.register_pipeline(&PipelineConfig::from_toml("timed.toml", text).unwrap())
        .unwrap();
    let csv = write(dir.path(), "in.csv", "seconds\n1.2\n1.2\n1.2\n1.2\n30\n");
    let started = submit(&rt, &csv, "timed/in.csv").await;
    let job = wait_job(&rt, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Failed);
    let tasks = rt.services.jobs.list_tasks(&job.id).await.unwrap();
    let (hung, quick) = tasks.split_last().unwrap();
    for t in quick {
        assert_eq!(
            (t.state, t.attempts),
            (TaskState::Succeeded, 1),
            "{}: waited behind the others, still within its time",
            t.id
        );
        // And its record says so: the run the STOPPED event reports, not launch to stop
        // (up to 4.8 s for the last of them, over the 2 s timeout).
        let attempt = &rt
            .services
            .jobs
            .list_attempts(&job.id, &t.id)
            .await
            .unwrap()[0];
        let ran = attempt.stopped_at.unwrap() - attempt.started_at;
        assert!(
            ran < chrono::Duration::seconds(2),
            "{}: recorded as running {ran} against a 2 s timeout",
            t.id
        );
    }
    assert_eq!(hung.state, TaskState::Failed);
    let attempts = rt
        .services
        .jobs
        .list_attempts(&job.id, &hung.id)
        .await
        .unwrap();
    let states: Vec<_> = attempts.iter().map(|a| a.state).collect();
    assert_eq!(
        states,
        [AttemptState::TimedOut, AttemptState::TimedOut],
        "stopped at its timeout, retried once, stopped again"
    );
    let reason = attempts[1].stopped_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("exceeded timeout: ran longer than 2 s"),
        "{reason}"
    );
    let last_error = hung.last_error.clone().unwrap_or_default();
    assert!(
        last_error.starts_with("Sluice.RetriesExhausted"),
        "{last_error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_csv_fails_the_job_with_file_line_and_column_and_keeps_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    rt.register_pipeline(&shell_pipeline(1)).unwrap();
    let csv = write(
        dir.path(),
        "bad.csv",
        "group,n,fail\na,1,false\nb,two,false\n",
    );
    let started = submit(&rt, &csv, "shell/bad.csv").await;
    let job = wait_job(&rt, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(
        job.reason.as_deref(),
        Some("bad.csv:3:2: column 'n': 'two' is not an integer")
    );
    let kept = rt
        .buckets
        .get_sync("sluice-ingest", "shell/bad.csv")
        .unwrap();
    assert_eq!(kept, std::fs::read(&csv).unwrap());
    let outcome = rt
        .engine
        .execution(job.execution_arn.as_deref().unwrap())
        .unwrap()
        .wait()
        .await;
    assert_eq!(outcome.status.as_str(), "FAILED");
    assert_eq!(outcome.error.as_deref(), Some("Sluice.InvalidInput"));
    assert_eq!(rt.store.lease_totals().unwrap(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_upload_delivered_twice_is_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    rt.register_pipeline(&shell_pipeline(1)).unwrap();
    let csv = write(dir.path(), "in.csv", "group,n,fail\na,1,false\n");
    let event = rt.upload(&csv, "shell/in.csv").unwrap();
    let first = rt.deliver(event.clone()).await.unwrap();
    let second = rt.deliver(event).await.unwrap();
    assert_eq!(first["status"], "started");
    assert_eq!(second["status"], "duplicate");
    assert_eq!(first["jobId"], second["jobId"]);
    let job = wait_job(&rt, first["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Succeeded);
    let third = rt.deliver(rt_event_again(&rt, &csv)).await.unwrap();
    assert_ne!(third["jobId"], first["jobId"], "a new upload is a new job");
    assert_eq!(rt.services.jobs.list_jobs(10).await.unwrap().len(), 2);
}

fn rt_event_again(rt: &LocalRuntime, csv: &Path) -> Value {
    std::thread::sleep(Duration::from_millis(2));
    rt.upload(csv, "shell/in.csv").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_pipeline_and_hostile_keys_are_recorded_as_failed_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    let csv = write(dir.path(), "in.csv", "a\n1\n");
    let r = submit(&rt, &csv, "nosuch/in.csv").await;
    assert_eq!(r["status"], "rejected");
    let job = rt
        .services
        .jobs
        .get_job(&JobId::new(r["jobId"].as_str().unwrap()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert!(job.reason.unwrap().contains("unknown pipeline 'nosuch'"));

    let event = json!({"version": "0", "id": "x", "detail-type": "Object Created", "source": "aws.s3",
        "time": "2026-11-22T00:00:00Z", "resources": [],
        "detail": {"bucket": {"name": "sluice-ingest"}, "object": {"key": "ber/../../etc/passwd.csv", "etag": "e", "sequencer": "1"}}});
    let r = rt.deliver(event).await.unwrap();
    assert_eq!(r["status"], "rejected");
    assert!(r["reason"].as_str().unwrap().contains("'..'"), "{r}");

    let truncated =
        json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {}}});
    let err = rt.deliver(truncated).await.unwrap_err();
    assert!(
        err.cause.contains("truncated Object Created event"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_events_ignore_duplicates_and_unknown_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    rt.register_pipeline(&shell_pipeline(1)).unwrap();
    let csv = write(dir.path(), "in.csv", "group,n,fail\na,1,false\n");
    let started = submit(&rt, &csv, "shell/in.csv").await;
    let job = wait_job(&rt, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Succeeded);

    // Redeliver the STOPPED event the pool emitted: nothing changes. The job's end is answered
    // before it is committed, and the event log is written at the commit (another process,
    // which reads only committed state, always finds the events there): commit first.
    rt.store.flushed().await.unwrap();
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let stopped: Value = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["detail"]["lastStatus"] == "STOPPED")
        .expect("no STOPPED event logged");
    let report = rt.invoke("task-events", stopped.clone()).await.unwrap();
    assert_eq!(report["classification"], "succeeded");
    assert!(
        report["action"]
            .as_str()
            .unwrap()
            .starts_with("ignored: duplicate"),
        "{report}"
    );
    let task = &rt.services.jobs.list_tasks(&job.id).await.unwrap()[0];
    assert_eq!((task.state, task.attempts), (TaskState::Succeeded, 1));

    // An event for a task sluice never launched.
    let mut foreign = stopped;
    foreign["detail"]["overrides"] = json!({"containerOverrides": []});
    foreign["detail"]["taskArn"] = json!("arn:aws:ecs:us-east-1:111122223333:task/other/abc");
    foreign["detail"]["stopCode"] = json!("SpotInterruption");
    let report = rt.invoke("task-events", foreign).await.unwrap();
    assert_eq!(report["classification"], "spot-interrupted");
    assert!(
        report["action"]
            .as_str()
            .unwrap()
            .contains("not a task sluice knows"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rerunning_a_failed_job_relaunches_only_the_failed_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    let fixed = dir.path().join("fixed");
    let mut cfg = shell_pipeline(1);
    // The row marked to fail fails until the "fix" file exists.
    cfg.stages[0].command[2] = cfg.stages[0].command[2].replace(
        "if [ {fail} = true ]",
        "if [ {fail} = true ] && [ ! -e \"$FIXED\" ]",
    );
    cfg.stages[0]
        .env
        .insert("FIXED".into(), fixed.to_string_lossy().into_owned());
    rt.register_pipeline(&cfg).unwrap();
    let csv = write(dir.path(), "in.csv", "group,n,fail\na,1,false\nb,5,true\n");
    let started = submit(&rt, &csv, "shell/in.csv").await;
    let job = wait_job(&rt, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Failed);

    // Fix the cause, then re-run the execution with the same input, as from the console.
    std::fs::write(&fixed, "").unwrap();
    let input = rt
        .engine
        .describe_execution(job.execution_arn.as_deref().unwrap())
        .unwrap()
        .input;
    let rerun = rt
        .engine
        .start_execution(rt.machine.clone(), Some(format!("{}-rerun", job.id)), input)
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), rerun.wait())
        .await
        .unwrap();
    assert_eq!(outcome.status.as_str(), "SUCCEEDED", "{outcome:?}");
    let job = rt.services.jobs.get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.reason);
    let tasks = rt.services.jobs.list_tasks(&job.id).await.unwrap();
    assert_eq!(tasks[0].attempts, 1, "a succeeded task is not recomputed");
    assert_eq!(tasks[1].attempts, 2);
    assert_eq!(results_csv(&rt, &job), "group,tasks,n\na,1,1\nb,1,5\n");
}

/// A three-stage pipeline of shell one-liners run in `dir`: clean the input (drop lines with
/// "bad"), sum its rows in chunks of two (non-integers rejected), merge the partial sums. Each
/// task appends to `runs.log`, and a chunk fails while `fail-<chunk>` exists in `dir`.
fn staged_pipeline(dir: &Path, webhook: &str) -> PipelineConfig {
    let text = format!(
        r#"
name = "staged"
directory = "{dir}"
[retry]
task_failed_attempts = 1
[[stage]]
name = "clean"
command = ["sh", "-c", "echo clean >> runs.log; grep -v bad \"$1\" > \"$2\"", "-", "{{input}}", "{{output}}"]
file = "clean.csv"
[[stage]]
name = "analyse"
for_each = "clean"
chunk = 2
columns = {{ n = "integer" }}
bad_rows = "skip"
command = ["sh", "-c", "echo analyse-{{chunk}} >> runs.log; [ -e fail-{{chunk}} ] && exit 3; tail -n +2 \"$1\" | awk '{{{{s += $1}}}} END {{{{printf \"{{{{\\\"sum\\\": %d}}}}\", s}}}}' > \"$2\"", "-", "{{rows}}", "{{output}}"]
[[stage]]
name = "merge"
command = ["sh", "-c", "echo merge >> runs.log; cat \"$1\"*.json > \"$2\"", "-", "{{stages.analyse}}", "{{output}}"]
file = "merged.txt"
[notify]
webhook = "{webhook}"
command = ["sh", "-c", "cat > notified-$1.json", "-", "{{status}}"]
"#,
        dir = dir.display()
    );
    PipelineConfig::from_toml("staged.toml", &text).unwrap()
}

/// An HTTP endpoint that accepts every POST and hands each body over the channel.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
        }
    });
    (url, rx)
}

/// Waits until the job is final and its execution has settled in this runtime.
async fn wait_final(rt: &LocalRuntime, id: &JobId) -> sluice_core::Job {
    wait_final_after(rt, id, 0).await
}

/// As [`wait_final`], for the run after the job's `redrives`-th redrive.
async fn wait_final_after(rt: &LocalRuntime, id: &JobId, redrives: u32) -> sluice_core::Job {
    for _ in 0..2400 {
        let job = rt.services.jobs.get_job(id).await.unwrap().unwrap();
        if job.state.is_final()
            && job.redrive_count >= redrives
            && job
                .execution_arn
                .as_deref()
                .is_some_and(|arn| rt.settled(arn).is_some())
        {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

fn runs(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(dir.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stages_pass_outputs_on_reject_bad_rows_and_notify_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("pipeline");
    std::fs::create_dir_all(&home).unwrap();
    let rt = runtime(&dir.path().join("work"), None);
    let (url, hooks) = webhook_receiver();
    rt.register_pipeline(&staged_pipeline(&home, &url)).unwrap();
    let csv = write(dir.path(), "in.csv", "n\n1\n2\nbad\n3\nx\n4\n");
    let started = submit(&rt, &csv, "staged/in.csv").await;
    let id = JobId::new(started["jobId"].as_str().unwrap()).unwrap();
    let job = wait_final(&rt, &id).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.reason);

    // clean dropped "bad"; analyse rejected "x" and summed [1, 2] and [3, 4]; merge joined them.
    let merged = job
        .results
        .iter()
        .find(|r| r.key.ends_with("merged.txt"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(rt.path_of(merged).unwrap()).unwrap(),
        "{\"sum\": 3}{\"sum\": 7}"
    );
    let rejects = job
        .results
        .iter()
        .find(|r| r.key.ends_with("rejects.csv"))
        .unwrap();
    assert!(rejects.key.contains("/stages/analyse/"), "{rejects}");
    let rejected = std::fs::read_to_string(rt.path_of(rejects).unwrap()).unwrap();
    assert_eq!(
        rejected,
        "line,reason,row\n5,column 1: column 'n': 'x' is not an integer,x\n"
    );
    assert_eq!(runs(&home), ["analyse-0", "analyse-1", "clean", "merge"]);
    assert_eq!(job.task_count, 4, "clean, two chunks, merge");

    let hook = hooks
        .recv_timeout(Duration::from_secs(10))
        .expect("webhook POSTed");
    let text = hook["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("sluice job {id} (staged) SUCCEEDED: 4 of 4 tasks")),
        "{text}"
    );
    assert!(text.contains("merged.txt"), "{text}");
    let note: Value = serde_json::from_str(
        &std::fs::read_to_string(home.join("notified-SUCCEEDED.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(note["job_id"], id.as_str());
    assert!(
        hooks.recv_timeout(Duration::from_millis(300)).is_err(),
        "announced once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_stage_stops_the_job_and_a_redrive_resumes_there() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("pipeline");
    std::fs::create_dir_all(&home).unwrap();
    let rt = runtime(&dir.path().join("work"), None);
    let (url, hooks) = webhook_receiver();
    rt.register_pipeline(&staged_pipeline(&home, &url)).unwrap();
    std::fs::write(home.join("fail-1"), "").unwrap();
    let csv = write(dir.path(), "in.csv", "n\n1\n2\n3\n4\n");
    let started = submit(&rt, &csv, "staged/in.csv").await;
    let id = JobId::new(started["jobId"].as_str().unwrap()).unwrap();
    let job = wait_final(&rt, &id).await;
    assert_eq!(job.state, JobState::Failed);
    let reason = job.reason.clone().unwrap();
    assert!(
        reason.starts_with(
            "stage 'analyse': 1 of 2 tasks failed: analyse_c-00001 (Sluice.RetriesExhausted"
        ),
        "{reason}"
    );
    assert_eq!(
        runs(&home),
        ["analyse-0", "analyse-1", "clean"],
        "merge never ran"
    );
    let hook = hooks
        .recv_timeout(Duration::from_secs(10))
        .expect("failure announced");
    assert_eq!(hook["job"]["status"], "FAILED");

    // Fix the cause and continue: only the failed chunk and the stages after it run.
    std::fs::remove_file(home.join("fail-1")).unwrap();
    let redrive = rt.redrive(&id).await.unwrap();
    assert_eq!(
        redrive.from_state, None,
        "a Fail-state end continues from the start"
    );
    let job = wait_final_after(&rt, &id, 1).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.reason);
    assert_eq!(
        runs(&home),
        ["analyse-0", "analyse-1", "analyse-1", "clean", "merge"],
        "clean and chunk 0 were not run again"
    );
    let merged = job
        .results
        .iter()
        .find(|r| r.key.ends_with("merged.txt"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(rt.path_of(merged).unwrap()).unwrap(),
        "{\"sum\": 3}{\"sum\": 7}"
    );
    let hook = hooks
        .recv_timeout(Duration::from_secs(10))
        .expect("success announced");
    assert_eq!(hook["job"]["status"], "SUCCEEDED");
}

/// A task's output goes to its log while it runs; a background process it leaves behind, still
/// holding stdout, does not keep the attempt open: the attempt ends when the task's process
/// does, with what was written by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_leaves_a_process_holding_its_output_still_ends_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path(), None);
    let text = r#"
name = "background"
[input]
columns = { n = "integer" }
[task]
command = ["sh", "-c", "echo 'task {n} starts'; sleep 60 & echo 'task {n} done' >&2; echo '{{}}' > {output}"]
timeout_seconds = 30
"#;
    rt.register_pipeline(&PipelineConfig::from_toml("background.toml", text).unwrap())
        .unwrap();
    let csv = write(dir.path(), "in.csv", "n\n1\n2\n");
    let began = std::time::Instant::now();
    let started = submit(&rt, &csv, "background/in.csv").await;
    let job = wait_job(&rt, started["jobId"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.reason);
    // Not held open until the `sleep 60` ends (generous: the tasks take milliseconds).
    assert!(
        began.elapsed() < Duration::from_secs(25),
        "{:?}",
        began.elapsed()
    );
    // Quick and successful: each log is a block of the job's succeeded.log.
    let logs = dir.path().join("logs").join(job.id.as_str());
    for (task, n) in [("tasks_t-00000", 1), ("tasks_t-00001", 2)] {
        let log = sluice_local::tasklog::find(&logs, &format!("{task}-1.log")).unwrap();
        let want = format!("task {n} starts\ntask {n} done\n").into_bytes();
        assert_eq!(log, Some(sluice_local::tasklog::AttemptLog::Block(want)));
    }
}
