//! The embedded runtime: every port of sluice-core implemented on one machine and the pipeline
//! state machine running on the sluice-asl engine, wired so that nothing bypasses the design.
//!
//! - Lambda resources in the state machine resolve to the same handler functions that
//!   `functions/*/src/main.rs` serve on AWS, called in-process.
//! - The launch handler starts processes through the Compute port with the task token; the
//!   process pool emits "ECS Task State Change" events onto the local bus; the task-events
//!   handler answers the token through the Workflows port (the engine's SendTaskSuccess /
//!   SendTaskFailure).
//! - Capacity is the size of the process pool, moved by the scale handler's leases.
//! - `sns:publish` appends to `notifications.jsonl`; every event goes to `events.jsonl`; the
//!   execution history goes to the SQLite job table.
//!
//! Work directory layout: `buckets/<bucket>/<key>`, `sluice.db`, `logs/<job>/<task>-<n>.log`
//! and `logs/<job>/succeeded.log` (see [`crate::tasklog`]), `events.jsonl`,
//! `notifications.jsonl`.

use anyhow::Context;
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sluice_asl::resource::{
    FunctionError, LambdaInvoker, ObjectSummary, ServiceCall, ServiceIntegration,
};
use sluice_asl::{Engine, EngineConfig, ExecutionOutcome, StateMachine, StatesError};
use sluice_core::JobId;
use sluice_core::error::StepError;
use sluice_core::model::ObjectRef;
use sluice_core::ports::{Buckets, StoredPipelines, WorkflowError, Workflows, layout};
use sluice_core::{PipelineConfig, Services};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::bucket::DirObjectStore;
use crate::capacity::{LocalCapacity, Slots};
use crate::compute::{ProcessCompute, SpotInterrupter};
use crate::driver::{
    CANCELLED_ERROR, Cancelled, Driver, Drivers, RedriveError, RedriveStarted, take_cancel_requests,
};
use crate::eventlog::EventLog;
use crate::events::EventSink;
use crate::journal::Journal;
use crate::store::SqliteJobStore;

/// The pipeline state machine, as committed in `statemachines/pipeline.asl.json`.
pub const PIPELINE_ASL: &str = include_str!("../../../statemachines/pipeline.asl.json");
pub const INGEST_BUCKET: &str = "sluice-ingest";
pub const DATA_BUCKET: &str = "sluice-data";
pub const STATE_MACHINE_NAME: &str = "sluice-pipeline";
pub const NOTIFICATION_TOPIC_ARN: &str = "arn:aws:sns:local:000000000000:sluice-notifications";

/// The handlers, by the function name the state machine (or an event rule) uses.
pub const FUNCTIONS: [&str; 8] = [
    "ingest",
    "plan",
    "scale",
    "launch",
    "task-events",
    "aggregate",
    "finish",
    "execution-events",
];

/// The local ARN of a function (what `${PlanFunctionArn}` becomes).
pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:local:000000000000:function:sluice-{name}")
}

/// The definition with its DefinitionSubstitutions applied for the local runtime, as SAM
/// applies them on deploy.
pub fn substitute(definition: &str) -> String {
    let mut subs: BTreeMap<String, String> = BTreeMap::new();
    for name in FUNCTIONS {
        let camel: String = name
            .split('-')
            .map(|part| {
                let mut c = part.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        subs.insert(format!("${{{camel}FunctionArn}}"), function_arn(name));
    }
    subs.insert(
        "${NotificationTopicArn}".into(),
        NOTIFICATION_TOPIC_ARN.into(),
    );
    subs.insert("${DataBucket}".into(), DATA_BUCKET.into());
    subs.iter()
        .fold(definition.to_string(), |text, (k, v)| text.replace(k, v))
}

/// How to set up a runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub workdir: PathBuf,
    /// Most task processes at once; default: the number of CPUs.
    pub max_slots: Option<u32>,
    /// Simulated Spot reclaims: (share of attempts, seed).
    pub spot_interruptions: Option<(f64, u64)>,
    /// Where bare program names in task commands are looked up first; default: the directory
    /// of the running executable (where `ber-sim` is installed beside `sluice`).
    pub bin_dirs: Vec<PathBuf>,
    /// A state machine definition to run instead of the built-in pipeline.asl.json.
    pub definition: Option<String>,
}

impl RuntimeOptions {
    pub fn new(workdir: impl Into<PathBuf>) -> Self {
        let bin_dirs = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .into_iter()
            .collect();
        Self {
            workdir: workdir.into(),
            max_slots: None,
            spot_interruptions: None,
            bin_dirs,
            definition: None,
        }
    }
}

/// Everything running on one machine.
pub struct LocalRuntime {
    pub workdir: PathBuf,
    pub services: Services,
    pub store: SqliteJobStore,
    pub buckets: DirObjectStore,
    pub engine: Engine,
    pub machine: Arc<StateMachine>,
    pub slots: Arc<Slots>,
    bus: Arc<LocalBus>,
    drivers: Arc<Drivers>,
}

impl LocalRuntime {
    pub fn open(options: RuntimeOptions) -> anyhow::Result<Self> {
        // Absolute: tasks run in their pipeline's directory, and the paths they are given
        // (bucket files under the work directory) must resolve from there.
        let workdir = std::path::absolute(&options.workdir).unwrap_or(options.workdir.clone());
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("creating work directory {}", workdir.display()))?;
        let store =
            SqliteJobStore::open(&workdir.join("sluice.db")).context("opening the job table")?;
        let buckets = DirObjectStore::new(workdir.join("buckets"));
        for b in [INGEST_BUCKET, DATA_BUCKET] {
            std::fs::create_dir_all(buckets.root().join(b))?;
        }
        let max_slots = options.max_slots.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1)
        });
        let slots = Slots::new(0);
        let bus = Arc::new(LocalBus::new(&workdir, &store)?);
        let interrupter = options
            .spot_interruptions
            .map(|(rate, seed)| Arc::new(SpotInterrupter::new(rate, seed)));
        let compute = ProcessCompute::new(
            buckets.clone(),
            slots.clone(),
            bus.clone(),
            &workdir,
            options.bin_dirs.clone(),
            interrupter,
        );
        let capacity = LocalCapacity::new(store.clone(), slots.clone(), max_slots);
        let handlers = Arc::new(Handlers::default());
        let notifications = Arc::new(SnsToFile {
            path: workdir.join("notifications.jsonl"),
            lock: Mutex::new(()),
        });
        let resources = sluice_asl::resource::Resources::new()
            .with_lambda(handlers.clone())
            .with_service("sns", notifications.clone())
            .with_object_store(Arc::new(buckets.clone()));
        let journal =
            Journal::start(store.clone()).context("starting the job table's journal writer")?;
        let engine = Engine::new(EngineConfig {
            resources,
            history_sink: Some(Arc::new(journal.clone())),
            checkpoint_sink: Some(Arc::new(journal.clone())),
            // The history is persisted in SQLite as it happens (`sluice status` reads it
            // there); keeping it in memory too would grow `sluice serve` with every job.
            keep_history: false,
            ..EngineConfig::default()
        });
        let definition = substitute(options.definition.as_deref().unwrap_or(PIPELINE_ASL));
        let machine = StateMachine::from_json(&definition)
            .map_err(|diags| {
                let lines: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
                anyhow::anyhow!(
                    "the pipeline state machine is invalid:\n{}",
                    lines.join("\n")
                )
            })?
            .named(STATE_MACHINE_NAME);
        let machine = Arc::new(machine);
        engine.register_state_machine(machine.clone());
        let drivers = Arc::new(Drivers {
            locks: workdir.join("locks"),
            engine: engine.clone(),
            journal,
            store: store.clone(),
            notifications: notifications.clone(),
            bus: bus.clone(),
            services: OnceLock::new(),
            driven: Mutex::new(HashMap::new()),
        });
        let workflows = LocalWorkflows {
            engine: engine.clone(),
            machine: machine.clone(),
            drivers: drivers.clone(),
        };
        let services = Services {
            objects: Arc::new(buckets.clone()),
            jobs: Arc::new(store.clone()),
            compute: Arc::new(compute),
            capacity: Arc::new(capacity),
            workflows: Arc::new(workflows),
            pipelines: Arc::new(StoredPipelines {
                store: buckets.clone(),
                bucket: DATA_BUCKET.into(),
                prefix: layout::PIPELINES_PREFIX.into(),
            }),
            notifier: Arc::new(sluice_notify::HttpAndCommandNotifier::default()),
            buckets: Buckets {
                ingest: INGEST_BUCKET.into(),
                data: DATA_BUCKET.into(),
            },
            job_pipelines: Default::default(),
        };
        let _ = handlers.services.set(services.clone());
        let _ = bus.services.set(services.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let _ = bus.handlers.set(handle);
        }
        let _ = drivers.services.set(services.clone());
        // Capacity leases outlive processes: size the pool for the ones held now.
        if let Ok((total, _)) = store.lease_totals() {
            slots.set_limit((total as u32).min(max_slots));
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(take_cancel_requests(Arc::downgrade(&drivers)));
        }
        Ok(Self {
            workdir,
            services,
            store,
            buckets,
            engine,
            machine,
            slots,
            bus,
            drivers,
        })
    }

    /// The job's execution, once it has ended and its end has been handled (the job recorded,
    /// its tasks stopped, its capacity released); `None` while it runs or if this process does
    /// not drive it.
    pub fn settled(&self, execution_arn: &str) -> Option<ExecutionOutcome> {
        self.drivers.settled(execution_arn)
    }

    /// Waits until the execution has settled (see [`LocalRuntime::settled`]).
    pub async fn wait_settled(&self, execution_arn: &str) -> Option<ExecutionOutcome> {
        let mut rx = lock(&self.drivers.driven)
            .get(execution_arn)
            .map(|d| d.settled.clone())?;
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return Some(o);
            }
            rx.changed().await.ok()?;
        }
    }

    /// Lets go of a settled execution (its record stays in the job table): a long-running
    /// `sluice serve` keeps no memory of every job it ever ran. No-op while it runs.
    pub fn forget(&self, execution_arn: &str) {
        if self.settled(execution_arn).is_some() {
            lock(&self.drivers.driven).remove(execution_arn);
            self.engine.forget_execution(execution_arn);
        }
    }

    /// Whether a live process (this one or another) drives the job's execution.
    pub fn driver_of(&self, job: &JobId) -> Driver {
        self.drivers.driver_of(job.as_str())
    }

    /// Continues a job whose execution stopped (FAILED, ABORTED) or whose process died
    /// (RUNNING with no live driver), like Step Functions' RedriveExecution; see
    /// docs/architecture.md, "Durable executions".
    pub async fn redrive(&self, job_id: &JobId) -> Result<RedriveStarted, RedriveError> {
        self.drivers.redrive(&self.machine, job_id).await
    }

    /// Cancels a job like StopExecution: its tasks are stopped, it is recorded ABORTED with
    /// `reason`, its capacity is released and the notification is sent, whichever process
    /// drives it.
    pub async fn cancel(&self, job_id: &JobId, reason: &str) -> Result<Cancelled, RedriveError> {
        self.drivers.cancel(job_id, reason).await
    }

    /// Stops every execution this process drives (as `sluice cancel` would each job) and waits
    /// until each has settled.
    pub async fn cancel_all(&self, reason: &str) -> Vec<String> {
        let arns: Vec<(String, String)> = lock(&self.drivers.driven)
            .iter()
            .map(|(arn, d)| (arn.clone(), d.job.clone()))
            .collect();
        for (arn, _) in &arns {
            let _ = self.engine.stop_execution(
                arn,
                Some(CANCELLED_ERROR.into()),
                Some(reason.to_string()),
            );
        }
        for (arn, _) in &arns {
            self.wait_settled(arn).await;
        }
        arns.into_iter().map(|(_, job)| job).collect()
    }

    /// Make a pipeline known (as uploading `pipelines/<name>.toml` to the data bucket does on AWS).
    pub fn register_pipeline(&self, cfg: &PipelineConfig) -> anyhow::Result<()> {
        let text = toml::to_string(cfg).context("serialising the pipeline")?;
        self.buckets.put_sync(
            DATA_BUCKET,
            &format!("{}{}.toml", layout::PIPELINES_PREFIX, cfg.name),
            text.as_bytes(),
        )?;
        Ok(())
    }

    /// Put a file into the ingest bucket under `key` and return the Object Created event S3
    /// would send for it.
    pub fn upload(&self, file: &Path, key: &str) -> anyhow::Result<Value> {
        // Every PUT gets a new sequencer, as in S3: uploading the same file again is a new job.
        let sequencer = format!(
            "{:020X}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        self.upload_as(file, key, &sequencer)
    }

    /// [`LocalRuntime::upload`] with the S3 sequencer given: the same (key, content,
    /// sequencer) is the same object, so delivering its event again is the same job.
    pub fn upload_as(&self, file: &Path, key: &str, sequencer: &str) -> anyhow::Result<Value> {
        let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        self.buckets.put_sync(INGEST_BUCKET, key, &body)?;
        let etag = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(&body)[..16])
        };
        Ok(sluice_fn_ingest::object_created_event(
            INGEST_BUCKET,
            key,
            body.len() as u64,
            &etag,
            sequencer,
        ))
    }

    /// Deliver an event to the handler an EventBridge rule would route it to, and return the
    /// handler's result.
    pub async fn deliver(&self, event: Value) -> Result<Value, StepError> {
        self.bus.log(&event);
        route(&self.services, &event).await?.into_value()
    }

    /// Invoke one handler by function name, as `sam local invoke` would.
    pub async fn invoke(&self, function: &str, payload: Value) -> Result<Value, StepError> {
        dispatch(&self.services, function, payload).await
    }

    /// The directory-bucket file behind an object; a prefix's directory.
    pub fn path_of(&self, object: &ObjectRef) -> anyhow::Result<PathBuf> {
        Ok(self.buckets.path_of_ref(object)?)
    }
}

/// What the handler an event was routed to answered. Task-events' report (two events per
/// task) stays typed: the bus only logs it at debug level, and made into JSON per event it
/// was work for nobody.
pub(crate) enum Handled {
    TaskEvent(sluice_fn_task_events::TaskEventReport),
    Other(Value),
}

impl Handled {
    /// The answer as the handler's JSON output.
    pub(crate) fn into_value(self) -> Result<Value, StepError> {
        match self {
            Handled::TaskEvent(report) => serde_json::to_value(report).map_err(StepError::internal),
            Handled::Other(value) => Ok(value),
        }
    }
}

impl std::fmt::Display for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handled::TaskEvent(report) => match serde_json::to_string(report) {
                Ok(json) => f.write_str(&json),
                Err(_) => write!(f, "{report:?}"),
            },
            Handled::Other(value) => write!(f, "{value}"),
        }
    }
}

/// Route an EventBridge-shaped event like the stack's rules do. The event is lent, not given:
/// a delivery that fails is retried with the same event, and the task-events handler (two
/// events per task) reads it where it is.
pub(crate) async fn route(services: &Services, event: &Value) -> Result<Handled, StepError> {
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let function = match detail_type {
        sluice_core::events::ECS_TASK_STATE_CHANGE
        | sluice_core::events::BATCH_JOB_STATE_CHANGE
        | sluice_core::events::EC2_SPOT_INTERRUPTION_WARNING
        | sluice_core::events::EC2_INSTANCE_STATE_CHANGE => {
            let report = sluice_fn_task_events::handle_event(services, event).await?;
            return Ok(Handled::TaskEvent(report));
        }
        sluice_core::events::S3_OBJECT_CREATED | sluice_fn_ingest::SCHEDULE_DETAIL_TYPE => "ingest",
        sluice_core::events::SFN_EXECUTION_STATUS_CHANGE => "execution-events",
        other => {
            return Err(StepError::invalid_input(format!(
                "no rule matches events of type '{other}'"
            )));
        }
    };
    dispatch(services, function, event.clone())
        .await
        .map(Handled::Other)
}

/// Runs a handler on a payload read into its input type; a handler of raw events (`Value`)
/// gets the payload as it is ([`call_raw`]): reading a `Value` into a `Value` copies it whole.
async fn call<I, O, F, Fut>(services: &Services, payload: Value, f: F) -> Result<Value, StepError>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(Services, I) -> Fut,
    Fut: std::future::Future<Output = Result<O, StepError>>,
{
    let input: I = serde_json::from_value(payload)
        .map_err(|e| StepError::invalid_input(format!("invalid payload: {e}")))?;
    let output = f(services.clone(), input).await?;
    serde_json::to_value(output).map_err(StepError::internal)
}

async fn call_raw<O, F, Fut>(services: &Services, payload: Value, f: F) -> Result<Value, StepError>
where
    O: Serialize,
    F: FnOnce(Services, Value) -> Fut,
    Fut: std::future::Future<Output = Result<O, StepError>>,
{
    let output = f(services.clone(), payload).await?;
    serde_json::to_value(output).map_err(StepError::internal)
}

/// Run a handler by name with a JSON payload: the in-process equivalent of Lambda Invoke.
pub async fn dispatch(
    services: &Services,
    function: &str,
    payload: Value,
) -> Result<Value, StepError> {
    match function {
        "ingest" => {
            call_raw(services, payload, |s, i| async move {
                sluice_fn_ingest::handle(&s, i).await
            })
            .await
        }
        "plan" => {
            call(services, payload, |s, i| async move {
                sluice_fn_plan::handle(&s, i).await
            })
            .await
        }
        "scale" => {
            call(services, payload, |s, i| async move {
                sluice_fn_scale::handle(&s, i).await
            })
            .await
        }
        "launch" => {
            call(services, payload, |s, i| async move {
                sluice_fn_launch::handle(&s, i).await
            })
            .await
        }
        "task-events" => {
            call_raw(services, payload, |s, i| async move {
                sluice_fn_task_events::handle(&s, i).await
            })
            .await
        }
        "aggregate" => {
            call(services, payload, |s, i| async move {
                sluice_fn_aggregate::handle(&s, i).await
            })
            .await
        }
        "finish" => {
            call(services, payload, |s, i| async move {
                sluice_fn_finish::handle(&s, i).await
            })
            .await
        }
        "execution-events" => {
            call_raw(services, payload, |s, i| async move {
                sluice_fn_execution_events::handle(&s, i).await
            })
            .await
        }
        other => Err(StepError::invalid_input(format!(
            "unknown function '{other}'; the functions are: {}",
            FUNCTIONS.join(", ")
        ))),
    }
}

/// Lambda resources of the state machine, served by the in-process handlers.
#[derive(Default)]
struct Handlers {
    services: OnceLock<Services>,
}

#[async_trait]
impl LambdaInvoker for Handlers {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError> {
        let Some(services) = self.services.get() else {
            return Err(FunctionError::new(
                "Lambda.ServiceException",
                "the runtime is still starting",
            ));
        };
        // Accept an ARN (with or without a version/alias) or a bare name.
        let name = function.split(':').nth(6).unwrap_or(function);
        let Some(handler) = name.strip_prefix("sluice-") else {
            return Err(FunctionError::new(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {function}"),
            ));
        };
        if !FUNCTIONS.contains(&handler) {
            return Err(FunctionError::new(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {function}"),
            ));
        }
        // A Lambda invocation, once started, runs to its end even if the state that invoked it
        // times out or its execution stops: spawned, the handler is not cancelled with the
        // state's future (a launch cut off between recording its attempt and starting it
        // would leave exactly the half-done work a real Lambda never leaves).
        let services = services.clone();
        let handler = handler.to_string();
        let run = tokio::spawn(async move { dispatch(&services, &handler, payload).await });
        match run.await {
            Ok(result) => result.map_err(|e| FunctionError::new(e.name.as_str(), e.cause)),
            Err(e) => Err(FunctionError::new(
                "Lambda.ServiceException",
                format!("the function {function} crashed: {e}"),
            )),
        }
    }
}

/// One JSON line, serialised whole so that it is written with one write(2): `writeln!` with
/// a `Value`'s Display writes every token on its own (hundreds of system calls per event).
fn json_line(v: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    line
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `arn:aws:states:::sns:publish` on one machine: one JSON line per message.
pub(crate) struct SnsToFile {
    path: PathBuf,
    lock: Mutex<()>,
}

#[async_trait]
impl ServiceIntegration for SnsToFile {
    async fn call(&self, call: ServiceCall) -> Result<Value, StatesError> {
        if call.action != "publish" {
            return Err(StatesError::new(
                "SNS.InvalidParameterException",
                format!("sns:{} is not supported locally", call.action),
            ));
        }
        let message_id = self
            .publish(call.parameters)
            .map_err(|e| StatesError::new("SNS.InternalErrorException", e.to_string()))?;
        Ok(json!({"MessageId": message_id}))
    }
}

impl SnsToFile {
    /// Appends one message (SNS Publish parameters); returns its message id.
    pub(crate) fn publish(&self, parameters: Value) -> std::io::Result<String> {
        let message_id = uuid::Uuid::new_v4().to_string();
        let line = json!({"MessageId": message_id, "time": chrono::Utc::now().to_rfc3339(), "publish": parameters});
        let _guard = lock(&self.lock);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&json_line(&line))?;
        Ok(message_id)
    }
}

/// The Workflows port on the embedded engine.
struct LocalWorkflows {
    engine: Engine,
    machine: Arc<StateMachine>,
    drivers: Arc<Drivers>,
}

fn token_error(e: sluice_asl::CallbackError) -> WorkflowError {
    WorkflowError::TokenClosed(e.to_string())
}

#[async_trait]
impl Workflows for LocalWorkflows {
    async fn start_execution(&self, name: &str, input: &Value) -> Result<String, WorkflowError> {
        let arn = self.engine.execution_arn(&self.machine.name, name);
        if self.drivers.settled(&arn).is_none() && lock(&self.drivers.driven).contains_key(&arn) {
            // Already running here: StartExecution with the same name and input is idempotent.
            return Ok(arn);
        }
        let claim = self
            .drivers
            .claim(name)
            .map_err(|e| WorkflowError::Backend(e.to_string()))?;
        match self.engine.start_execution(
            self.machine.clone(),
            Some(name.to_string()),
            input.clone(),
        ) {
            Ok(handle) => {
                self.drivers.drive(handle.clone(), name, claim);
                Ok(handle.arn().to_string())
            }
            Err(sluice_asl::StartError::ExecutionAlreadyExists(arn)) => {
                Err(WorkflowError::AlreadyExists(arn))
            }
            Err(e) => Err(WorkflowError::Backend(e.to_string())),
        }
    }

    /// Every send is taken by the engine or finds the token closed (`token_error`): nothing
    /// to send again.
    fn sends_settle_answers(&self) -> bool {
        true
    }

    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError> {
        self.engine
            .send_task_success(token, output.clone())
            .map_err(token_error)
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: sluice_core::ErrorName,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.engine
            .send_task_failure(token, error.as_str(), cause)
            .map_err(token_error)
    }

    async fn stop_execution(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.engine
            .stop_execution(execution_arn, Some(error.into()), Some(cause.into()))
            .map_err(|e| WorkflowError::NoSuchExecution(e.to_string()))
    }

    async fn redrive_execution(&self, execution_arn: &str) -> Result<(), WorkflowError> {
        // Executions are named after their jobs; a redrive continues the job.
        let name = execution_arn.rsplit(':').next().unwrap_or_default();
        let job = JobId::new(name)
            .map_err(|_| WorkflowError::NoSuchExecution(execution_arn.to_string()))?;
        match self.drivers.redrive(&self.machine, &job).await {
            Ok(_) => Ok(()),
            Err(RedriveError::UnknownJob(_) | RedriveError::NoExecution(_)) => {
                Err(WorkflowError::NoSuchExecution(execution_arn.to_string()))
            }
            Err(e @ (RedriveError::Succeeded(_) | RedriveError::DrivenElsewhere { .. })) => {
                Err(WorkflowError::NotRedrivable(e.to_string()))
            }
            Err(e) => Err(WorkflowError::Backend(e.to_string())),
        }
    }
}

#[async_trait]
impl sluice_asl::resource::ObjectStore for DirObjectStore {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StatesError> {
        self.get_sync(bucket, key).map_err(|e| match e {
            sluice_core::StoreError::NotFound(m) => StatesError::new(
                "S3.NoSuchKey",
                format!("The specified key does not exist: {m}"),
            ),
            other => StatesError::new("S3.S3Exception", other.to_string()),
        })
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StatesError> {
        let keys = self
            .list_sync(bucket, prefix)
            .map_err(|e| StatesError::new("S3.S3Exception", e.to_string()))?;
        Ok(keys
            .into_iter()
            .map(|(key, size)| ObjectSummary {
                key,
                size,
                etag: None,
                last_modified: None,
                storage_class: None,
            })
            .collect())
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), StatesError> {
        self.put_sync(bucket, key, &body)
            .map_err(|e| StatesError::new("S3.S3Exception", e.to_string()))
    }
}

/// The local EventBridge: logs every event and routes it to its handler, retrying a failed
/// delivery a few times with backoff as an EventBridge target retry policy would.
pub(crate) struct LocalBus {
    services: OnceLock<Services>,
    /// Where handlers run: the runtime that opened the bus (events come from the process
    /// pool's own thread too, which must not run handlers).
    handlers: OnceLock<tokio::runtime::Handle>,
    log: Arc<EventLog>,
}

impl LocalBus {
    /// The bus of `workdir`, whose log is written out before every commit of `store` (the
    /// log never lags the job table, see [`crate::eventlog`]).
    fn new(workdir: &Path, store: &SqliteJobStore) -> anyhow::Result<Self> {
        let path = workdir.join("events.jsonl");
        let log = EventLog::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let weak = Arc::downgrade(&log);
        store.before_commit(move || {
            if let Some(log) = weak.upgrade() {
                log.flush();
            }
        });
        Ok(Self {
            services: OnceLock::new(),
            handlers: OnceLock::new(),
            log,
        })
    }

    pub(crate) fn log(&self, event: &Value) {
        self.log.append(event);
    }
}

/// Whether one of the stack's EventBridge rules (infra/template.yaml) would deliver `event` to
/// a target: the rules on ECS and Batch state changes match only the end of a task (`STOPPED`;
/// `SUCCEEDED` / `FAILED`), the one on EC2 state changes only an instance going away. Every
/// event is still logged to `events.jsonl`, as it would be on the bus; only what a rule matches
/// reaches a handler, so a task's RUNNING event costs nothing here, as on AWS.
pub(crate) fn a_rule_matches(event: &Value) -> bool {
    let detail = &event["detail"];
    let field = |name: &str| detail.get(name).and_then(Value::as_str).unwrap_or("");
    match event.get("detail-type").and_then(Value::as_str) {
        Some(sluice_core::events::ECS_TASK_STATE_CHANGE) => field("lastStatus") == "STOPPED",
        Some(sluice_core::events::BATCH_JOB_STATE_CHANGE) => {
            matches!(field("status"), "SUCCEEDED" | "FAILED")
        }
        Some(sluice_core::events::EC2_INSTANCE_STATE_CHANGE) => {
            matches!(field("state"), "shutting-down" | "stopping")
        }
        _ => true,
    }
}

impl EventSink for LocalBus {
    fn publish(&self, event: Value) {
        self.log(&event);
        if !a_rule_matches(&event) {
            return;
        }
        let Some(services) = self.services.get().cloned() else {
            tracing::error!("event published before the runtime started; dropped");
            return;
        };
        let delivery = deliver_with_retries(services, event);
        match self.handlers.get() {
            Some(handle) => drop(handle.spawn(delivery)),
            None => drop(tokio::spawn(delivery)),
        }
    }

    fn deliver(
        &self,
        event: Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.log(&event);
        let services = self.services.get().cloned();
        Box::pin(async move {
            match services {
                Some(services) => deliver_with_retries(services, event).await,
                None => tracing::error!("event delivered before the runtime started; dropped"),
            }
        })
    }
}

/// Routes one event to its handler, retrying a failed delivery like an EventBridge target.
async fn deliver_with_retries(services: Services, event: Value) {
    let mut delay = std::time::Duration::from_millis(100);
    for attempt in 1..=4 {
        match route(&services, &event).await {
            Ok(result) => {
                tracing::debug!(%result, "event handled");
                return;
            }
            // Bad events are not retried: they will not get better.
            Err(e) if e.name == sluice_core::ErrorName::InvalidInput => {
                tracing::error!(error = %e, "event rejected");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "event delivery failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    tracing::error!("event delivery failed 4 times; dropped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail_type: &str, detail: Value) -> Value {
        json!({"detail-type": detail_type, "detail": detail})
    }

    #[test]
    fn only_what_the_stacks_rules_match_reaches_a_handler() {
        use sluice_core::events::*;
        let cases = [
            (
                ECS_TASK_STATE_CHANGE,
                json!({"lastStatus": "RUNNING"}),
                false,
            ),
            (
                ECS_TASK_STATE_CHANGE,
                json!({"lastStatus": "PENDING"}),
                false,
            ),
            (
                ECS_TASK_STATE_CHANGE,
                json!({"lastStatus": "STOPPED"}),
                true,
            ),
            (BATCH_JOB_STATE_CHANGE, json!({"status": "RUNNING"}), false),
            (BATCH_JOB_STATE_CHANGE, json!({"status": "FAILED"}), true),
            (BATCH_JOB_STATE_CHANGE, json!({"status": "SUCCEEDED"}), true),
            (
                EC2_INSTANCE_STATE_CHANGE,
                json!({"state": "running"}),
                false,
            ),
            (
                EC2_INSTANCE_STATE_CHANGE,
                json!({"state": "shutting-down"}),
                true,
            ),
            (
                EC2_INSTANCE_STATE_CHANGE,
                json!({"state": "stopping"}),
                true,
            ),
            (
                EC2_SPOT_INTERRUPTION_WARNING,
                json!({"instance-id": "i-1"}),
                true,
            ),
            (S3_OBJECT_CREATED, json!({"bucket": {"name": "b"}}), true),
        ];
        for (detail_type, detail, routed) in cases {
            assert_eq!(
                a_rule_matches(&event(detail_type, detail.clone())),
                routed,
                "{detail_type} {detail}"
            );
        }
    }

    /// The filter above copies the stack's event patterns: if they change, this says so.
    #[test]
    fn the_filter_is_the_one_of_the_stacks_rules() {
        let template = include_str!("../../../infra/template.yaml");
        for pattern in [
            "lastStatus: [STOPPED]",
            "status: [SUCCEEDED, FAILED]",
            "state: [shutting-down, stopping]",
        ] {
            assert!(
                template.contains(pattern),
                "infra/template.yaml no longer has the rule pattern `{pattern}`"
            );
        }
    }
}
