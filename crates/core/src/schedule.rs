//! Schedule expressions, as EventBridge Scheduler writes them: `rate(5 minutes)` and
//! `cron(minutes hours day-of-month month day-of-week year)`.
//!
//! One parser for every place that reads them: the pipeline check at load (`sluice run`,
//! `sluice pipeline check`, the plan step on AWS) and `sluice serve`, which fires them. The cron
//! arithmetic is the `cron` crate's; this module only maps EventBridge's six-field dialect onto it.

use chrono::{DateTime, Utc};
use std::str::FromStr;

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub enum Expression {
    Rate(chrono::Duration),
    Cron(Box<cron::Schedule>),
}

/// Why an expression is not valid; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{expression}': {message}")]
pub struct ExpressionError {
    pub expression: String,
    pub message: String,
}

impl Expression {
    pub fn parse(text: &str) -> Result<Self, ExpressionError> {
        let text = text.trim();
        let err = |message: String| ExpressionError {
            expression: text.to_string(),
            message,
        };
        if let Some(inner) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
            let mut parts = inner.split_whitespace();
            let n: i64 = parts
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    err("rate needs a positive whole number, e.g. rate(5 minutes)".into())
                })?;
            let unit = parts.next().unwrap_or("");
            if parts.next().is_some() {
                return Err(err(
                    "rate takes a number and a unit, e.g. rate(1 hour)".into()
                ));
            }
            // EventBridge insists on the singular for 1 and the plural otherwise; so do we,
            // so that an expression accepted here is accepted by the deployed schedule.
            let (singular, d) = match unit {
                "minute" | "minutes" => ("minute", chrono::Duration::minutes(n)),
                "hour" | "hours" => ("hour", chrono::Duration::hours(n)),
                "day" | "days" => ("day", chrono::Duration::days(n)),
                _ => return Err(err(format!("unit '{unit}' must be minutes, hours or days"))),
            };
            let want = if n == 1 {
                singular.to_string()
            } else {
                format!("{singular}s")
            };
            if unit != want {
                return Err(err(format!("write rate({n} {want})")));
            }
            return Ok(Expression::Rate(d));
        }
        if let Some(inner) = text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')) {
            let fields: Vec<&str> = inner.split_whitespace().collect();
            if fields.len() != 6 {
                return Err(err(format!(
                    "cron needs 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                    fields.len()
                )));
            }
            // EventBridge: one of day-of-month and day-of-week must be '?'.
            if (fields[2] == "?") == (fields[4] == "?") {
                return Err(err(
                    "exactly one of day-of-month (3rd field) and day-of-week (5th) must be '?'"
                        .into(),
                ));
            }
            // EventBridge cron has no seconds and uses '?' for "any"; the cron crate wants a
            // seconds field and reads '?' as '*'.
            let spec = format!(
                "0 {}",
                fields
                    .iter()
                    .map(|f| if *f == "?" { "*" } else { f })
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let schedule = cron::Schedule::from_str(&spec).map_err(|e| err(e.to_string()))?;
            return Ok(Expression::Cron(Box::new(schedule)));
        }
        Err(err("expected rate(...) or cron(...)".into()))
    }

    /// The first time the schedule fires after `t`; `None` if it never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Expression::Rate(d) => Some(t + *d),
            Expression::Cron(s) => s.after(&t).next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rates() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let r = Expression::parse("rate(5 minutes)").unwrap();
        assert_eq!(r.next_after(t), Some(t + chrono::Duration::minutes(5)));
        assert!(Expression::parse("rate(1 hour)").is_ok());
        for bad in [
            "rate(0 minutes)",
            "rate(5 fortnights)",
            "rate(1 hours)",
            "rate(2 day)",
            "rate(x)",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn crons() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let c = Expression::parse("cron(30 2 * * ? *)").unwrap();
        assert_eq!(
            c.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 2, 30, 0).unwrap())
        );
        let err = Expression::parse("cron(1 2 3)").unwrap_err();
        assert!(err.to_string().contains("6 fields"), "{err}");
        assert!(
            Expression::parse("cron(0 12 * * * *)")
                .unwrap_err()
                .message
                .contains("'?'")
        );
        assert!(Expression::parse("cron(61 2 * * ? *)").is_err());
        assert!(Expression::parse("every day").is_err());
    }
}
