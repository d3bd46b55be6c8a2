//! The web console in a real browser: `sluice serve --watch inbox --ui 127.0.0.1:0` as a user
//! starts it, driven through headless Chromium over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by `make test-tools`).
//!
//! One walk through what a user does without the CLI: a BER CSV dropped into the inbox is
//! followed on the jobs page to SUCCEEDED (live, no reload) and on its page to its plot; a
//! second job is started by uploading a CSV in the page; a broken job's failed task is found
//! with "failed only" and its log read in the page; a slow job is cancelled and redriven with
//! the page's buttons (and their confirmations).
//!
//! Without chromedriver the test fails and says how to install it: a browser test that passes
//! because there is no browser would prove nothing. `SLUICE_SKIP_BROWSER_TESTS=1` skips it,
//! loudly, on a machine that cannot have a browser.
//!
//! `SLUICE_CONSOLE_SCREENSHOTS=DIR` also saves the jobs page and the BER job's page as
//! `DIR/console-jobs.png` and `DIR/console-job.png` (how docs/img is made).

use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// Tasks sleep `pause` seconds; the row whose `n` is `fail` fails, saying so on stderr.
const SHELL_PIPELINE: &str = r#"
name = "shell"
description = "rows of numbers, summed"
[input]
columns = { n = "integer" }
[params]
pause = "0"
fail = -1
[task]
command = ["sh", "-c", "sleep {pause}; if [ {n} -eq {fail} ]; then echo \"row {n} is broken\" >&2; exit 3; fi; printf '{{\"k\": \"x\", \"n\": %s}}' {n} > {output}"]
[parallelism]
max = 2
[retry]
task_failed_attempts = 1
[aggregate]
group_by = "k"
sum = ["n"]
"#;

fn repo() -> PathBuf {
    // Canonical: a file input takes only canonical paths.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Processes this test started, stopped when it ends however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromedriver"))
        .find(|p| p.is_file())
}

/// Waits (bounded) until `probe` returns `Some`, re-checking every 100 ms.
async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the first element matching `css`, if there is one.
async fn text(c: &Client, css: &str) -> Option<String> {
    let v = c
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![serde_json::json!(css)],
        )
        .await
        .ok()?;
    v.as_str().map(str::to_string)
}

async fn count(c: &Client, css: &str) -> usize {
    c.execute(
        "return document.querySelectorAll(arguments[0]).length;",
        vec![serde_json::json!(css)],
    )
    .await
    .ok()
    .and_then(|v| v.as_u64())
    .unwrap_or(0) as usize
}

async fn wait_text(c: &Client, css: &str, want: &str) {
    wait_for(&format!("'{want}' in {css}"), || async {
        text(c, css).await.filter(|t| t.contains(want)).map(|_| ())
    })
    .await
}

/// Starts a job from the jobs page: pipeline, CSV file, params to override.
async fn trigger(
    c: &Client,
    console: &str,
    pipeline: &str,
    csv: &Path,
    params: &[(&str, &str)],
) -> String {
    c.goto(console).await.unwrap();
    // The form is folded away once there are jobs.
    c.execute(
        "document.getElementById('trigger-box').open = true;",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("pipeline"))
        .await
        .unwrap()
        .select_by_value(pipeline)
        .await
        .unwrap();
    c.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    if !params.is_empty() {
        c.execute(
            "document.querySelector('#trigger details').open = true;",
            vec![],
        )
        .await
        .unwrap();
        for (name, value) in params {
            c.find(Locator::Css(&format!("input[name='param.{name}']")))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
    }
    c.find(Locator::Id("start"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page goes to the new job's page.
    let url = wait_for("the new job's page", || async {
        c.current_url()
            .await
            .ok()
            .filter(|u| u.path().starts_with("/jobs/"))
    })
    .await;
    url.path().trim_start_matches("/jobs/").to_string()
}

async fn screenshot(c: &Client, dir: &Option<PathBuf>, name: &str) {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).unwrap();
        let png = c.screenshot().await.unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_follows_starts_inspects_cancels_and_redrives_jobs_in_the_browser() {
    let Some(driver) = chromedriver() else {
        if std::env::var_os("SLUICE_SKIP_BROWSER_TESTS").is_some() {
            eprintln!(
                "\n*** SKIPPED: the console's browser test (SLUICE_SKIP_BROWSER_TESTS is set) ***\n"
            );
            return;
        }
        panic!(
            "chromedriver is not on PATH: the console's browser test needs Chromium and its \
             WebDriver. Install them with `make test-tools` (Debian/Ubuntu: \
             `apt-get install chromium chromium-driver`), or set SLUICE_SKIP_BROWSER_TESTS=1 \
             to skip this test on a machine that cannot have a browser."
        );
    };
    let shots = std::env::var_os("SLUICE_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    let root = &dir.path().canonicalize().unwrap();
    std::fs::write(root.join("shell.toml"), SHELL_PIPELINE).unwrap();
    let inbox = root.join("inbox");
    let mut children = Children(Vec::new());

    // The console, as a user starts it.
    let mut serve = Command::new(SLUICE)
        .args(["serve", "--watch"])
        .arg(&inbox)
        .arg("--pipeline")
        .arg(repo().join("examples/ber/pipeline.toml"))
        .arg("--pipeline")
        .arg(root.join("shell.toml"))
        .args([
            "--scale",
            "0.01",
            "--poll",
            "0.2",
            "--ui",
            "127.0.0.1:0",
            "--workdir",
        ])
        .arg(root.join("work"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start sluice serve");
    let stderr = serve.stderr.take().unwrap();
    children.0.push(serve);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
            if let Some(url) = line.strip_prefix("console: http") {
                let _ = tx.send(format!("http{url}"));
            }
        }
    });
    let console = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve printed the console's address");
    assert!(console.starts_with("http://127.0.0.1:"), "{console}");

    // The browser.
    let port = free_port();
    children.0.push(
        Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let mut chrome = serde_json::json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"],
    });
    for bin in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(bin).is_file() {
            chrome["binary"] = serde_json::json!(bin);
            break;
        }
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), chrome);
    let webdriver = format!("http://127.0.0.1:{port}");
    let c = wait_for("chromedriver to start a browser", || {
        let caps = caps.clone();
        let webdriver = webdriver.clone();
        async move {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&webdriver)
                .await
                .ok()
        }
    })
    .await;

    // 1. A BER CSV dropped into the inbox shows up on the jobs page and finishes there, live.
    c.goto(&console).await.unwrap();
    wait_text(&c, "h2", "Start a job").await;
    std::fs::create_dir_all(inbox.join("ber")).unwrap();
    std::fs::copy(
        repo().join("examples/ber/ber-job.csv"),
        inbox.join("ber/ber-job.csv"),
    )
    .unwrap();
    wait_text(&c, "#jobs tbody tr .state", "SUCCEEDED").await;
    let ber_job = text(&c, "#jobs tbody tr a").await.unwrap();
    assert!(ber_job.starts_with("ber-"), "{ber_job}");
    // Its page: the graph, every task, the results table and the plot.
    c.find(Locator::LinkText(&ber_job))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#job-state", "SUCCEEDED").await;
    assert_eq!(count(&c, "#tasks tbody tr").await, 200);
    assert_eq!(
        count(&c, "#graph g.node.succeeded[data-state='RunTasks']").await,
        1
    );
    assert_eq!(
        count(&c, "#graph g.node.not-run[data-state='RecordFailure']").await,
        1
    );
    wait_text(&c, "#results-body table", "ebn0_db").await;
    let plot_loaded = c
        .execute(
            "const i = document.querySelector('#results-body img.plot'); return !!i && i.complete && i.naturalWidth > 0;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(plot_loaded, serde_json::json!(true), "the plot is shown");
    if shots.is_some() {
        // Tall enough for the graph, the results table and the plot.
        c.set_window_size(1400, 2150).await.unwrap();
        screenshot(&c, &shots, "console-job.png").await;
        c.set_window_size(1400, 1000).await.unwrap();
    }

    // 2. A second job, started from the page with an uploaded CSV: the same pipeline and file.
    let second = trigger(
        &c,
        &console,
        "ber",
        &repo().join("examples/ber/ber-job.csv"),
        &[],
    )
    .await;
    assert_ne!(second, ber_job);
    wait_text(&c, "#job-state", "SUCCEEDED").await;
    wait_text(&c, "#results-body table", "ebn0_db").await;
    // It went through the inbox like a dropped file.
    assert!(inbox.join("ber/ber-job-2.csv").is_file());

    // 3. A broken job: its failed task's log, read in the page.
    let rows = root.join("rows.csv");
    std::fs::write(&rows, "n\n1\n2\n3\n4\n5\n6\n").unwrap();
    trigger(&c, &console, "shell", &rows, &[("fail", "4")]).await;
    wait_text(&c, "#job-state", "FAILED").await;
    wait_text(&c, "#job-reason", "1 of 6 tasks failed").await;
    // The graph follows the execution's history, which is written in batches a moment after
    // the job's record: wait for it rather than look once.
    wait_for("CloseStage and JobFailed failed in the graph", || async {
        (count(&c, "#graph g.node.failed").await == 2).then_some(())
    })
    .await;
    c.find(Locator::Id("failed-only"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("only the failed task listed", || async {
        (count(&c, "#tasks tbody tr").await == 1).then_some(())
    })
    .await;
    assert_eq!(count(&c, "#tasks tbody tr[data-state='FAILED']").await, 1);
    c.find(Locator::Css("#tasks a.log-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#log-text", "row 4 is broken").await;
    wait_text(&c, "#log-title", "attempt 1").await;

    // 4. A slow job, cancelled, then redriven to the end — with the page's confirmations.
    let slow = root.join("slow.csv");
    std::fs::write(&slow, "n\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n").unwrap();
    let slow_job = trigger(&c, &console, "shell", &slow, &[("pause", "1")]).await;
    wait_text(&c, "#job-state", "RUNNING").await;
    wait_for("the Cancel button", || async {
        (count(&c, "#cancel:not([hidden])").await == 1).then_some(())
    })
    .await;
    c.find(Locator::Id("cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert()
        .await
        .expect("a confirmation before cancelling");
    wait_text(&c, "#job-state", "ABORTED").await;
    wait_for("the Redrive button", || async {
        (count(&c, "#redrive:not([hidden])").await == 1).then_some(())
    })
    .await;
    c.find(Locator::Id("redrive"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert()
        .await
        .expect("a confirmation before redriving");
    wait_text(&c, "#job-state", "SUCCEEDED").await;
    wait_text(&c, "#job-redrives", "1").await;
    wait_text(&c, "#results-body table", "55").await;
    assert!(c.current_url().await.unwrap().path().ends_with(&slow_job));

    // The jobs page lists all four, each in its final state.
    c.goto(&console).await.unwrap();
    wait_for("four jobs listed", || async {
        (count(&c, "#jobs tbody tr").await == 4).then_some(())
    })
    .await;
    assert_eq!(count(&c, "#jobs tbody .state.SUCCEEDED").await, 3);
    assert_eq!(count(&c, "#jobs tbody .state.FAILED").await, 1);
    if shots.is_some() {
        // With the form to start a job unfolded, to show it too.
        c.execute(
            "document.getElementById('trigger-box').open = true;",
            vec![],
        )
        .await
        .unwrap();
        screenshot(&c, &shots, "console-jobs.png").await;
    }
    c.close().await.unwrap();
}
