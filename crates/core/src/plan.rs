//! Planning rows: a CSV (the job's input, or one an earlier stage wrote) becomes tasks, one per
//! row.
//!
//! Everything a user can get wrong in a CSV is reported here with the file, the line and the
//! column (1-based field number and header name), before a single container is launched. Under
//! `bad_rows = "fail"` every bad row is reported (up to [`REPORTED_BAD_ROWS`]) and no task
//! runs; under `"skip"` bad rows become [`Reject`]s for `rejects.csv` and the rest go on.

use crate::ids::TaskId;
use crate::pipeline::{BadRows, ColumnType, InputSchema};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// A row turned into a task: its id within the stage, its position and its typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    pub id: TaskId,
    pub index: u32,
    pub params: BTreeMap<String, Value>,
}

/// A row left out under `bad_rows = "skip"`, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub line: u64,
    /// What is wrong, with the column where there is one.
    pub reason: String,
    /// The row as it was, as CSV.
    pub record: String,
}

/// The rows of an input: the tasks, and the rows that were skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlannedRows {
    pub tasks: Vec<PlannedTask>,
    pub rejects: Vec<Reject>,
    /// The header, for writing row subsets (chunks) back out.
    pub header: Vec<String>,
    /// Each task's row as it was, as CSV (parallel to `tasks`).
    pub records: Vec<String>,
}

/// Longest id a row may give its task (a task's id is `<stage>_<row id>`, at most 100).
pub const MAX_ROW_ID: usize = 64;

/// How many bad rows an error lists before "and N more".
pub const REPORTED_BAD_ROWS: usize = 20;

/// What is wrong with an input, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("{file}:{line}:{column}: {message}")]
    At {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}:{line}: {message}")]
    Line {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// Rows that do not fit the schema (`bad_rows = "fail"`): the first of them, and how many.
    #[error("{}", render_bad_rows(file, rows, *total))]
    BadRows {
        file: String,
        rows: Vec<PlanError>,
        total: usize,
    },
}

fn render_bad_rows(file: &str, rows: &[PlanError], total: usize) -> String {
    if let ([only], 1) = (rows, total) {
        return only.to_string();
    }
    let mut out = format!(
        "{file}: {total} bad row{} (set bad_rows = \"skip\" to leave them out and go on):",
        if total == 1 { "" } else { "s" }
    );
    for r in rows {
        out.push_str(&format!("\n  {r}"));
    }
    if total > rows.len() {
        out.push_str(&format!("\n  ... and {} more", total - rows.len()));
    }
    out
}

/// Parse `csv` (named `file` in errors) into tasks according to `schema`: one per row.
/// Header problems always fail; bad rows fail or are rejected as `schema.bad_rows` says.
pub fn plan_rows(file: &str, csv: &[u8], schema: &InputSchema) -> Result<PlannedRows, PlanError> {
    let file_err = |message: String| PlanError::File {
        file: file.to_string(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_error(file, &e)),
    };
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(file_err("the file is empty: expected a header row".into()));
    }
    let mut seen_headers = HashSet::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            return Err(PlanError::At {
                file: file.into(),
                line: 1,
                column: i as u64 + 1,
                message: "empty column name in the header".into(),
            });
        }
        if !seen_headers.insert(h) {
            return Err(PlanError::At {
                file: file.into(),
                line: 1,
                column: i as u64 + 1,
                message: format!("duplicate column '{h}' in the header"),
            });
        }
    }
    let missing: Vec<&str> = schema
        .columns
        .keys()
        .map(String::as_str)
        .chain(schema.task_id.as_deref())
        .filter(|c| !headers.iter().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        return Err(PlanError::Line {
            file: file.into(),
            line: 1,
            message: format!(
                "missing required column(s) {}; the header has: {}",
                missing.join(", "),
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }

    let mut planned = PlannedRows {
        header: headers.iter().map(str::to_string).collect(),
        ..Default::default()
    };
    let mut bad: Vec<PlanError> = Vec::new();
    let mut bad_total = 0usize;
    let mut ids = HashSet::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            // Only I/O errors remain with a flexible reader over bytes; nothing to skip to.
            Err(e) => return Err(csv_error(file, &e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(<[u8]>::is_empty) {
            continue; // a blank line is not a task
        }
        let index = planned.tasks.len() as u32;
        match plan_row(file, line, index, &headers, &record, schema, &mut ids) {
            Ok(task) => {
                if planned.tasks.len() as u64 >= u64::from(schema.max_tasks) {
                    return Err(PlanError::Line {
                        file: file.into(),
                        line,
                        message: format!(
                            "more than {} rows (input.max_tasks in the pipeline)",
                            schema.max_tasks
                        ),
                    });
                }
                planned.records.push(raw_record(&record));
                planned.tasks.push(task);
            }
            Err(e) => {
                bad_total += 1;
                match schema.bad_rows {
                    BadRows::Fail => {
                        if bad.len() < REPORTED_BAD_ROWS {
                            bad.push(e);
                        }
                    }
                    BadRows::Skip => planned.rejects.push(Reject {
                        line,
                        reason: reason_of(&e),
                        record: raw_record(&record),
                    }),
                }
            }
        }
    }
    if bad_total > 0 && schema.bad_rows == BadRows::Fail {
        return Err(PlanError::BadRows {
            file: file.into(),
            rows: bad,
            total: bad_total,
        });
    }
    if planned.tasks.is_empty() {
        let message = if planned.rejects.is_empty() {
            "no rows: the input has a header but no tasks".to_string()
        } else {
            format!(
                "no good rows: all {} rows were rejected (first: line {}: {})",
                planned.rejects.len(),
                planned.rejects[0].line,
                planned.rejects[0].reason
            )
        };
        return Err(file_err(message));
    }
    Ok(planned)
}

/// Parse `csv` into tasks, failing on the first bad row (the one-stage plan of earlier
/// versions; kept for callers that want every row or nothing).
pub fn plan_tasks(
    file: &str,
    csv: &[u8],
    schema: &InputSchema,
) -> Result<Vec<PlannedTask>, PlanError> {
    let strict = InputSchema {
        bad_rows: BadRows::Fail,
        ..schema.clone()
    };
    plan_rows(file, csv, &strict).map(|p| p.tasks)
}

fn plan_row(
    file: &str,
    line: u64,
    index: u32,
    headers: &csv::StringRecord,
    record: &csv::ByteRecord,
    schema: &InputSchema,
    ids: &mut HashSet<TaskId>,
) -> Result<PlannedTask, PlanError> {
    if record.len() != headers.len() {
        return Err(PlanError::Line {
            file: file.into(),
            line,
            message: format!(
                "expected {} fields like the header, found {}",
                headers.len(),
                record.len()
            ),
        });
    }
    let mut params = BTreeMap::new();
    for (col, (name, raw)) in headers.iter().zip(record.iter()).enumerate() {
        let at = |message: String| PlanError::At {
            file: file.into(),
            line,
            column: col as u64 + 1,
            message,
        };
        let raw = std::str::from_utf8(raw).map_err(|_| at("invalid UTF-8".into()))?;
        let value = match schema.columns.get(name) {
            None | Some(ColumnType::String) => Value::String(raw.to_string()),
            Some(ty) => parse_typed(raw, *ty).map_err(|expected| {
                at(format!(
                    "column '{name}': '{}' is not {expected}",
                    shorten(raw)
                ))
            })?,
        };
        params.insert(name.to_string(), value);
    }
    let id_text = match &schema.task_id {
        Some(col) => match params.get(col) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        },
        None => format!("t-{index:05}"),
    };
    let id = TaskId::new(id_text)
        .map_err(|e| e.to_string())
        .and_then(|id| {
            // Room for the stage's name in the task's id (`<stage>_<row id>`).
            if id.as_str().len() > MAX_ROW_ID {
                Err(format!(
                    "task id '{id}' is longer than {MAX_ROW_ID} characters"
                ))
            } else {
                Ok(id)
            }
        })
        .map_err(|message| PlanError::Line {
            file: file.into(),
            line,
            message,
        })?;
    if !ids.insert(id.clone()) {
        return Err(PlanError::Line {
            file: file.into(),
            line,
            message: format!("duplicate task id '{id}'"),
        });
    }
    Ok(PlannedTask { id, index, params })
}

/// The reason of a row error without the file name (rejects.csv is beside the file).
fn reason_of(e: &PlanError) -> String {
    match e {
        PlanError::At {
            column, message, ..
        } => format!("column {column}: {message}"),
        PlanError::Line { message, .. } | PlanError::File { message, .. } => message.clone(),
        PlanError::BadRows { .. } => e.to_string(),
    }
}

/// A record as CSV text (invalid UTF-8 replaced), for rejects.csv and chunk files.
fn raw_record(record: &csv::ByteRecord) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let fields: Vec<String> = record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let _ = w.write_record(&fields);
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\n')
        .to_string()
}

/// `rejects.csv`: line, reason and the row as it was.
pub fn rejects_csv(rejects: &[Reject]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = w.write_record(["line", "reason", "row"]);
    for r in rejects {
        let _ = w.write_record([r.line.to_string(), r.reason.clone(), r.record.clone()]);
    }
    String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned()
}

fn parse_typed(raw: &str, ty: ColumnType) -> Result<Value, &'static str> {
    match ty {
        ColumnType::String => Ok(Value::String(raw.to_string())),
        ColumnType::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "an integer"),
        ColumnType::Float => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(|n| {
                // Keep integral values as integers so templates render "4", not "4.0".
                if n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                {
                    Value::from(n.as_f64().unwrap_or_default() as i64)
                } else {
                    Value::Number(n)
                }
            })
            .ok_or("a finite number"),
        ColumnType::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err("a boolean (true/false)"),
        },
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out.escape_debug().to_string()
}

fn csv_error(file: &str, e: &csv::Error) -> PlanError {
    let pos = e.position();
    let line = pos.map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields like the header, found {len}"),
        csv::ErrorKind::Utf8 { err, .. } => {
            return PlanError::At {
                file: file.into(),
                line,
                column: err.field() as u64 + 1,
                message: "invalid UTF-8".into(),
            };
        }
        _ => e.to_string(),
    };
    if line == 0 {
        PlanError::File {
            file: file.into(),
            message,
        }
    } else {
        PlanError::Line {
            file: file.into(),
            line,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> InputSchema {
        InputSchema {
            columns: [
                ("ebn0_db".to_string(), ColumnType::Float),
                ("seed".to_string(), ColumnType::Integer),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        }
    }

    /// The row errors of a `BadRows` error, as text.
    fn bad_rows(err: PlanError) -> Vec<String> {
        match err {
            PlanError::BadRows { rows, .. } => rows.iter().map(ToString::to_string).collect(),
            other => panic!("expected bad rows, got {other}"),
        }
    }

    #[test]
    fn plans_rows_in_order() {
        let tasks = plan_tasks("in.csv", b"ebn0_db,seed\n0,0\n2.5,1\n\n12,2\n", &schema()).unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0].id.as_str(), "t-00000");
        assert_eq!(tasks[1].params["ebn0_db"], serde_json::json!(2.5));
        assert_eq!(tasks[2].params["ebn0_db"], serde_json::json!(12));
        assert_eq!(tasks[2].index, 2);
    }

    #[test]
    fn bad_value_names_file_line_and_column() {
        let err = plan_tasks("in.csv", b"ebn0_db,seed\n0,0\n2,abc\n", &schema()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.csv:3:2: column 'seed': 'abc' is not an integer"
        );
        assert_eq!(
            bad_rows(err),
            ["in.csv:3:2: column 'seed': 'abc' is not an integer"]
        );
    }

    #[test]
    fn ragged_row_names_line() {
        let err = plan_tasks("in.csv", b"ebn0_db,seed\n0,0\n1,2,3\n", &schema()).unwrap_err();
        assert_eq!(
            bad_rows(err),
            ["in.csv:3: expected 2 fields like the header, found 3"]
        );
    }

    #[test]
    fn every_bad_row_is_reported_up_to_a_limit() {
        let mut csv = b"ebn0_db,seed\n0,0\n1,x\ny,2\n3,3\n4\n".to_vec();
        let err = plan_rows("in.csv", &csv, &schema()).unwrap_err();
        assert_eq!(
            bad_rows(err),
            [
                "in.csv:3:2: column 'seed': 'x' is not an integer",
                "in.csv:4:1: column 'ebn0_db': 'y' is not a finite number",
                "in.csv:6: expected 2 fields like the header, found 1",
            ]
        );
        for _ in 0..30 {
            csv.extend_from_slice(b"bad,bad\n");
        }
        let err = plan_rows("in.csv", &csv, &schema()).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("in.csv: 33 bad rows"), "{text}");
        assert!(text.ends_with("... and 13 more"), "{text}");
        assert_eq!(bad_rows(err).len(), REPORTED_BAD_ROWS);
    }

    #[test]
    fn skipped_rows_become_rejects_with_their_reason() {
        let mut s = schema();
        s.bad_rows = BadRows::Skip;
        let planned = plan_rows("in.csv", b"ebn0_db,seed\n0,0\n1,x\n\"a,b\",2\n3,3\n", &s).unwrap();
        assert_eq!(planned.tasks.len(), 2);
        assert_eq!(planned.tasks[1].params["seed"], serde_json::json!(3));
        assert_eq!(
            planned.tasks[1].index, 1,
            "indexes count planned tasks only"
        );
        assert_eq!(planned.records, ["0,0", "3,3"]);
        assert_eq!(
            rejects_csv(&planned.rejects),
            "line,reason,row\n3,column 2: column 'seed': 'x' is not an integer,\"1,x\"\n\
             4,\"column 1: column 'ebn0_db': 'a,b' is not a finite number\",\"\"\"a,b\"\",2\"\n"
        );
        let err = plan_rows("in.csv", b"ebn0_db,seed\nx,1\n", &s).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("in.csv: no good rows: all 1 rows were rejected"),
            "{err}"
        );
    }

    #[test]
    fn missing_column_and_empty_inputs() {
        let err = plan_tasks("in.csv", b"ebn0_db\n0\n", &schema()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("in.csv:1: missing required column(s) seed")
        );
        assert!(
            plan_tasks("in.csv", b"", &schema())
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            plan_tasks("in.csv", b"ebn0_db,seed\n", &schema())
                .unwrap_err()
                .to_string()
                .contains("no rows")
        );
    }

    #[test]
    fn invalid_utf8_and_nan() {
        let err = plan_tasks("in.csv", b"ebn0_db,seed\n0,\xff\n", &schema()).unwrap_err();
        assert_eq!(bad_rows(err), ["in.csv:2:2: invalid UTF-8"]);
        let err = plan_tasks("in.csv", b"ebn0_db,seed\nNaN,1\n", &schema()).unwrap_err();
        assert!(err.to_string().contains("not a finite number"));
    }

    #[test]
    fn hostile_task_ids_are_rejected() {
        let mut s = schema();
        s.columns.clear();
        s.task_id = Some("id".into());
        let err = plan_tasks("in.csv", b"id\n../../x\n", &s).unwrap_err();
        let rows = bad_rows(err);
        assert!(rows[0].starts_with("in.csv:2: invalid task id"), "{rows:?}");
        let err = plan_tasks("in.csv", b"id\na\na\n", &s).unwrap_err();
        assert_eq!(bad_rows(err), ["in.csv:3: duplicate task id 'a'"]);
        let long = format!("id\n{}\n", "x".repeat(65));
        let err = plan_tasks("in.csv", long.as_bytes(), &s).unwrap_err();
        assert!(bad_rows(err)[0].contains("longer than 64 characters"));
    }

    #[test]
    fn max_tasks_is_enforced() {
        let mut s = schema();
        s.max_tasks = 1;
        let err = plan_tasks("in.csv", b"ebn0_db,seed\n0,0\n1,1\n", &s).unwrap_err();
        assert!(err.to_string().contains("more than 1 rows"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = plan_tasks("fuzz.csv", &bytes, &schema());
            let mut s = schema();
            s.bad_rows = BadRows::Skip;
            let _ = plan_rows("fuzz.csv", &bytes, &s);
        }
    }
}
