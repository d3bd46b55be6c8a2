//! sluice-asl: an Amazon States Language engine that behaves like AWS Step Functions.
//!
//! The pipeline's state machines (`statemachines/*.asl.json`) run on AWS Step Functions at scale
//! and on this engine on one machine. The crate is laid out like an interpreter:
//! parse → typed model → evaluate, one concept per module.
//!
//! - [`error`]: `States.*` error names and [`error::StatesError`].
//! - [`data`]: reference paths / JSONPath, payload templates, intrinsic functions, Choice rules.
//! - [`validate`]: static validation of a definition, with AWS-style locations.
//! - [`items`]: ItemReader content (JSON, JSONL, CSV) and ItemBatcher.
//! - [`mock`]: Step Functions Local mock configuration (`SFN_MOCK_CONFIG`).
//! - [`model`]: the typed model of a definition ([`StateMachine`]).
//! - [`resource`]: what the host plugs in for Task states (Lambda, services, object store).
//! - [`clock`]: real and virtual time.
//! - [`checkpoint`]: what a host persists so another process can continue an execution.
//! - [`history`]: GetExecutionHistory-shaped events and the host's [`HistorySink`].
//! - [`config`]: how an engine is set up ([`EngineConfig`]).
//! - [`outcome`]: execution status and outcome.
//! - `exec` (private): the interpreter, with the run-time records of executions. It reaches
//!   the engine only through a trait the engine implements, so the layers are
//!   model → exec → engine with no cycle.
//! - [`engine`]: the API — [`Engine`], executions, callbacks, redrive.
//!
//! # Using the engine
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use sluice_asl::{Engine, EngineConfig, ExecutionStatus, StateMachine, VirtualClock};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let machine = StateMachine::from_json(
//!     r#"{"StartAt": "Hello", "States": {"Hello": {
//!         "Type": "Pass", "Parameters": {"greeting.$": "States.Format('hi {}', $.who)"}, "End": true}}}"#,
//! )
//! .expect("a valid definition")
//! .named("hello");
//! let engine = Engine::new(EngineConfig {
//!     clock: Arc::new(VirtualClock::new()), // Wait/Retry/timeouts complete instantly
//!     ..EngineConfig::default()
//! });
//! let execution = engine
//!     .start_execution(Arc::new(machine), Some("run-1".into()), json!({"who": "sluice"}))
//!     .expect("started");
//! let outcome = execution.wait().await;
//! assert_eq!(outcome.status, ExecutionStatus::Succeeded);
//! assert_eq!(outcome.output, Some(json!({"greeting": "hi sluice"})));
//! assert_eq!(execution.history().first().map(|e| e.event_type.as_str()), Some("ExecutionStarted"));
//! # }
//! ```
//!
//! Task states reach the host through [`Resources`]: a [`LambdaInvoker`] for Lambda ARNs and
//! `arn:aws:states:::lambda:invoke`, [`ServiceIntegration`]s by service name (`sns`, `ecs`,
//! `aws-sdk:s3`, ...), an [`ObjectStore`] for distributed Map; or through mocked responses
//! ([`TaskMocks`], e.g. [`MockTestCaseMocks`] over a Step Functions Local mock config). A Task
//! with neither fails with `States.Runtime` naming its resource.

pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub(crate) mod exec;
pub mod history;
pub mod items;
pub mod mock;
pub mod model;
pub mod outcome;
pub mod resource;
pub mod validate;

pub use checkpoint::{CheckpointSink, ExecutionCheckpoint, PersistedExecution};
pub use clock::{Clock, RealClock, VirtualClock};
pub use engine::{
    CallbackError, Engine, EngineConfig, ExecutionDescription, ExecutionError, ExecutionHandle,
    ExecutionOutcome, ExecutionStatus, StartError, StartOptions,
};
pub use error::StatesError;
pub use history::{HistoryEvent, HistorySink};
pub use model::{Diagnostic, StateMachine};
pub use resource::{
    FunctionError, InMemoryObjectStore, IntegrationPattern, LambdaInvoker, MockTestCaseMocks,
    MockedResult, ObjectStore, ObjectSummary, Resources, ServiceCall, ServiceIntegration,
    TaskMocks, TaskResource,
};
