//! EcsCompute against moto: RunTask carries the overrides, tags, startedBy and group that the
//! task-events handler relies on; placement failure is a LaunchFailed.

use crate::common::Moto;
use crate::moto_or_skip;
use aws_sdk_ecs::config::RuntimeComponents;
use aws_sdk_ecs::types::{ContainerDefinition, TaskField};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use sluice_aws::EcsCompute;
use sluice_aws::config::EcsConfig;
use sluice_core::model::{AttemptKey, Capacity, ObjectRef};
use sluice_core::ports::{Compute, ComputeError, LaunchRequest, Location, Staged};
use sluice_core::{JobId, TaskId};
use std::collections::BTreeMap;

pub const CLUSTER: &str = "sluice";

/// moto echoes a container's `cpu` (and `memory`) as JSON numbers where the ECS API has
/// strings, which the SDK rightly refuses to parse. This HTTP client sits under the SDK and
/// turns them into strings, so the real `EcsCompute` code path runs against moto unchanged.
#[derive(Debug)]
struct MotoNumbersClient(SharedHttpClient);

#[derive(Debug)]
struct MotoNumbersConnector(SharedHttpConnector);

impl HttpClient for MotoNumbersClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(MotoNumbersConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

impl HttpConnector for MotoNumbersConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let response = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let mut response = response.await?;
            let body = std::mem::replace(response.body_mut(), SdkBody::taken());
            let bytes = ByteStream::new(body)
                .collect()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?
                .into_bytes();
            let patched = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(mut json) => {
                    stringify_container_numbers(&mut json);
                    serde_json::to_vec(&json).map_err(|e| ConnectorError::other(e.into(), None))?
                }
                Err(_) => bytes.to_vec(),
            };
            *response.body_mut() = SdkBody::from(patched);
            Ok(response)
        })
    }
}

fn stringify_container_numbers(json: &mut serde_json::Value) {
    let tasks = json.get_mut("tasks").and_then(|t| t.as_array_mut());
    for task in tasks.into_iter().flatten() {
        let containers = task.get_mut("containers").and_then(|c| c.as_array_mut());
        for container in containers.into_iter().flatten() {
            for field in ["cpu", "memory", "memoryReservation"] {
                if let Some(n) = container.get(field).and_then(|v| v.as_i64()) {
                    container[field] = serde_json::Value::String(n.to_string());
                }
            }
        }
    }
}

/// An ECS client for moto with the [`MotoNumbersClient`] workaround.
pub fn ecs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_ecs::Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(sdk)
            .http_client(MotoNumbersClient(http))
            .build(),
    )
}

/// A cluster with one registered container instance, and a task definition whose memory fits
/// it (`memory`) or not.
/// Creates the cluster, the task definition and one container instance; returns the EC2
/// instance id behind the container instance.
pub async fn cluster(
    client: &aws_sdk_ecs::Client,
    asg: &aws_sdk_autoscaling::Client,
    family: &str,
    memory: i32,
) -> String {
    client
        .create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    client
        .register_task_definition()
        .family(family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("worker")
                .image("sluice/ber-sim:latest")
                // Not `memory`/`cpu`: moto echoes those as numbers where the ECS API (and
                // so the SDK) has strings. The reservation still drives moto's placement.
                .memory_reservation(memory)
                .essential(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // moto places RunTask only on registered container instances, backed by an EC2 instance
    // it knows: an Auto Scaling group of one makes one.
    let instance = crate::capacity::instance_of_new_group(asg, "ecs-hosts").await;
    client
        .register_container_instance()
        .cluster(CLUSTER)
        .instance_identity_document(format!(r#"{{"instanceId": "{instance}"}}"#))
        .send()
        .await
        .unwrap();
    instance
}

pub fn ecs_config(task_definition: &str) -> EcsConfig {
    EcsConfig {
        cluster: CLUSTER.into(),
        task_definition: task_definition.into(),
        container_name: "worker".into(),
        subnets: vec![],
        security_groups: vec![],
        spot_capacity_provider: "sluice-spot".into(),
        on_demand_capacity_provider: "sluice-on-demand".into(),
    }
}

pub fn launch_request(job: &str, task: &str, number: u32) -> LaunchRequest {
    LaunchRequest {
        attempt: AttemptKey {
            job_id: JobId::new(job).unwrap(),
            task_id: TaskId::new(task).unwrap(),
            number,
        },
        capacity: Capacity::Spot,
        command: vec![
            "ber-sim".into(),
            "--snr-db".into(),
            "3".into(),
            "--out".into(),
            format!("/tmp/sluice/data/data/jobs/{job}/stages/tasks/output/{task}.json"),
        ],
        env: BTreeMap::from([("RUST_LOG".into(), "debug".into())]),
        inputs: vec![],
        output: Some(Staged {
            location: Location::File {
                object: ObjectRef::new(
                    "data",
                    format!("jobs/{job}/stages/tasks/output/{task}.json"),
                ),
            },
            path: format!("/tmp/sluice/data/data/jobs/{job}/stages/tasks/output/{task}.json"),
        }),
        working_dir: None,
        image: None,
        cpu: 512,
        memory_mib: 1024,
        timeout_seconds: None,
        compute_id: None,
    }
}

#[tokio::test]
async fn ecs_run_task_carries_overrides_and_tags() {
    let moto: Moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let client = ecs_client(&sdk);
    cluster(
        &client,
        &aws_sdk_autoscaling::Client::new(&sdk),
        "ber-sim",
        2048,
    )
    .await;
    let compute = EcsCompute::new(client.clone(), ecs_config("ber-sim"));

    let launched = compute
        .launch(&launch_request("ber-0001", "t-0007", 2))
        .await
        .unwrap();
    assert!(
        launched
            .compute_id
            .starts_with("arn:aws:ecs:us-east-1:123456789012:task/"),
        "{}",
        launched.compute_id
    );

    let described = client
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(&launched.compute_id)
        .include(TaskField::Tags)
        .send()
        .await
        .unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.started_by(), Some("sluice/ber-0001"));
    assert_eq!(task.group(), Some("sluice:ber-0001:t-0007"));
    let tags: BTreeMap<&str, &str> = task
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert_eq!(tags["sluice:job"], "ber-0001");
    assert_eq!(tags["sluice:task"], "t-0007");
    assert_eq!(tags["sluice:attempt"], "2");

    let overrides = task.overrides().expect("overrides echoed");
    let container = &overrides.container_overrides()[0];
    assert_eq!(container.name(), Some("worker"));
    assert_eq!(
        container.command(),
        [
            "ber-sim",
            "--snr-db",
            "3",
            "--out",
            "/tmp/sluice/data/data/jobs/ber-0001/stages/tasks/output/t-0007.json"
        ]
    );
    let env: BTreeMap<&str, &str> = container
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap_or(""), kv.value().unwrap_or("")))
        .collect();
    assert_eq!(
        env,
        BTreeMap::from([
            ("RUST_LOG", "debug"),
            ("SLUICE_ATTEMPT", "2"),
            ("SLUICE_JOB_ID", "ber-0001"),
            (
                "SLUICE_OUTPUT",
                "/tmp/sluice/data/data/jobs/ber-0001/stages/tasks/output/t-0007.json"
            ),
            ("SLUICE_OUTPUT_KIND", "file"),
            (
                "SLUICE_RESULT_URI",
                "s3://data/jobs/ber-0001/stages/tasks/output/t-0007.json"
            ),
            ("SLUICE_TASK_ID", "t-0007"),
        ])
    );
    assert_eq!(container.cpu(), Some(512));
    assert_eq!(container.memory(), Some(1024));

    // startedBy finds every container of the job.
    let listed = client
        .list_tasks()
        .cluster(CLUSTER)
        .started_by("sluice/ber-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.task_arns(),
        std::slice::from_ref(&launched.compute_id)
    );
}

#[tokio::test]
async fn ecs_unplaceable_task_is_launch_failed() {
    let moto: Moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let client = ecs_client(&sdk);
    // More memory than moto's container instance offers: nothing is placed.
    cluster(
        &client,
        &aws_sdk_autoscaling::Client::new(&sdk),
        "huge",
        10_000_000,
    )
    .await;
    let compute = EcsCompute::new(client, ecs_config("huge"));
    let err = compute
        .launch(&launch_request("ber-0002", "t-1", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ComputeError::LaunchFailed(m) if m.contains("ber-0002/t-1#1")),
        "{err:?}"
    );

    let mut bad = launch_request("ber-0002", "t-1", 1);
    bad.command.clear();
    assert!(matches!(
        compute.launch(&bad).await,
        Err(ComputeError::Invalid(_))
    ));
}

/// A Spot warning names an EC2 instance: the adapter finds our running tasks on it (through
/// ListContainerInstances, DescribeContainerInstances and ListTasks), and none on another.
#[tokio::test]
async fn ecs_finds_the_tasks_on_an_instance() {
    let moto: Moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let client = ecs_client(&sdk);
    let instance = cluster(
        &client,
        &aws_sdk_autoscaling::Client::new(&sdk),
        "ber-sim",
        512,
    )
    .await;
    let compute = EcsCompute::new(client.clone(), ecs_config("ber-sim"));
    assert_eq!(
        compute.tasks_on_instance(&instance).await.unwrap(),
        Some(vec![]),
        "nothing runs yet"
    );
    let a = compute
        .launch(&launch_request("ber-0003", "t-1", 1))
        .await
        .unwrap();
    let b = compute
        .launch(&launch_request("ber-0003", "t-2", 1))
        .await
        .unwrap();
    let mut found = compute.tasks_on_instance(&instance).await.unwrap().unwrap();
    found.sort();
    let mut want = vec![a.compute_id, b.compute_id];
    want.sort();
    assert_eq!(found, want);
    assert_eq!(
        compute
            .tasks_on_instance("i-0123456789abcdef0")
            .await
            .unwrap(),
        Some(vec![]),
        "not an instance of our cluster"
    );
}
