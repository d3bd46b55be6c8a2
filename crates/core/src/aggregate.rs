//! Aggregation: the JSON results of a fan-out stage folded into one table (e.g. the BER curve:
//! bits and errors summed per Eb/N0 point, the BER with its confidence interval, and the
//! closed-form value the tasks computed carried beside it).
//!
//! Each task contributes exactly once: the caller passes one result per task id (results are
//! stored under the task id, so a retried task overwrites, never adds), and this module refuses
//! a second result for the same task. Integer sums are exact (u128), so the CSV of a run with
//! Spot interruptions is byte-identical to one without.

use crate::ids::TaskId;
use crate::pipeline::AggregateSpec;
use crate::stats;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// One task's result, with the row it came from (for fields the result does not echo).
#[derive(Debug, Clone)]
pub struct TaskResult {
    pub task: TaskId,
    pub params: BTreeMap<String, Value>,
    pub result: Value,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggregateError {
    #[error("task {task}: result has no numeric field '{field}'")]
    MissingField { task: String, field: String },
    #[error("task {task}: neither the result nor the row has the group field '{field}'")]
    MissingGroup { task: String, field: String },
    #[error("task {task}: more than one result")]
    Duplicate { task: String },
    #[error("task {task}: sum of '{field}' overflows")]
    Overflow { task: String, field: String },
    #[error("task {task}: result has no field '{field}' to carry")]
    MissingCarry { task: String, field: String },
    #[error(
        "task {task}: carried field '{field}' is {value}, but {other} for another task of group {group}"
    )]
    CarryDiffers {
        task: String,
        field: String,
        group: String,
        value: String,
        other: String,
    },
}

/// An exact-when-possible sum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Sum {
    Int(i128),
    Float(f64),
}

impl Sum {
    pub fn as_f64(self) -> f64 {
        match self {
            Sum::Int(i) => i as f64,
            Sum::Float(f) => f,
        }
    }
    fn render(self) -> String {
        match self {
            Sum::Int(i) => i.to_string(),
            Sum::Float(f) => f.to_string(),
        }
    }
}

/// One group of the aggregated table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub group: Value,
    pub tasks: u64,
    pub sums: Vec<(String, Sum)>,
    /// The ratio with its confidence interval, when configured.
    pub ratio: Option<(f64, f64, f64)>,
    /// The carried fields' values, in `carry` order.
    pub carried: Vec<Value>,
}

/// The aggregated table of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub group_by: String,
    pub sum_fields: Vec<String>,
    pub ratio_name: Option<String>,
    pub carry_fields: Vec<String>,
    pub rows: Vec<Row>,
}

/// Fold task results into groups, sorted by group value (numerically when numeric).
pub fn aggregate(
    spec: &AggregateSpec,
    results: &[TaskResult],
) -> Result<Aggregate, AggregateError> {
    let mut seen = HashSet::new();
    // Keyed by the group value's canonical text; the original value is kept for output.
    let mut groups: BTreeMap<String, (Value, u64, Vec<Sum>, Vec<Value>)> = BTreeMap::new();
    for r in results {
        if !seen.insert(r.task.clone()) {
            return Err(AggregateError::Duplicate {
                task: r.task.to_string(),
            });
        }
        let group = r
            .result
            .get(&spec.group_by)
            .or_else(|| r.params.get(&spec.group_by))
            .cloned()
            .ok_or_else(|| AggregateError::MissingGroup {
                task: r.task.to_string(),
                field: spec.group_by.clone(),
            })?;
        let key = canonical(&group);
        let mut carried = Vec::with_capacity(spec.carry.len());
        for field in &spec.carry {
            carried.push(r.result.get(field).cloned().ok_or_else(|| {
                AggregateError::MissingCarry {
                    task: r.task.to_string(),
                    field: field.clone(),
                }
            })?);
        }
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            (
                group.clone(),
                0,
                vec![Sum::Int(0); spec.sum.len()],
                carried.clone(),
            )
        });
        entry.1 += 1;
        for ((field, have), value) in spec.carry.iter().zip(&entry.3).zip(&carried) {
            if have != value {
                return Err(AggregateError::CarryDiffers {
                    task: r.task.to_string(),
                    field: field.clone(),
                    group: key,
                    value: value.to_string(),
                    other: have.to_string(),
                });
            }
        }
        for (i, field) in spec.sum.iter().enumerate() {
            let value = r
                .result
                .get(field)
                .and_then(|v| v.as_number())
                .ok_or_else(|| AggregateError::MissingField {
                    task: r.task.to_string(),
                    field: field.clone(),
                })?;
            let overflow = || AggregateError::Overflow {
                task: r.task.to_string(),
                field: field.clone(),
            };
            entry.2[i] = match (entry.2[i], value.as_i64(), value.as_u64()) {
                (Sum::Int(acc), Some(v), _) => {
                    Sum::Int(acc.checked_add(v.into()).ok_or_else(overflow)?)
                }
                (Sum::Int(acc), None, Some(v)) => {
                    Sum::Int(acc.checked_add(v.into()).ok_or_else(overflow)?)
                }
                (acc, _, _) => Sum::Float(acc.as_f64() + value.as_f64().unwrap_or(f64::NAN)),
            };
        }
    }
    let mut rows: Vec<Row> = groups
        .into_values()
        .map(|(group, tasks, sums, carried)| {
            let named: Vec<(String, Sum)> = spec.sum.iter().cloned().zip(sums).collect();
            let get = |name: &str| named.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            let ratio = spec.ratio.as_ref().and_then(|ratio| {
                let num = get(&ratio.numerator)?;
                let den = get(&ratio.denominator)?;
                let value = if den.as_f64() > 0.0 {
                    num.as_f64() / den.as_f64()
                } else {
                    f64::NAN
                };
                let (lo, hi) = match (num, den) {
                    (Sum::Int(k), Sum::Int(n)) if k >= 0 && n >= k => {
                        stats::binomial_ci(k as u64, n as u64, ratio.confidence)
                    }
                    _ => (f64::NAN, f64::NAN),
                };
                Some((value, lo, hi))
            });
            Row {
                group,
                tasks,
                sums: named,
                ratio,
                carried,
            }
        })
        .collect();
    rows.sort_by(|a, b| match (a.group.as_f64(), b.group.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => canonical(&a.group).cmp(&canonical(&b.group)),
    });
    Ok(Aggregate {
        group_by: spec.group_by.clone(),
        sum_fields: spec.sum.clone(),
        ratio_name: spec.ratio.as_ref().map(|r| r.name.clone()),
        carry_fields: spec.carry.clone(),
        rows,
    })
}

fn canonical(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            // 4 and 4.0 are the same point.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn fmt_f64(f: f64) -> String {
    if f.is_nan() {
        String::new()
    } else {
        format!("{f:e}")
    }
}

impl Aggregate {
    /// The table as CSV. Deterministic: same results, same bytes. Non-integral numbers are
    /// written in shortest round-trip scientific notation (`3.75e-2`), integers as integers.
    pub fn to_csv(&self) -> String {
        let mut header = vec![self.group_by.clone(), "tasks".to_string()];
        header.extend(self.sum_fields.iter().cloned());
        if let Some(name) = &self.ratio_name {
            header.extend([
                name.clone(),
                format!("{name}_ci_low"),
                format!("{name}_ci_high"),
            ]);
        }
        header.extend(self.carry_fields.iter().cloned());
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let mut write = |cells: &[String]| {
            // Writing to a Vec cannot fail.
            let _ = out.write_record(cells);
        };
        write(&header);
        for row in &self.rows {
            let mut cells = vec![canonical(&row.group), row.tasks.to_string()];
            cells.extend(row.sums.iter().map(|(_, s)| s.render()));
            if self.ratio_name.is_some() {
                let (v, lo, hi) = row.ratio.unwrap_or((f64::NAN, f64::NAN, f64::NAN));
                cells.extend([fmt_f64(v), fmt_f64(lo), fmt_f64(hi)]);
            }
            cells.extend(row.carried.iter().map(render_value));
            write(&cells);
        }
        String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// A carried value as a cell: strings as they are, integers as integers, other numbers in
/// the table's scientific notation, anything else as JSON.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => n.as_f64().map(fmt_f64).unwrap_or_default(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::RatioSpec;
    use serde_json::json;

    fn spec() -> AggregateSpec {
        AggregateSpec {
            group_by: "ebn0_db".into(),
            sum: vec!["bits".into(), "errors".into()],
            ratio: Some(RatioSpec {
                name: "ber".into(),
                numerator: "errors".into(),
                denominator: "bits".into(),
                confidence: 0.95,
            }),
            carry: vec!["ber_theory".into()],
            theory: None,
            from: None,
        }
    }

    fn result(task: &str, db: f64, bits: u64, errors: u64) -> TaskResult {
        TaskResult {
            task: TaskId::new(task).unwrap(),
            params: BTreeMap::new(),
            result: json!({"ebn0_db": db, "bits": bits, "errors": errors, "ber_theory": db / 100.0}),
        }
    }

    #[test]
    fn sums_per_group_sorted_numerically() {
        let agg = aggregate(
            &spec(),
            &[
                result("a", 10.0, 1000, 1),
                result("b", 2.0, 1000, 40),
                result("c", 2.0, 3000, 110),
            ],
        )
        .unwrap();
        assert_eq!(agg.rows.len(), 2);
        assert_eq!(agg.rows[0].group, json!(2.0));
        assert_eq!(agg.rows[0].sums[0].1, Sum::Int(4000));
        assert_eq!(agg.rows[0].sums[1].1, Sum::Int(150));
        let (ber, lo, hi) = agg.rows[0].ratio.unwrap();
        assert!((ber - 0.0375).abs() < 1e-12 && lo < ber && ber < hi);
        assert_eq!(agg.rows[0].carried, vec![json!(0.02)]);
        let csv = agg.to_csv();
        assert!(csv.starts_with("ebn0_db,tasks,bits,errors,ber,ber_ci_low,ber_ci_high,ber_theory\n2,2,4000,150,3.75e-2,"), "{csv}");
        assert!(csv.lines().nth(1).unwrap().ends_with(",2e-2"), "{csv}");
    }

    #[test]
    fn a_task_counts_once() {
        let err =
            aggregate(&spec(), &[result("a", 0.0, 1, 0), result("a", 0.0, 1, 0)]).unwrap_err();
        assert_eq!(err, AggregateError::Duplicate { task: "a".into() });
    }

    #[test]
    fn missing_fields_are_named() {
        let bad = TaskResult {
            task: TaskId::new("x").unwrap(),
            params: BTreeMap::new(),
            result: json!({"ebn0_db": 1, "bits": 5, "ber_theory": 0.1}),
        };
        let err = aggregate(&spec(), &[bad]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task x: result has no numeric field 'errors'"
        );
    }
}

#[cfg(test)]
mod carry_tests {
    use super::*;
    use serde_json::json;

    fn spec() -> AggregateSpec {
        AggregateSpec {
            from: None,
            group_by: "region".into(),
            sum: vec!["n".into()],
            ratio: None,
            carry: vec!["label".into()],
            theory: None,
        }
    }

    fn r(task: &str, result: Value) -> TaskResult {
        TaskResult {
            task: TaskId::new(task).unwrap(),
            params: BTreeMap::new(),
            result,
        }
    }

    #[test]
    fn carried_values_must_agree_within_a_group() {
        let err = aggregate(
            &spec(),
            &[
                r("a", json!({"region": "n", "n": 1, "label": "x"})),
                r("b", json!({"region": "n", "n": 1, "label": "y"})),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(&err, AggregateError::CarryDiffers { task, field, .. } if task == "b" && field == "label"),
            "{err}"
        );
        let err = aggregate(&spec(), &[r("a", json!({"region": "n", "n": 1}))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task a: result has no field 'label' to carry"
        );
    }

    #[test]
    fn text_cells_are_quoted_as_csv() {
        let agg = aggregate(
            &spec(),
            &[r(
                "a",
                json!({"region": "north, east", "n": 2, "label": "say \"hi\""}),
            )],
        )
        .unwrap();
        assert_eq!(
            agg.to_csv(),
            "region,tasks,n,label\n\"north, east\",1,2,\"say \"\"hi\"\"\"\n"
        );
    }
}
