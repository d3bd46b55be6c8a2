//! Deployment configuration read from the Lambda environment.
//!
//! Every handler binary is deployed with the same set of `SLUICE_*` variables (see
//! `docs/aws.md`); [`AwsConfig::from_env`] reads them once at cold start and fails with the name
//! of the first missing or malformed variable, so a broken deployment says what to fix instead
//! of failing on the first request that happens to need the value.
//!
//! Endpoints are *not* configured here: aws-config already honours `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>`, which is how the tests point every client at moto.

use std::collections::BTreeMap;

/// A configuration variable is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Which AWS service runs task containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeConfig {
    Ecs(EcsConfig),
    Batch(BatchConfig),
}

/// RunTask parameters shared by every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsConfig {
    pub cluster: String,
    pub task_definition: String,
    /// The container whose command and environment are overridden.
    pub container_name: String,
    /// Empty for bridge/host networking; awsvpc task definitions need at least one subnet.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub spot_capacity_provider: String,
    pub on_demand_capacity_provider: String,
}

/// SubmitJob parameters shared by every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    /// Queue for Spot attempts.
    pub job_queue: String,
    /// Queue for attempts escalated to on-demand; the Spot queue when not configured.
    pub on_demand_job_queue: String,
    pub job_definition: String,
}

/// Auto Scaling groups sized from the capacity leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityConfig {
    /// The group sized to the leases' demand. `None` with AWS Batch, which sizes its own
    /// compute environments from its queues: resizing the stack's ECS groups there would only
    /// boot instances no task ever runs on.
    pub spot_asg: Option<String>,
    /// Scaled to zero once no lease is left (see docs/aws.md for why it is not sized upwards).
    pub on_demand_asg: Option<String>,
    pub slots_per_instance: u32,
    pub max_instances: u32,
}

/// Everything a sluice Lambda needs besides credentials and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    pub table: String,
    pub ingest_bucket: String,
    pub data_bucket: String,
    pub state_machine_arn: String,
    pub compute: ComputeConfig,
    pub capacity: CapacityConfig,
}

impl AwsConfig {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Read the configuration from a map of variables (the environment, or a test's map).
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let v = Vars(vars);
        let compute = match v.optional("SLUICE_COMPUTE").unwrap_or("ecs") {
            "ecs" => ComputeConfig::Ecs(EcsConfig {
                cluster: v.required("SLUICE_CLUSTER")?,
                task_definition: v.required("SLUICE_TASK_DEFINITION")?,
                container_name: v.required("SLUICE_CONTAINER_NAME")?,
                subnets: v.list("SLUICE_SUBNETS"),
                security_groups: v.list("SLUICE_SECURITY_GROUPS"),
                spot_capacity_provider: v.required("SLUICE_SPOT_CAPACITY_PROVIDER")?,
                on_demand_capacity_provider: v.required("SLUICE_ON_DEMAND_CAPACITY_PROVIDER")?,
            }),
            "batch" => {
                let job_queue = v.required("SLUICE_BATCH_JOB_QUEUE")?;
                ComputeConfig::Batch(BatchConfig {
                    on_demand_job_queue: v
                        .optional("SLUICE_BATCH_ON_DEMAND_JOB_QUEUE")
                        .map(str::to_owned)
                        .unwrap_or_else(|| job_queue.clone()),
                    job_queue,
                    job_definition: v.required("SLUICE_BATCH_JOB_DEFINITION")?,
                })
            }
            other => {
                return Err(ConfigError::Invalid {
                    name: "SLUICE_COMPUTE",
                    message: format!("'{other}' is neither 'ecs' nor 'batch'"),
                });
            }
        };
        // With Batch the groups are not ours to size (see CapacityConfig::spot_asg): set or
        // not, they are ignored.
        let ecs = matches!(compute, ComputeConfig::Ecs(_));
        let capacity = CapacityConfig {
            spot_asg: if ecs {
                Some(v.required("SLUICE_SPOT_ASG")?)
            } else {
                None
            },
            on_demand_asg: v
                .optional("SLUICE_ON_DEMAND_ASG")
                .filter(|_| ecs)
                .map(str::to_owned),
            slots_per_instance: v.positive("SLUICE_SLOTS_PER_INSTANCE")?,
            max_instances: v.positive("SLUICE_MAX_INSTANCES")?,
        };
        Ok(AwsConfig {
            table: v.required("SLUICE_TABLE")?,
            ingest_bucket: v.required("SLUICE_INGEST_BUCKET")?,
            data_bucket: v.required("SLUICE_DATA_BUCKET")?,
            state_machine_arn: v.required("SLUICE_STATE_MACHINE_ARN")?,
            compute,
            capacity,
        })
    }
}

struct Vars<'a>(&'a BTreeMap<String, String>);

impl Vars<'_> {
    /// Empty counts as unset: a template that renders an empty value is a missing value.
    fn optional(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name)
            .map(str::to_owned)
            .ok_or(ConfigError::Missing(name))
    }

    /// Comma-separated; empty items are dropped.
    fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn positive(&self, name: &'static str) -> Result<u32, ConfigError> {
        let raw = self.required(name)?;
        match raw.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::Invalid {
                name,
                message: format!("'{raw}' is not a positive integer"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        [
            ("SLUICE_TABLE", "sluice"),
            ("SLUICE_INGEST_BUCKET", "in"),
            ("SLUICE_DATA_BUCKET", "data"),
            (
                "SLUICE_STATE_MACHINE_ARN",
                "arn:aws:states:us-east-1:123456789012:stateMachine:sluice",
            ),
            ("SLUICE_CLUSTER", "c"),
            ("SLUICE_TASK_DEFINITION", "td:3"),
            ("SLUICE_CONTAINER_NAME", "worker"),
            ("SLUICE_SUBNETS", "subnet-a, subnet-b,"),
            ("SLUICE_SPOT_CAPACITY_PROVIDER", "spot"),
            ("SLUICE_ON_DEMAND_CAPACITY_PROVIDER", "od"),
            ("SLUICE_SPOT_ASG", "asg-spot"),
            ("SLUICE_SLOTS_PER_INSTANCE", "4"),
            ("SLUICE_MAX_INSTANCES", "10"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn reads_ecs_defaults() {
        let cfg = AwsConfig::from_vars(&base()).unwrap();
        let ComputeConfig::Ecs(ecs) = &cfg.compute else {
            panic!("expected ECS, got {:?}", cfg.compute)
        };
        assert_eq!(ecs.subnets, vec!["subnet-a", "subnet-b"]);
        assert!(ecs.security_groups.is_empty());
        assert_eq!(cfg.capacity.slots_per_instance, 4);
        assert_eq!(cfg.capacity.on_demand_asg, None);
    }

    #[test]
    fn names_the_missing_variable() {
        let mut vars = base();
        vars.remove("SLUICE_TABLE");
        assert_eq!(
            AwsConfig::from_vars(&vars),
            Err(ConfigError::Missing("SLUICE_TABLE"))
        );
        let mut vars = base();
        vars.insert("SLUICE_CLUSTER".into(), "  ".into());
        assert_eq!(
            AwsConfig::from_vars(&vars).unwrap_err().to_string(),
            "environment variable SLUICE_CLUSTER is not set"
        );
    }

    #[test]
    fn batch_needs_its_own_variables() {
        let mut vars = base();
        vars.insert("SLUICE_COMPUTE".into(), "batch".into());
        assert_eq!(
            AwsConfig::from_vars(&vars),
            Err(ConfigError::Missing("SLUICE_BATCH_JOB_QUEUE"))
        );
        vars.insert("SLUICE_BATCH_JOB_QUEUE".into(), "q".into());
        vars.insert("SLUICE_BATCH_JOB_DEFINITION".into(), "jd".into());
        let cfg = AwsConfig::from_vars(&vars).unwrap();
        assert_eq!(
            cfg.compute,
            ComputeConfig::Batch(BatchConfig {
                job_queue: "q".into(),
                on_demand_job_queue: "q".into(),
                job_definition: "jd".into(),
            })
        );
        // Batch sizes its own environments: the ECS groups are never resized, even if named.
        assert_eq!(
            (cfg.capacity.spot_asg, cfg.capacity.on_demand_asg),
            (None, None)
        );
        vars.remove("SLUICE_SPOT_ASG");
        assert!(AwsConfig::from_vars(&vars).is_ok(), "not needed with Batch");
    }

    #[test]
    fn rejects_bad_numbers_and_compute() {
        let mut vars = base();
        vars.insert("SLUICE_SLOTS_PER_INSTANCE".into(), "0".into());
        assert!(matches!(
            AwsConfig::from_vars(&vars),
            Err(ConfigError::Invalid {
                name: "SLUICE_SLOTS_PER_INSTANCE",
                ..
            })
        ));
        let mut vars = base();
        vars.insert("SLUICE_COMPUTE".into(), "lambda".into());
        assert!(matches!(
            AwsConfig::from_vars(&vars),
            Err(ConfigError::Invalid {
                name: "SLUICE_COMPUTE",
                ..
            })
        ));
    }
}
