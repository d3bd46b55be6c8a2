//! Error names the state machine retries and catches on, and the errors of the ports.
//!
//! The `Sluice.*` names are a contract between the handlers (which raise them, or send them with
//! SendTaskFailure) and `statemachines/pipeline.asl.json` (whose Retry/Catch match on them).

/// The typed errors a task or step can fail with, as they appear in Step Functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// The compute capacity under the task was reclaimed (ECS Spot interruption, Batch host
    /// terminated). Not the task's fault: always retried, with backoff.
    SpotInterrupted,
    /// The task never started (image pull, resource initialisation, placement). Retried a few times.
    LaunchFailed,
    /// The container was killed for exceeding its memory limit. Retrying the same size is futile.
    OutOfMemory,
    /// The application exited non-zero and the pipeline's retry policy allows another attempt.
    TaskFailed,
    /// The attempt ran longer than its stage's `timeout_seconds` and compute stopped it. Spends
    /// the pipeline's application-error budget, like a non-zero exit (on AWS Batch a timed-out
    /// attempt is one of the job's attempts too); RetriesExhausted when the budget is spent.
    TaskTimedOut,
    /// The application failed and the pipeline's retry budget for application errors is spent.
    RetriesExhausted,
    /// The task exited 0 without writing the output file its stage requires. Not retried
    /// unless the pipeline says so (`retry.retry_missing_output`): the step may have side effects.
    OutputMissing,
    /// Tasks of a stage failed for good, so the stages after it cannot run.
    TasksFailed,
    /// The job's input is malformed (bad CSV, unknown pipeline, hostile key). Never retried.
    InvalidInput,
    /// A bookkeeping or storage call failed; transient, retried by the state machine.
    Internal,
}

impl ErrorName {
    pub const ALL: [ErrorName; 10] = [
        ErrorName::SpotInterrupted,
        ErrorName::LaunchFailed,
        ErrorName::OutOfMemory,
        ErrorName::TaskFailed,
        ErrorName::TaskTimedOut,
        ErrorName::RetriesExhausted,
        ErrorName::OutputMissing,
        ErrorName::TasksFailed,
        ErrorName::InvalidInput,
        ErrorName::Internal,
    ];

    /// The error name as Step Functions sees it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorName::SpotInterrupted => "Sluice.SpotInterrupted",
            ErrorName::LaunchFailed => "Sluice.LaunchFailed",
            ErrorName::OutOfMemory => "Sluice.OutOfMemory",
            ErrorName::TaskFailed => "Sluice.TaskFailed",
            ErrorName::TaskTimedOut => "Sluice.TaskTimedOut",
            ErrorName::RetriesExhausted => "Sluice.RetriesExhausted",
            ErrorName::OutputMissing => "Sluice.OutputMissing",
            ErrorName::TasksFailed => "Sluice.TasksFailed",
            ErrorName::InvalidInput => "Sluice.InvalidInput",
            ErrorName::Internal => "Sluice.Internal",
        }
    }

    pub fn parse(name: &str) -> Option<ErrorName> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether the state machine's RunTask state retries a task that failed with this name
    /// (statemachines/pipeline.asl.json's Retry; checked by a test on that file). The others
    /// are final for the task: caught into TaskLost, or failing the step that raised them.
    pub fn is_retried(self) -> bool {
        matches!(
            self,
            ErrorName::SpotInterrupted
                | ErrorName::LaunchFailed
                | ErrorName::TaskFailed
                | ErrorName::TaskTimedOut
                | ErrorName::Internal
        )
    }
}

// Stored on attempts (the answer task-events gives a token) by its Step Functions name, so a
// record reads the same in SQLite, DynamoDB and the state machine's history.
impl serde::Serialize for ErrorName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ErrorName::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error name '{name}'")))
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Failure of a storage port (object store, job store).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost: the record is not in the state the writer expected.
    #[error("conditional write rejected: {0}")]
    Conflict(String),
    #[error("invalid data in {what}: {message}")]
    Corrupt { what: String, message: String },
    #[error("{0}")]
    Backend(String),
}

/// A handler-level failure: the typed name the state machine sees plus a human cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {cause}")]
pub struct StepError {
    pub name: ErrorName,
    pub cause: String,
}

impl StepError {
    pub fn new(name: ErrorName, cause: impl Into<String>) -> Self {
        Self {
            name,
            cause: cause.into(),
        }
    }
    pub fn invalid_input(cause: impl Into<String>) -> Self {
        Self::new(ErrorName::InvalidInput, cause)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(ErrorName::Internal, cause.to_string())
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::internal(e)
    }
}
