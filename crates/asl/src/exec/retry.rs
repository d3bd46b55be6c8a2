//! Retry and Catch: which retrier or catcher matches an error, and the retry loop with
//! IntervalSeconds, BackoffRate, MaxAttempts, MaxDelaySeconds and JitterStrategy.
//!
//! Matching rules (AWS developer guide, "Error handling in Step Functions"):
//! - retriers and catchers are tried in order; the first whose ErrorEquals matches wins;
//! - `States.ALL` matches every error except the terminal `States.Runtime` and
//!   `States.DataLimitExceeded`;
//! - `States.TaskFailed` matches every error except `States.Timeout` (and the terminal ones);
//! - `States.Timeout` also matches `States.HeartbeatTimeout` (a heartbeat timeout is a kind of
//!   timeout: AWS documents both under States.Timeout);
//! - `States.Runtime` is never retried or caught: it always fails the execution.
//!
//! Each retrier keeps its own attempt counter; `MaxAttempts: 0` never retries.

use super::{Branch, Run};
use crate::error::{StatesError, names};
use crate::model::{Catcher, Jitter, Retrier, State, StateKind};
use chrono::{DateTime, Utc};
use serde_json::Value;

fn terminal(e: &StatesError) -> bool {
    e.error == names::RUNTIME
}

/// Does `ErrorEquals` match `e`?
pub(crate) fn matches(error_equals: &[String], e: &StatesError) -> bool {
    if terminal(e) {
        return false;
    }
    error_equals.iter().any(|name| {
        if *name == e.error {
            return true;
        }
        match name.as_str() {
            names::ALL => e.error != names::DATA_LIMIT_EXCEEDED,
            names::TASK_FAILED => !matches!(
                e.error.as_str(),
                names::TIMEOUT | names::HEARTBEAT_TIMEOUT | names::DATA_LIMIT_EXCEEDED
            ),
            names::TIMEOUT => e.error == names::HEARTBEAT_TIMEOUT,
            _ => false,
        }
    })
}

pub(crate) fn find_catcher<'a>(catchers: &'a [Catcher], e: &StatesError) -> Option<&'a Catcher> {
    catchers.iter().find(|c| matches(&c.error_equals, e))
}

/// The wait before retry number `attempt` (0-based) of `r`, in seconds, before jitter.
pub(crate) fn backoff_seconds(r: &Retrier, attempt: u64) -> f64 {
    let exp = i32::try_from(attempt).unwrap_or(i32::MAX);
    let mut d = r.interval_seconds * r.backoff_rate.powi(exp);
    if !d.is_finite() {
        d = f64::MAX;
    }
    if let Some(max) = r.max_delay_seconds {
        d = d.min(max);
    }
    d.max(0.0)
}

fn delay_after(r: &Retrier, attempt: u64) -> chrono::Duration {
    let mut d = backoff_seconds(r, attempt);
    if r.jitter == Jitter::Full {
        d *= rand::random::<f64>();
    }
    // Cap at a year: the duration type overflows long before f64 does.
    let ms = (d * 1000.0).clamp(0.0, 31_536_000_000.0) as i64;
    chrono::Duration::milliseconds(ms)
}

/// Runs a Task, Parallel or Map state, retrying per its Retry field. Returns the state output
/// (after ResultSelector, ResultPath and OutputPath).
pub(crate) async fn with_retry(
    run: &Run,
    state: &State,
    input: &Value,
    branch: &mut Branch,
    entered: DateTime<Utc>,
) -> Result<Value, StatesError> {
    let mut counters = vec![0u64; state.retry.len()];
    let mut retry_count = 0u64;
    loop {
        let ctx = run.context(branch, state, entered, retry_count);
        let attempt = match &state.kind {
            StateKind::Task(t) => super::task::run_task(run, state, t, input, &ctx, branch).await,
            StateKind::Parallel(p) => {
                super::map::run_parallel(run, state, p, input, &ctx, branch).await
            }
            StateKind::Map(m) => super::map::run_map(run, state, m, input, &ctx, branch).await,
            _ => Err(StatesError::runtime(
                "only Task, Parallel and Map states retry",
            )),
        };
        let err = match attempt {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(i) = state
            .retry
            .iter()
            .position(|r| matches(&r.error_equals, &err))
        else {
            return Err(err);
        };
        let r = &state.retry[i];
        if counters[i] >= r.max_attempts {
            return Err(err);
        }
        let wait = delay_after(r, counters[i]);
        counters[i] += 1;
        retry_count += 1;
        let until = run.clock.now() + wait;
        let sleep = run.clock.sleep_until(until);
        branch.guard.idle(sleep).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str) -> StatesError {
        StatesError::new(name, "")
    }

    #[test]
    fn matching_rules() {
        let all = [names::ALL.to_string()];
        let tf = [names::TASK_FAILED.to_string()];
        let to = [names::TIMEOUT.to_string()];
        assert!(matches(&all, &e("Custom")));
        assert!(!matches(&all, &e(names::RUNTIME)));
        assert!(!matches(&all, &e(names::DATA_LIMIT_EXCEEDED)));
        assert!(matches(&tf, &e("Lambda.Unknown")));
        assert!(!matches(&tf, &e(names::TIMEOUT)));
        assert!(matches(&to, &e(names::HEARTBEAT_TIMEOUT)));
        assert!(!matches(&[names::RUNTIME.to_string()], &e(names::RUNTIME)));
    }

    #[test]
    fn backoff() {
        let r = Retrier {
            error_equals: vec![],
            interval_seconds: 2.0,
            max_attempts: 5,
            backoff_rate: 3.0,
            max_delay_seconds: Some(10.0),
            jitter: Jitter::None,
        };
        assert_eq!(backoff_seconds(&r, 0), 2.0);
        assert_eq!(backoff_seconds(&r, 1), 6.0);
        assert_eq!(backoff_seconds(&r, 2), 10.0);
    }
}
