//! Pluggable task resources: how a Task state reaches the outside world.
//!
//! The engine does the AWS side of a Task (parsing the `Resource` ARN, the integration pattern,
//! the shape of `lambda:invoke` results, task tokens, `.sync` child executions); the host plugs
//! in the code that actually does the work:
//! - [`LambdaInvoker`] for bare Lambda ARNs and `arn:aws:states:::lambda:invoke`;
//! - [`ServiceIntegration`]s, registered by service name (`"ecs"`, `"sns"`, `"dynamodb"`,
//!   `"aws-sdk:s3"`, ...), for every other `arn:aws:states:::<service>:<action>` resource;
//! - an [`ObjectStore`] for distributed Map ItemReader / ResultWriter (S3 in AWS).
//!
//! [`Resources`] bundles them; [`TaskMocks`] replaces host calls with canned responses
//! (Step Functions Local mock configurations).

use crate::error::StatesError;
pub use crate::mock::MockedResult;
use crate::mock::{MockConfig, MockConfigError};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A Lambda function error: what the function threw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct FunctionError {
    /// The error name Retry/Catch match on, e.g. `Sluice.SpotInterrupted` or `Unhandled`.
    pub error_type: String,
    /// The error message.
    pub message: String,
}

impl FunctionError {
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// Runs Lambda functions for the engine.
#[async_trait]
pub trait LambdaInvoker: Send + Sync {
    /// Invoke a function by name or ARN with a payload; `Err` is a function error.
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, FunctionError>;
}

/// How a Task waits for a service call (the ARN suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationPattern {
    /// No suffix: the call's response is the result.
    RequestResponse,
    /// `.sync`: the host returns only once the job has finished.
    Sync,
    /// `.waitForTaskToken`: the host's response is ignored; the result comes from
    /// `send_task_success` / `send_task_failure` with the task token.
    WaitForTaskToken,
}

impl IntegrationPattern {
    /// The ARN suffix, as written after the action (`""`, `".sync"`, `".waitForTaskToken"`).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::RequestResponse => "",
            Self::Sync => ".sync",
            Self::WaitForTaskToken => ".waitForTaskToken",
        }
    }
}

/// One call of a service integration, as the host sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCall {
    /// `"sns"`, `"ecs"`, `"dynamodb"`, `"aws-sdk:s3"`, ...
    pub service: String,
    /// `"publish"`, `"runTask"`, `"getObject"`, ... (without the pattern suffix)
    pub action: String,
    pub pattern: IntegrationPattern,
    /// The state's effective parameters (after InputPath and Parameters).
    pub parameters: Value,
    /// Set for `.waitForTaskToken`: the token the host must report back with.
    pub task_token: Option<String>,
    pub state_name: String,
    pub execution_arn: String,
}

/// A host-side implementation of a service (`arn:aws:states:::<service>:<action>`).
#[async_trait]
pub trait ServiceIntegration: Send + Sync {
    /// Perform the call; for `.sync` return when the job is done; for `.waitForTaskToken`
    /// return once the work is handed off (the result then arrives via the task token).
    async fn call(&self, call: ServiceCall) -> Result<Value, StatesError>;
}

/// One entry of an object listing (S3 ListObjectsV2 `Contents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub storage_class: Option<String>,
}

impl ObjectSummary {
    /// The item a distributed Map reading `s3:listObjectsV2` iterates over, AWS-shaped.
    pub fn to_item(&self) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(e) = &self.etag {
            m.insert("Etag".into(), Value::String(e.clone()));
        }
        m.insert("Key".into(), Value::String(self.key.clone()));
        if let Some(l) = &self.last_modified {
            m.insert("LastModified".into(), Value::String(l.clone()));
        }
        m.insert("Size".into(), Value::from(self.size));
        m.insert(
            "StorageClass".into(),
            Value::String(
                self.storage_class
                    .clone()
                    .unwrap_or_else(|| "STANDARD".into()),
            ),
        );
        Value::Object(m)
    }
}

/// Object storage for distributed Map (ItemReader `s3:getObject` / `s3:listObjectsV2`,
/// ResultWriter `s3:putObject`).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StatesError>;
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StatesError>;
    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), StatesError>;
}

/// An [`ObjectStore`] in memory: for tests, the CLI, and hosts without S3.
type Objects = BTreeMap<(String, String), Arc<Vec<u8>>>;

#[derive(Debug, Default, Clone)]
pub struct InMemoryObjectStore {
    objects: Arc<Mutex<Objects>>,
}

impl InMemoryObjectStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object (synchronously, for test setup).
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.lock()
            .insert((bucket.into(), key.into()), Arc::new(body.into()));
    }

    /// Reads an object back (synchronously, for assertions).
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.lock()
            .get(&(bucket.to_string(), key.to_string()))
            .map(|b| b.as_ref().clone())
    }

    /// All keys in a bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn no_such_key(bucket: &str, key: &str) -> StatesError {
    StatesError::new(
        "S3.NoSuchKeyException",
        format!("The specified key does not exist. (Bucket: {bucket}, Key: {key})"),
    )
}

#[async_trait]
impl ObjectStore for InMemoryObjectStore {
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StatesError> {
        self.get(bucket, key)
            .ok_or_else(|| no_such_key(bucket, key))
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectSummary>, StatesError> {
        Ok(self
            .lock()
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .map(|((_, k), body)| ObjectSummary {
                key: k.clone(),
                size: body.len() as u64,
                etag: None,
                last_modified: None,
                storage_class: None,
            })
            .collect())
    }

    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), StatesError> {
        self.insert(bucket, key, body);
        Ok(())
    }
}

/// The host's plugged-in resources. Cheap to clone.
#[derive(Clone, Default)]
pub struct Resources {
    lambda: Option<Arc<dyn LambdaInvoker>>,
    services: HashMap<String, Arc<dyn ServiceIntegration>>,
    objects: Option<Arc<dyn ObjectStore>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut services: Vec<_> = self.services.keys().collect();
        services.sort();
        f.debug_struct("Resources")
            .field("lambda", &self.lambda.is_some())
            .field("services", &services)
            .field("objects", &self.objects.is_some())
            .finish()
    }
}

impl Resources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the Lambda invoker.
    pub fn with_lambda(mut self, lambda: Arc<dyn LambdaInvoker>) -> Self {
        self.lambda = Some(lambda);
        self
    }

    /// Registers a service integration under its service name (`"ecs"`, `"aws-sdk:s3"`, ...).
    pub fn with_service(
        mut self,
        service: impl Into<String>,
        integration: Arc<dyn ServiceIntegration>,
    ) -> Self {
        self.services.insert(service.into(), integration);
        self
    }

    /// Sets the object store used by distributed Map.
    pub fn with_object_store(mut self, objects: Arc<dyn ObjectStore>) -> Self {
        self.objects = Some(objects);
        self
    }

    pub fn lambda(&self) -> Option<&Arc<dyn LambdaInvoker>> {
        self.lambda.as_ref()
    }

    pub fn service(&self, service: &str) -> Option<&Arc<dyn ServiceIntegration>> {
        self.services.get(service)
    }

    pub fn object_store(&self) -> Option<&Arc<dyn ObjectStore>> {
        self.objects.as_ref()
    }
}

/// Canned responses for Task states, keyed by state name and invocation number (0-based,
/// counted per state per execution, retries included), as Step Functions Local does.
pub trait TaskMocks: Send + Sync {
    /// The response for the `invocation`-th call of `state`, or `None` to call the host.
    fn response(&self, state: &str, invocation: u32) -> Option<MockedResult>;
}

/// One test case of a Step Functions Local mock configuration, as [`TaskMocks`].
#[derive(Debug, Clone)]
pub struct MockTestCaseMocks {
    config: Arc<MockConfig>,
    state_machine: String,
    test_case: String,
}

impl MockTestCaseMocks {
    /// Selects `test_case` of `state_machine`; fails when the config does not have it.
    pub fn new(
        config: Arc<MockConfig>,
        state_machine: &str,
        test_case: &str,
    ) -> Result<Self, MockConfigError> {
        config.test_case(state_machine, test_case)?;
        Ok(Self {
            config,
            state_machine: state_machine.to_string(),
            test_case: test_case.to_string(),
        })
    }
}

impl TaskMocks for MockTestCaseMocks {
    fn response(&self, state: &str, invocation: u32) -> Option<MockedResult> {
        self.config
            .test_case(&self.state_machine, &self.test_case)
            .ok()?
            .response(state, invocation)
    }
}

/// What a Task state's `Resource` names, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskResource {
    /// `arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`: result = return value.
    LambdaFunction { arn: String },
    /// `arn:aws:states:::lambda:invoke[.waitForTaskToken]`.
    LambdaInvoke { pattern: IntegrationPattern },
    /// `arn:aws:states:::states:startExecution[.sync[:2]|.waitForTaskToken]`.
    StartExecution {
        pattern: IntegrationPattern,
        /// `.sync:2` returns the child's output as JSON rather than a string.
        json_output: bool,
    },
    /// `arn:aws:states:::<service>:<action>[.sync|.waitForTaskToken]`.
    Service {
        service: String,
        action: String,
        pattern: IntegrationPattern,
    },
    /// `arn:aws:states:<region>:<account>:activity:<name>`.
    Activity { arn: String },
}

impl TaskResource {
    /// Parses a Task `Resource`. `Err` carries a message naming the resource.
    pub fn parse(resource: &str) -> Result<Self, String> {
        let parts: Vec<&str> = resource.splitn(6, ':').collect();
        if parts.len() < 6 || parts[0] != "arn" {
            return Err(format!("'{resource}' is not a valid resource ARN"));
        }
        let (svc, rest) = (parts[2], parts[5]);
        match svc {
            "lambda" if rest.starts_with("function:") => Ok(Self::LambdaFunction {
                arn: resource.to_string(),
            }),
            "states" if rest.starts_with("activity:") => Ok(Self::Activity {
                arn: resource.to_string(),
            }),
            "states" if parts[3].is_empty() && parts[4].is_empty() => {
                // arn:aws:states:::<service>:<action><suffix>, where service may be "aws-sdk:s3"
                let (service, action_with_suffix) = match rest.strip_prefix("aws-sdk:") {
                    Some(r) => match r.split_once(':') {
                        Some((s, a)) => (format!("aws-sdk:{s}"), a),
                        None => return Err(format!("'{resource}' names no SDK action")),
                    },
                    None => match rest.split_once(':') {
                        Some((s, a)) => (s.to_string(), a),
                        None => return Err(format!("'{resource}' names no service action")),
                    },
                };
                let (action, pattern, json_output) =
                    if let Some(a) = action_with_suffix.strip_suffix(".waitForTaskToken") {
                        (a, IntegrationPattern::WaitForTaskToken, false)
                    } else if let Some(a) = action_with_suffix.strip_suffix(".sync:2") {
                        (a, IntegrationPattern::Sync, true)
                    } else if let Some(a) = action_with_suffix.strip_suffix(".sync") {
                        (a, IntegrationPattern::Sync, false)
                    } else {
                        (
                            action_with_suffix,
                            IntegrationPattern::RequestResponse,
                            false,
                        )
                    };
                if action.is_empty() {
                    return Err(format!("'{resource}' names no action"));
                }
                Ok(match (service.as_str(), action) {
                    ("lambda", "invoke") => Self::LambdaInvoke { pattern },
                    ("states", "startExecution") => Self::StartExecution {
                        pattern,
                        json_output,
                    },
                    _ => Self::Service {
                        service,
                        action: action.to_string(),
                        pattern,
                    },
                })
            }
            _ => Err(format!("'{resource}' is not a supported Task resource")),
        }
    }

    /// The integration pattern (bare Lambda ARNs and activities count as request/response).
    pub fn pattern(&self) -> IntegrationPattern {
        match self {
            Self::LambdaInvoke { pattern }
            | Self::StartExecution { pattern, .. }
            | Self::Service { pattern, .. } => *pattern,
            Self::LambdaFunction { .. } | Self::Activity { .. } => {
                IntegrationPattern::RequestResponse
            }
        }
    }

    /// `resourceType` in task history events (`lambda`, `states`, `sns`, `aws-sdk:s3`).
    pub fn resource_type(&self) -> &str {
        match self {
            Self::LambdaFunction { .. } | Self::LambdaInvoke { .. } => "lambda",
            Self::StartExecution { .. } | Self::Activity { .. } => "states",
            Self::Service { service, .. } => service,
        }
    }

    /// `resource` in task history events (`invoke`, `startExecution.sync`, `publish`).
    pub fn resource_name(&self) -> String {
        match self {
            Self::LambdaFunction { arn } | Self::Activity { arn } => arn.clone(),
            Self::LambdaInvoke { pattern } => format!("invoke{}", pattern.suffix()),
            Self::StartExecution {
                pattern,
                json_output,
            } => format!(
                "startExecution{}{}",
                pattern.suffix(),
                if *json_output { ":2" } else { "" }
            ),
            Self::Service {
                action, pattern, ..
            } => format!("{action}{}", pattern.suffix()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resources() {
        assert_eq!(
            TaskResource::parse("arn:aws:states:::lambda:invoke"),
            Ok(TaskResource::LambdaInvoke {
                pattern: IntegrationPattern::RequestResponse
            })
        );
        assert_eq!(
            TaskResource::parse("arn:aws:states:::ecs:runTask.sync"),
            Ok(TaskResource::Service {
                service: "ecs".into(),
                action: "runTask".into(),
                pattern: IntegrationPattern::Sync
            })
        );
        assert_eq!(
            TaskResource::parse("arn:aws:states:::aws-sdk:s3:getObject"),
            Ok(TaskResource::Service {
                service: "aws-sdk:s3".into(),
                action: "getObject".into(),
                pattern: IntegrationPattern::RequestResponse
            })
        );
        assert_eq!(
            TaskResource::parse("arn:aws:states:::states:startExecution.sync:2"),
            Ok(TaskResource::StartExecution {
                pattern: IntegrationPattern::Sync,
                json_output: true
            })
        );
        let f = TaskResource::parse("arn:aws:lambda:us-east-1:123456789012:function:fn");
        assert!(matches!(f, Ok(TaskResource::LambdaFunction { .. })));
        assert!(TaskResource::parse("not-an-arn").is_err());
        assert!(TaskResource::parse("arn:aws:states:::sns").is_err());
    }
}
