//! Planning: an input CSV becomes the job's tasks, one per row.
//!
//! Everything a user can get wrong in a CSV is reported here with the file, the line and the
//! column (1-based field number and header name), before a single container is launched.

use crate::ids::TaskId;
use crate::pipeline::{ColumnType, InputSchema};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// A row turned into a task: its id, its position and its typed parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    pub id: TaskId,
    pub index: u32,
    pub params: BTreeMap<String, Value>,
}

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
}

/// Parse `csv` (named `file` in errors) into tasks according to `schema`.
pub fn plan_tasks(
    file: &str,
    csv: &[u8],
    schema: &InputSchema,
) -> Result<Vec<PlannedTask>, PlanError> {
    let file_err = |message: String| PlanError::File {
        file: file.to_string(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(csv);
    let headers = reader.headers().map_err(|e| csv_error(file, &e))?.clone();
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

    let mut tasks = Vec::new();
    let mut ids = HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(file, &e))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue; // a blank line is not a task
        }
        if tasks.len() as u64 >= u64::from(schema.max_tasks) {
            return Err(PlanError::Line {
                file: file.into(),
                line,
                message: format!(
                    "more than {} rows (input.max_tasks in the pipeline)",
                    schema.max_tasks
                ),
            });
        }
        let index = tasks.len() as u32;
        let mut params = BTreeMap::new();
        for (col, (name, raw)) in headers.iter().zip(record.iter()).enumerate() {
            let at = |message: String| PlanError::At {
                file: file.into(),
                line,
                column: col as u64 + 1,
                message,
            };
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
        let id = TaskId::new(id_text).map_err(|e| PlanError::Line {
            file: file.into(),
            line,
            message: e.to_string(),
        })?;
        if !ids.insert(id.clone()) {
            return Err(PlanError::Line {
                file: file.into(),
                line,
                message: format!("duplicate task id '{id}'"),
            });
        }
        tasks.push(PlannedTask { id, index, params });
    }
    if tasks.is_empty() {
        return Err(file_err(
            "no rows: the input has a header but no tasks".into(),
        ));
    }
    Ok(tasks)
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
    }

    #[test]
    fn ragged_row_names_line() {
        let err = plan_tasks("in.csv", b"ebn0_db,seed\n0,0\n1,2,3\n", &schema()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.csv:3: expected 2 fields like the header, found 3"
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
        assert_eq!(err.to_string(), "in.csv:2:2: invalid UTF-8");
        let err = plan_tasks("in.csv", b"ebn0_db,seed\nNaN,1\n", &schema()).unwrap_err();
        assert!(err.to_string().contains("not a finite number"));
    }

    #[test]
    fn hostile_task_ids_are_rejected() {
        let mut s = schema();
        s.columns.clear();
        s.task_id = Some("id".into());
        let err = plan_tasks("in.csv", b"id\n../../x\n", &s).unwrap_err();
        assert!(
            err.to_string().starts_with("in.csv:2: invalid task id"),
            "{err}"
        );
        let err = plan_tasks("in.csv", b"id\na\na\n", &s).unwrap_err();
        assert_eq!(err.to_string(), "in.csv:3: duplicate task id 'a'");
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
        }
    }
}
