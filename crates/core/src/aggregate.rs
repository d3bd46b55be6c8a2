//! Aggregation: per-task JSON results folded into one table per job (e.g. the BER curve:
//! bits and errors summed per Eb/N0 point, the BER with its confidence interval and the
//! closed-form value beside it).
//!
//! Each task contributes exactly once: the caller passes one result per task id (results are
//! stored under the task id, so a retried task overwrites, never adds), and this module refuses
//! a second result for the same task. Integer sums are exact (u128), so the CSV of a run with
//! Spot interruptions is byte-identical to one without.

use crate::ids::TaskId;
use crate::pipeline::{AggregateSpec, Theory};
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
    pub theory: Option<f64>,
}

/// The aggregated table of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub group_by: String,
    pub sum_fields: Vec<String>,
    pub ratio_name: Option<String>,
    pub rows: Vec<Row>,
}

/// Fold task results into groups, sorted by group value (numerically when numeric).
pub fn aggregate(
    spec: &AggregateSpec,
    results: &[TaskResult],
) -> Result<Aggregate, AggregateError> {
    let mut seen = HashSet::new();
    // Keyed by the group value's canonical text; the original value is kept for output.
    let mut groups: BTreeMap<String, (Value, u64, Vec<Sum>)> = BTreeMap::new();
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
        let entry = groups
            .entry(key)
            .or_insert_with(|| (group.clone(), 0, vec![Sum::Int(0); spec.sum.len()]));
        entry.1 += 1;
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
        .map(|(group, tasks, sums)| {
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
            let theory = spec.theory.and_then(|t| match t {
                Theory::BpskAwgn => group.as_f64().map(stats::bpsk_awgn_ber),
            });
            Row {
                group,
                tasks,
                sums: named,
                ratio,
                theory,
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
    /// The table as CSV. Deterministic: same results, same bytes.
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
        let has_theory = self.rows.iter().any(|r| r.theory.is_some());
        if has_theory {
            header.push(format!(
                "{}_theory",
                self.ratio_name.as_deref().unwrap_or("value")
            ));
        }
        let mut out = header.join(",");
        out.push('\n');
        for row in &self.rows {
            let mut cells = vec![canonical(&row.group), row.tasks.to_string()];
            cells.extend(row.sums.iter().map(|(_, s)| s.render()));
            if self.ratio_name.is_some() {
                let (v, lo, hi) = row.ratio.unwrap_or((f64::NAN, f64::NAN, f64::NAN));
                cells.extend([fmt_f64(v), fmt_f64(lo), fmt_f64(hi)]);
            }
            if has_theory {
                cells.push(row.theory.map(fmt_f64).unwrap_or_default());
            }
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
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
            theory: Some(Theory::BpskAwgn),
        }
    }

    fn result(task: &str, db: f64, bits: u64, errors: u64) -> TaskResult {
        TaskResult {
            task: TaskId::new(task).unwrap(),
            params: BTreeMap::new(),
            result: json!({"ebn0_db": db, "bits": bits, "errors": errors}),
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
        let theory = agg.rows[0].theory.unwrap();
        assert!((theory - 0.0375).abs() < 0.001, "{theory}");
        let csv = agg.to_csv();
        assert!(csv.starts_with("ebn0_db,tasks,bits,errors,ber,ber_ci_low,ber_ci_high,ber_theory\n2,2,4000,150,3.75e-2,"), "{csv}");
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
            result: json!({"ebn0_db": 1, "bits": 5}),
        };
        let err = aggregate(&spec(), &[bad]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task x: result has no numeric field 'errors'"
        );
    }
}
