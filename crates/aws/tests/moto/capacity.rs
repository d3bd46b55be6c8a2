//! AsgCapacity against moto: leases in DynamoDB, desired capacity on the Auto Scaling groups.

use crate::common::Moto;
use crate::moto_or_skip;
use sluice_aws::AsgCapacity;
use sluice_aws::config::CapacityConfig;
use sluice_core::JobId;
use sluice_core::model::Lease;
use sluice_core::ports::{CapacityPool, CapacityStatus};

pub async fn group(client: &aws_sdk_autoscaling::Client, name: &str, desired: i32) {
    client
        .create_launch_configuration()
        .launch_configuration_name(format!("{name}-lc"))
        .image_id("ami-12c6146b")
        .instance_type("m6g.xlarge")
        .send()
        .await
        .unwrap();
    client
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(format!("{name}-lc"))
        .availability_zones("us-east-1a")
        .min_size(0)
        .max_size(10)
        .desired_capacity(desired)
        .send()
        .await
        .unwrap();
}

/// Create a group of one and return its instance id (an EC2 instance moto knows).
pub async fn instance_of_new_group(client: &aws_sdk_autoscaling::Client, name: &str) -> String {
    group(client, name, 1).await;
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    out.auto_scaling_groups()[0].instances()[0]
        .instance_id()
        .unwrap()
        .to_owned()
}

pub async fn desired(client: &aws_sdk_autoscaling::Client, name: &str) -> i32 {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    out.auto_scaling_groups()[0].desired_capacity().unwrap()
}

/// Leases in a new DynamoDB table on `moto`, sizing the named groups: 4 slots an instance, at
/// most 5 instances.
async fn pool_over(
    moto: &Moto,
    asg: &aws_sdk_autoscaling::Client,
    spot: Option<&str>,
    on_demand: Option<&str>,
) -> AsgCapacity {
    AsgCapacity::new(
        asg.clone(),
        crate::dynamo::store(moto).await,
        CapacityConfig {
            spot_asg: spot.map(str::to_owned),
            on_demand_asg: on_demand.map(str::to_owned),
            slots_per_instance: 4,
            max_instances: 5,
        },
    )
}

fn lease(job: &str, slots: u32) -> Lease {
    Lease {
        job_id: JobId::new(job).unwrap(),
        slots,
        acquired_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn asg_leases_size_the_group_and_release_only_their_share() {
    let moto: Moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    group(&asg, "sluice-spot", 0).await;
    group(&asg, "sluice-on-demand", 1).await;
    let pool = pool_over(&moto, &asg, Some("sluice-spot"), Some("sluice-on-demand")).await;

    // Job A wants 6 slots: 2 instances of 4.
    let s = pool.acquire(&lease("job-a", 6)).await.unwrap();
    assert_eq!(
        s,
        CapacityStatus {
            desired_slots: 6,
            active_leases: 1
        }
    );
    assert_eq!(desired(&asg, "sluice-spot").await, 2);
    // Acquiring again (a retried step) changes nothing.
    assert_eq!(pool.acquire(&lease("job-a", 6)).await.unwrap(), s);

    // Job B adds 5: 11 slots, 3 instances.
    let s = pool.acquire(&lease("job-b", 5)).await.unwrap();
    assert_eq!(
        s,
        CapacityStatus {
            desired_slots: 11,
            active_leases: 2
        }
    );
    assert_eq!(desired(&asg, "sluice-spot").await, 3);

    // A finishes: B still holds its 5 slots, so 2 instances stay.
    let s = pool
        .release(&JobId::new("job-a").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        s,
        CapacityStatus {
            desired_slots: 5,
            active_leases: 1
        }
    );
    assert_eq!(desired(&asg, "sluice-spot").await, 2);
    // Releasing twice is harmless.
    assert_eq!(
        pool.release(&JobId::new("job-a").unwrap(), None)
            .await
            .unwrap(),
        s
    );
    // On-demand is left alone while a lease remains...
    assert_eq!(desired(&asg, "sluice-on-demand").await, 1);

    // A huge job is capped at max_instances.
    let s = pool.acquire(&lease("job-c", 1000)).await.unwrap();
    assert_eq!(
        s,
        CapacityStatus {
            desired_slots: 20,
            active_leases: 2
        }
    );
    assert_eq!(desired(&asg, "sluice-spot").await, 5);

    pool.release(&JobId::new("job-b").unwrap(), None)
        .await
        .unwrap();
    let s = pool
        .release(&JobId::new("job-c").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        s,
        CapacityStatus {
            desired_slots: 0,
            active_leases: 0
        }
    );
    assert_eq!(desired(&asg, "sluice-spot").await, 0);
    // ...and scaled to zero with the last one.
    assert_eq!(desired(&asg, "sluice-on-demand").await, 0);
}

/// With AWS Batch the leases are kept but no group is resized: Batch sizes its own compute
/// environments, and the stack's ECS groups would only boot idle instances.
#[tokio::test]
async fn with_batch_leases_are_kept_and_no_group_is_resized() {
    let moto: Moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    group(&asg, "sluice-spot", 0).await;
    let pool = pool_over(&moto, &asg, None, None).await;
    let s = pool.acquire(&lease("job-a", 6)).await.unwrap();
    assert_eq!(
        s,
        CapacityStatus {
            desired_slots: 6,
            active_leases: 1
        }
    );
    assert_eq!(
        desired(&asg, "sluice-spot").await,
        0,
        "not booted for Batch"
    );
    let s = pool
        .release(&JobId::new("job-a").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(s.active_leases, 0);
    assert_eq!(desired(&asg, "sluice-spot").await, 0);
}

#[tokio::test]
async fn asg_leases_keep_the_capacity_contract() {
    let moto: Moto = moto_or_skip!();
    let sdk = moto.sdk().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    group(&asg, "sluice-spot", 0).await;
    let pool = pool_over(&moto, &asg, Some("sluice-spot"), None).await;
    sluice_core::testing::contract::capacity(&pool, "dynamo").await;
    assert_eq!(desired(&asg, "sluice-spot").await, 0, "scaled in again");
}
