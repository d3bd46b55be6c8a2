//! What the interpreter needs from the engine that runs it, as a trait the engine implements:
//! its configuration, task tokens, and child executions (`states:startExecution`). The
//! interpreter depends on this trait only, so `exec` never imports [`crate::engine`] and the
//! engine — which launches executions through [`super::launch`] — sits above it.

use super::record::{ExecutionRecord, TokenDelivery};
use crate::config::EngineConfig;
use crate::error::StatesError;
use crate::model::StateMachine;
use crate::resource::TaskMocks;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) trait Host: Send + Sync {
    fn config(&self) -> &EngineConfig;

    /// Issues a task token bound to a waiting task; the receiver gets the callbacks.
    fn issue_token(&self) -> (String, mpsc::UnboundedReceiver<TokenDelivery>);

    /// Closes a token: later callbacks are refused as timed out.
    fn close_token(&self, token: &str);

    /// A state machine registered with the engine, by name or ARN.
    fn state_machine(&self, name_or_arn: &str) -> Option<Arc<StateMachine>>;

    /// Starts a child execution (StartExecution semantics: an existing running execution of
    /// the same name and input is returned). A refusal comes back as the error AWS's
    /// `states:startExecution` integration raises.
    fn start_execution(
        &self,
        machine: Arc<StateMachine>,
        input: Value,
        name: Option<String>,
        mocks: Option<Arc<dyn TaskMocks>>,
    ) -> Result<Arc<ExecutionRecord>, StatesError>;

    /// StopExecution; a no-op for an execution that has ended or does not exist.
    fn stop_execution(&self, arn: &str, error: Option<String>, cause: Option<String>);
}
