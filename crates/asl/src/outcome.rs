//! How an execution stands or ended: [`ExecutionStatus`] (DescribeExecution's status) and
//! [`ExecutionOutcome`] (status, output, error and cause). Plain data, shared by the API layer,
//! the interpreter and the checkpoints a host persists.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Execution status, as DescribeExecution reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionStatus {
    /// `"SUCCEEDED"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Aborted => "ABORTED",
        }
    }

    /// The status named `s` (`"TIMED_OUT"`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::TimedOut,
            Self::Aborted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionOutcome {
    pub status: ExecutionStatus,
    /// The execution output (succeeded executions only).
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}
