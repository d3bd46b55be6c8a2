//! [`Workflows`] on AWS Step Functions.
//!
//! StartExecution uses the job id as the execution name, so the second delivery of the same S3
//! event cannot start a second run: Step Functions itself answers a repeated (name, input) of a
//! *running* execution with the original ARN, and raises ExecutionAlreadyExists for a closed
//! one or a different input. The adapter then describes the existing execution and returns its
//! ARN when the input is the same JSON, so "idempotent by name" holds for closed executions too.
//!
//! Task tokens whose task is gone (InvalidToken, TaskDoesNotExist, TaskTimedOut) become
//! [`WorkflowError::TokenClosed`]: the task-events handler treats them as "already reported",
//! not as a failure to retry.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::DisplayErrorContext;
use sluice_core::ports::{WorkflowError, Workflows};

/// IAM actions of each call this adapter makes (the permission contract: see
/// [`crate::permissions`]). A start that finds the execution existing describes it (and lists
/// executions when the state machine ARN is a version or alias).
pub const START_ACTIONS: &[&str] = &[
    "states:StartExecution",
    "states:DescribeExecution",
    "states:ListExecutions",
];
pub const ANSWER_ACTIONS: &[&str] = &["states:SendTaskSuccess", "states:SendTaskFailure"];
pub const STOP_ACTIONS: &[&str] = &["states:StopExecution"];
pub const REDRIVE_ACTIONS: &[&str] = &["states:RedriveExecution"];

/// SendTaskFailure limits, in characters.
pub const MAX_ERROR_CHARS: usize = 256;
pub const MAX_CAUSE_CHARS: usize = 32_768;
/// ListExecutions pages searched when the execution ARN cannot be derived from the state
/// machine ARN (a version or alias ARN).
const LIST_PAGES: usize = 20;

/// Step Functions client bound to the pipeline state machine.
#[derive(Debug, Clone)]
pub struct SfnWorkflows {
    client: Client,
    state_machine_arn: String,
}

/// The execution ARN Step Functions gives `name` on a standard state machine:
/// `arn:aws:states:<region>:<account>:execution:<machine>:<name>`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let (prefix, machine) = state_machine_arn.split_once(":stateMachine:")?;
    // A version (`machine:3`) or alias (`machine:prod`) ARN has no such simple mapping.
    if machine.contains(':') {
        return None;
    }
    Some(format!("{prefix}:execution:{machine}:{name}"))
}

/// At most `max` characters of `s`, cut on a character boundary.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn backend(op: &str, e: impl std::error::Error + Send + Sync + 'static) -> WorkflowError {
    WorkflowError::Backend(format!("Step Functions {op}: {}", DisplayErrorContext(&e)))
}

/// Inputs compare as JSON values: the console, the SDK and serde_json may order or space the
/// same document differently.
fn same_input(existing: Option<&str>, input: &serde_json::Value) -> bool {
    existing
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .is_some_and(|v| &v == input)
}

impl SfnWorkflows {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// ARN and input of the execution named `name`, if there is one.
    async fn find_execution(
        &self,
        name: &str,
    ) -> Result<Option<(String, Option<String>)>, WorkflowError> {
        if let Some(arn) = execution_arn(&self.state_machine_arn, name) {
            match self
                .client
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
            {
                Ok(out) => {
                    return Ok(Some((
                        out.execution_arn().to_owned(),
                        out.input().map(str::to_owned),
                    )));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_execution_does_not_exist()) => {}
                Err(e) => return Err(backend("DescribeExecution", e)),
            }
        }
        let mut token = None;
        for _ in 0..LIST_PAGES {
            let out = self
                .client
                .list_executions()
                .state_machine_arn(&self.state_machine_arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| backend("ListExecutions", e))?;
            if let Some(found) = out.executions().iter().find(|e| e.name() == name) {
                let arn = found.execution_arn().to_owned();
                let described = self
                    .client
                    .describe_execution()
                    .execution_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| backend("DescribeExecution", e))?;
                return Ok(Some((arn, described.input().map(str::to_owned))));
            }
            match out.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(None)
    }
}

fn token_closed(
    invalid_token: bool,
    does_not_exist: bool,
    timed_out: bool,
    message: String,
) -> Option<WorkflowError> {
    (invalid_token || does_not_exist || timed_out).then_some(WorkflowError::TokenClosed(message))
}

#[async_trait]
impl Workflows for SfnWorkflows {
    async fn start_execution(
        &self,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<String, WorkflowError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.execution_arn().to_owned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                match self.find_execution(name).await? {
                    Some((arn, existing)) if same_input(existing.as_deref(), input) => Ok(arn),
                    Some((arn, _)) => Err(WorkflowError::AlreadyExists(format!(
                        "execution {arn} exists with a different input"
                    ))),
                    None => Err(WorkflowError::AlreadyExists(format!(
                        "execution '{name}' exists but could not be found: {}",
                        DisplayErrorContext(&e)
                    ))),
                }
            }
            Err(e) => Err(backend("StartExecution", e)),
        }
    }

    async fn send_task_success(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> Result<(), WorkflowError> {
        match self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = DisplayErrorContext(&e).to_string();
                Err(e
                    .as_service_error()
                    .and_then(|s| {
                        token_closed(
                            s.is_invalid_token(),
                            s.is_task_does_not_exist(),
                            s.is_task_timed_out(),
                            message,
                        )
                    })
                    .unwrap_or_else(|| backend("SendTaskSuccess", e)))
            }
        }
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: sluice_core::ErrorName,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        match self
            .client
            .send_task_failure()
            .task_token(token)
            .error(truncate_chars(error.as_str(), MAX_ERROR_CHARS))
            .cause(truncate_chars(cause, MAX_CAUSE_CHARS))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = DisplayErrorContext(&e).to_string();
                Err(e
                    .as_service_error()
                    .and_then(|s| {
                        token_closed(
                            s.is_invalid_token(),
                            s.is_task_does_not_exist(),
                            s.is_task_timed_out(),
                            message,
                        )
                    })
                    .unwrap_or_else(|| backend("SendTaskFailure", e)))
            }
        }
    }

    async fn stop_execution(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        match self
            .client
            .stop_execution()
            .execution_arn(execution_arn)
            .error(truncate_chars(error, MAX_ERROR_CHARS))
            .cause(truncate_chars(cause, MAX_CAUSE_CHARS))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Err(WorkflowError::NoSuchExecution(execution_arn.to_string()))
            }
            Err(e) => Err(backend("StopExecution", e)),
        }
    }

    async fn redrive_execution(&self, execution_arn: &str) -> Result<(), WorkflowError> {
        match self
            .client
            .redrive_execution()
            .execution_arn(execution_arn)
            // No client token: the SDK generates one per call, so its own retries of this call
            // are one redrive, and a later `sluice redrive` is another.
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = DisplayErrorContext(&e).to_string();
                Err(match e.as_service_error() {
                    Some(s) if s.is_execution_does_not_exist() => {
                        WorkflowError::NoSuchExecution(execution_arn.to_string())
                    }
                    Some(s) if s.is_execution_not_redrivable() => {
                        WorkflowError::NotRedrivable(message)
                    }
                    _ => backend("RedriveExecution", e),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_execution_arns() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-west-1:123456789012:stateMachine:sluice",
                "ber-1"
            )
            .as_deref(),
            Some("arn:aws:states:eu-west-1:123456789012:execution:sluice:ber-1")
        );
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-west-1:123456789012:stateMachine:sluice:prod",
                "x"
            ),
            None
        );
        assert_eq!(execution_arn("garbage", "x"), None);
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_chars("abc", 5), "abc");
        assert_eq!(truncate_chars("ééé", 2), "éé");
        let long = "x".repeat(MAX_CAUSE_CHARS + 10);
        assert_eq!(
            truncate_chars(&long, MAX_CAUSE_CHARS).len(),
            MAX_CAUSE_CHARS
        );
    }

    #[test]
    fn inputs_compare_as_json() {
        let v = serde_json::json!({"a": 1, "b": [true]});
        assert!(same_input(Some("{ \"b\": [true], \"a\": 1 }"), &v));
        assert!(!same_input(Some("{\"a\": 2}"), &v));
        assert!(!same_input(Some("not json"), &v));
        assert!(!same_input(None, &v));
    }
}
