//! `examples/daily-csv` end to end, as `make demo-daily` runs it: the real `sluice` binary runs
//! the real pipeline file and its Python scripts on the committed day of sales, in a copy of the
//! example (the record stage and the notification write next to the pipeline file).
//!
//! Every expected number is computed here, from the raw input CSV, by an implementation of the
//! cleaning rules written in clean.py's header (not by running the scripts): the report, the
//! rejects and the SQLite record must all agree with it.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const INPUT: &str = "data/sales-2026-12-01.csv";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/daily-csv")
}

/// The example copied into a temporary directory, without anything a local run left in `out/`.
fn copy_example() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == "out" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &to.join(&name));
            } else {
                // std::fs::copy keeps the permission bits: the scripts stay executable.
                std::fs::copy(entry.path(), to.join(&name)).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&example(), dir.path());
    dir
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

/// `sluice run` on `input` in the copied example `root`; returns the job's `status --json`.
fn run(root: &Path, input: &Path, expect_exit: i32) -> Value {
    let work = root.join("work");
    let out = sluice(&[
        "run",
        input.to_str().unwrap(),
        "--pipeline",
        root.join("pipeline.toml").to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(expect_exit), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job = stdout
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .unwrap_or_else(|| panic!("no job line in {stdout}"))
        .trim()
        .to_string();
    let status = sluice(&[
        "status",
        &job,
        "--workdir",
        work.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    serde_json::from_slice(&status.stdout).unwrap()
}

/// The local file behind one of the job's recorded results whose key ends with `suffix`.
fn result(root: &Path, status: &Value, suffix: &str) -> PathBuf {
    let results = status["job"]["results"].as_array().expect("results");
    let r = results
        .iter()
        .find(|r| r["key"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no result ending in {suffix}: {results:?}"));
    root.join("work/buckets")
        .join(r["bucket"].as_str().unwrap())
        .join(r["key"].as_str().unwrap())
}

/// Totals of one (date, region).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    rows: i64,
    quantity: i64,
    cents: i64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.rows += other.rows;
        self.quantity += other.quantity;
        self.cents += other.cents;
    }
}

/// What the input should give: totals per (date, region) including the `ALL` row of each
/// date, and the bad rows by line with the column sluice should name.
struct Expected {
    totals: BTreeMap<(String, String), Totals>,
    bad: BTreeMap<u64, &'static str>,
    repaired: usize,
}

/// "12.35" -> 1235; the data has two decimals, anything else is a mistake in the data.
fn to_cents(price: &str) -> i64 {
    let (units, hundredths) = price.split_once('.').expect("a price with decimals");
    assert_eq!(hundredths.len(), 2, "price {price}: two decimals");
    units.parse::<i64>().unwrap() * 100 + hundredths.parse::<i64>().unwrap()
}

/// clean.py's rules, independently: trim, MM/DD/YYYY -> ISO, title-case regions, fill a
/// missing region from the store's other rows, drop "$" and well-placed thousands separators.
/// A row is bad when it does not have six cells, its quantity is not an integer or its price is
/// not a number (what the analyse stage's `columns` declare).
fn expected(input: &Path) -> Expected {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(input)
        .unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "date",
            "store",
            "region",
            "product",
            "quantity",
            "unit_price"
        ]
    );
    let rows: Vec<(u64, Vec<String>)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let line = r.position().unwrap().line();
            (line, r.iter().map(|c| c.trim().to_string()).collect())
        })
        .collect();

    let title = |s: &str| {
        let mut c = s.chars();
        c.next().map_or(String::new(), |f| {
            f.to_uppercase()
                .chain(c.flat_map(char::to_lowercase))
                .collect()
        })
    };
    let mut region_of: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (_, cells) in &rows {
        if cells.len() == 6 && !cells[2].is_empty() {
            region_of
                .entry(cells[1].clone())
                .or_default()
                .insert(title(&cells[2]));
        }
    }

    let mut out = Expected {
        totals: BTreeMap::new(),
        bad: BTreeMap::new(),
        repaired: 0,
    };
    let raw: Vec<String> = std::fs::read_to_string(input)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for (line, cells) in rows {
        if cells.len() != 6 {
            out.bad.insert(line, "fields");
            continue;
        }
        let date = match cells[0].split('/').collect::<Vec<_>>()[..] {
            [m, d, y] => format!("{y}-{m:0>2}-{d:0>2}"),
            _ => cells[0].clone(),
        };
        let region = if cells[2].is_empty() {
            let regions = &region_of[&cells[1]];
            assert_eq!(regions.len(), 1, "store {} in one region", cells[1]);
            regions.first().unwrap().clone()
        } else {
            title(&cells[2])
        };
        let mut price = cells[5].trim_start_matches('$').to_string();
        let (int_part, _) = price.split_once('.').unwrap_or((&price, ""));
        let groups: Vec<&str> = int_part.split(',').collect();
        if groups.len() > 1
            && (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|g| g.len() == 3)
        {
            price = price.replace(',', "");
        }
        let Ok(quantity) = cells[4].parse::<i64>() else {
            out.bad.insert(line, "'quantity'");
            continue;
        };
        if price.parse::<f64>().map(f64::is_finite) != Ok(true) {
            out.bad.insert(line, "'unit_price'");
            continue;
        }
        let cleaned = [&date, &cells[1], &region, &cells[3], &cells[4], &price].map(|s| s.as_str());
        if raw[line as usize - 1] != cleaned.join(",") {
            out.repaired += 1;
        }
        let t = Totals {
            rows: 1,
            quantity,
            cents: quantity * to_cents(&price),
        };
        out.totals.entry((date.clone(), region)).or_default().add(t);
        out.totals.entry((date, "ALL".into())).or_default().add(t);
    }
    out
}

/// report.csv: (date, region) -> totals, the revenue read back into cents.
fn read_report(path: &Path) -> BTreeMap<(String, String), Totals> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["date", "region", "rows", "quantity", "revenue"]
    );
    let mut report = BTreeMap::new();
    for r in reader.records() {
        let r = r.unwrap();
        let t = Totals {
            rows: r[2].parse().unwrap(),
            quantity: r[3].parse().unwrap(),
            cents: to_cents(&r[4]),
        };
        let dup = report.insert((r[0].to_string(), r[1].to_string()), t);
        assert!(dup.is_none(), "one row per (date, region): {r:?}");
    }
    report
}

/// The daily_sales table: (date, region) -> (totals, job id).
fn read_db(path: &Path) -> BTreeMap<(String, String), (Totals, String)> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut stmt = db
        .prepare("SELECT date, region, rows, quantity, revenue_cents, job_id FROM daily_sales")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            (r.get(0)?, r.get(1)?),
            (
                Totals {
                    rows: r.get(2)?,
                    quantity: r.get(3)?,
                    cents: r.get(4)?,
                },
                r.get(5)?,
            ),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn notifications(root: &Path) -> Vec<Value> {
    let path = root.join("out/notifications.jsonl");
    let log = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (did the [notify] command run?)", path.display()));
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_daily_csv_example_cleans_analyses_merges_records_and_notifies() {
    let dir = copy_example();
    let root = dir.path();
    let input = root.join(INPUT);
    let want = expected(&input);
    // The data exercises every path: repairs, rejects, and more rows than one chunk.
    assert!(want.repaired >= 10, "repaired rows: {}", want.repaired);
    assert!(want.bad.len() >= 5, "bad rows: {:?}", want.bad);
    let all: Totals = want
        .totals
        .iter()
        .filter(|((_, region), _)| region == "ALL")
        .map(|(_, t)| *t)
        .fold(Totals::default(), |mut a, t| {
            a.add(t);
            a
        });
    assert!(all.rows > 100, "good rows: {}", all.rows);

    let status = run(root, &input, 0);
    let job = status["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(status["job"]["state"], "SUCCEEDED", "{status:#}");
    let tasks = status["tasks"].as_array().unwrap();
    let analyse = tasks.iter().filter(|t| t["stage"] == "analyse").count() as i64;
    assert_eq!(
        analyse,
        (all.rows + 49) / 50,
        "chunk = 50 over the good rows"
    );
    assert!(
        tasks.iter().all(|t| t["state"] == "SUCCEEDED"),
        "{tasks:#?}"
    );

    // The report: every region of every date, and the day's total, to the cent.
    let report = read_report(&result(root, &status, "merge/output/report.csv"));
    assert_eq!(report, want.totals);

    // rejects.csv: exactly the bad rows, by input line (clean.py keeps rows line for line),
    // each with a reason naming what is wrong.
    let mut rejects = csv::Reader::from_path(result(root, &status, "analyse/rejects.csv")).unwrap();
    assert_eq!(rejects.headers().unwrap(), vec!["line", "reason", "row"]);
    let mut rejected = BTreeMap::new();
    for r in rejects.records() {
        let r = r.unwrap();
        rejected.insert(r[0].parse::<u64>().unwrap(), r[1].to_string());
    }
    assert_eq!(
        rejected.keys().collect::<Vec<_>>(),
        want.bad.keys().collect::<Vec<_>>(),
        "{rejected:#?}"
    );
    for (line, what) in &want.bad {
        assert!(
            rejected[line].contains(what),
            "line {line}: '{}' should name {what}",
            rejected[line]
        );
    }

    // The record: one row per (date, region) with the report's numbers, from this job.
    let db = root.join("out/sales.sqlite");
    let recorded = read_db(&db);
    assert_eq!(
        recorded
            .iter()
            .map(|(k, (t, _))| (k.clone(), *t))
            .collect::<BTreeMap<_, _>>(),
        want.totals
    );
    assert!(recorded.values().all(|(_, j)| *j == job), "{recorded:?}");

    // The notification: one entry, for this job.
    let sent = notifications(root);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["job_id"], job.as_str());
    assert_eq!(sent[0]["status"], "SUCCEEDED");

    // The same day again: the record is replaced, not added to; a second notification.
    let again = run(root, &input, 0);
    let job2 = again["job"]["id"].as_str().unwrap().to_string();
    assert_ne!(job2, job);
    let recorded = read_db(&db);
    assert_eq!(recorded.len(), want.totals.len());
    assert!(recorded.values().all(|(_, j)| *j == job2), "{recorded:?}");
    assert_eq!(
        recorded
            .into_iter()
            .map(|(k, (t, _))| (k, t))
            .collect::<BTreeMap<_, _>>(),
        want.totals
    );
    let sent = notifications(root);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1]["job_id"], job2.as_str());
}

#[test]
fn a_landed_file_without_a_price_column_fails_the_job_at_clean_with_the_reason() {
    let dir = copy_example();
    let root = dir.path();
    let input = root.join("data/sales-2026-12-02.csv");
    std::fs::write(
        &input,
        "date,store,region,product,quantity\n2026-12-02,S01,North,descaler,2\n",
    )
    .unwrap();
    let status = run(root, &input, 1);
    assert_eq!(status["job"]["state"], "FAILED", "{status:#}");
    let job = status["job"]["id"].as_str().unwrap();
    let clean = status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["stage"] == "clean")
        .expect("the clean task");
    assert_eq!(clean["state"], "FAILED", "{clean:#}");
    assert!(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["stage"] == "clean"),
        "no later stage ran: {status:#}"
    );
    let log = std::fs::read_to_string(root.join(format!("work/logs/{job}/clean-1.log"))).unwrap();
    assert!(
        log.contains("lacks column(s) unit_price"),
        "clean.py says what is wrong: {log}"
    );
    assert!(
        !root.join("out/sales.sqlite").exists(),
        "nothing recorded for a failed day"
    );
    let sent = notifications(root);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["status"], "FAILED");
}

/// Each script on its own, on input it must refuse: exit 2 and a message naming the problem.
#[test]
fn every_script_refuses_bad_input_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = |name: &str, body: &str| {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let out = |name: &str| d.join(name).to_str().unwrap().to_string();
    std::fs::create_dir(d.join("empty")).unwrap();
    std::fs::create_dir(d.join("parts")).unwrap();
    std::fs::write(d.join("parts/c-00000.json"), "{\"chunk\": 0, \"rows\": 1}").unwrap();

    let header = "date,store,region,product,quantity,unit_price\n";
    let cases: Vec<(&str, Vec<String>, &str, &str)> = vec![
        (
            "clean.py",
            vec![file("e.csv", ""), out("o")],
            "",
            "empty file",
        ),
        (
            "clean.py",
            vec![file("h.csv", "date,store\n1,2\n"), out("o")],
            "",
            "lacks column(s) region, product, quantity, unit_price",
        ),
        (
            "clean.py",
            vec![out("missing.csv"), out("o")],
            "",
            "no such file",
        ),
        (
            "analyse.py",
            vec![
                file(
                    "q.csv",
                    &format!("{header}2026-12-01,S01,North,x,many,1.00\n"),
                ),
                out("o"),
                "0".into(),
            ],
            "",
            "q.csv:2: quantity 'many' is not an integer",
        ),
        (
            "analyse.py",
            vec![
                file("p.csv", &format!("{header}2026-12-01,S01,North,x,1,inf\n")),
                out("o"),
                "0".into(),
            ],
            "",
            "unit_price 'inf' is not a price",
        ),
        (
            "merge.py",
            vec![out("empty"), out("o")],
            "",
            "no .json partials",
        ),
        (
            "merge.py",
            vec![out("parts"), out("o")],
            "",
            "not an analyse partial",
        ),
        (
            "record.py",
            vec![
                file(
                    "r.csv",
                    "date,region,rows,quantity,revenue\n2026-12-01,East,1,2,3.4\n",
                ),
                out("db.sqlite"),
                "job".into(),
            ],
            "",
            "revenue '3.4' is not an amount",
        ),
        (
            "notify.py",
            vec![out("n.jsonl"), "job".into(), "SUCCEEDED".into()],
            "not json",
            "not JSON",
        ),
        (
            "notify.py",
            vec![out("n.jsonl"), "job".into(), "SUCCEEDED".into()],
            "",
            "no job summary",
        ),
    ];
    for (script, args, stdin, message) in cases {
        let mut child = Command::new(example().join("scripts").join(script))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{script} {args:?}: {err}");
        assert!(
            err.contains(message),
            "{script} {args:?}: '{err}' should say '{message}'"
        );
    }
    assert!(!d.join("db.sqlite").exists(), "record.py wrote nothing");
    assert!(!d.join("n.jsonl").exists(), "notify.py wrote nothing");
}
