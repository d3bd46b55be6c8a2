//! How an engine is set up ([`EngineConfig`]): what the host plugs in (resources, clock,
//! history and checkpoint sinks, mocks), the names that go into ARNs, and the limits AWS
//! enforces. A plain value shared by the API layer ([`crate::engine`]) and the interpreter.

use crate::checkpoint::CheckpointSink;
use crate::clock::{Clock, RealClock};
use crate::history::HistorySink;
use crate::resource::{Resources, TaskMocks};
use std::sync::Arc;

/// How an engine is set up. `EngineConfig::default()` has no resources, the real clock, no
/// history sink and the `local` region.
#[derive(Clone)]
pub struct EngineConfig {
    pub resources: Resources,
    pub clock: Arc<dyn Clock>,
    pub history_sink: Option<Arc<dyn HistorySink>>,
    /// Where executions are checkpointed so another process can continue them (see
    /// [`crate::checkpoint`]). `None`: executions live only in memory.
    pub checkpoint_sink: Option<Arc<dyn CheckpointSink>>,
    /// Mocked task responses applied to every execution (see also
    /// [`crate::engine::StartOptions::mocks`] for one execution).
    pub mocks: Option<Arc<dyn TaskMocks>>,
    /// Region in ARNs and `taskScheduled` events. Default `local`.
    pub region: String,
    /// Account in ARNs. Default `000000000000`.
    pub account: String,
    /// `$$.Execution.RoleArn`.
    pub role_arn: String,
    /// Concurrency of a distributed Map whose MaxConcurrency is 0 (AWS allows up to 10,000
    /// child executions; one machine gets fewer). Default 1,000.
    pub distributed_map_default_concurrency: usize,
    /// The largest state output, in bytes, before `States.DataLimitExceeded` (AWS: 256 KiB).
    /// `None` disables the check.
    pub payload_limit_bytes: Option<usize>,
    /// Send the histories of distributed Map child executions to the history sink too (under
    /// their own ARNs). Off by default: a Map run can have 100,000 children.
    pub record_child_executions: bool,
    /// Keep each execution's history in memory for [`crate::engine::ExecutionHandle::history`]. Default on.
    /// A host that only wants the outcome (`sluice asl run` without `--history`) turns it
    /// off: with no history sink either, no event details are built at all, which is what
    /// makes a 100,000-item Map fast and small.
    pub keep_history: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            resources: Resources::default(),
            clock: Arc::new(RealClock),
            history_sink: None,
            checkpoint_sink: None,
            mocks: None,
            region: "local".into(),
            account: "000000000000".into(),
            role_arn: "arn:aws:iam::000000000000:role/sluice-local".into(),
            distributed_map_default_concurrency: 1000,
            payload_limit_bytes: Some(262_144),
            record_child_executions: false,
            keep_history: true,
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("resources", &self.resources)
            .field("region", &self.region)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// `arn:aws:states:<region>:<account>:stateMachine:<name>`.
    pub fn state_machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.region, self.account
        )
    }

    /// `arn:aws:states:<region>:<account>:execution:<machine>:<name>`: the ARN StartExecution
    /// gives an execution named `name`.
    pub fn execution_arn(&self, machine: &str, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:execution:{machine}:{name}",
            self.region, self.account
        )
    }
}
