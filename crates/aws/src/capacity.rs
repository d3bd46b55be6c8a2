//! [`CapacityPool`] on EC2 Auto Scaling, with leases in the DynamoDB table.
//!
//! Each running job holds a lease (its wanted task slots). After every acquire or release the
//! desired size of the Spot group is recomputed from *all* active leases:
//! `ceil(sum(slots) / slots_per_instance)`, capped at `max_instances`, and applied with
//! SetDesiredCapacity. So one job's scale-down removes only what that job held, never capacity
//! another running job still needs.
//!
//! The on-demand group serves only attempts escalated after repeated Spot reclaims; ECS
//! managed scaling of the on-demand capacity provider grows it for them. This pool only sets it
//! back to zero when the last lease is released, so no paid instance idles between jobs.
//!
//! Two concurrent changes can apply their SetDesiredCapacity calls out of order. After setting
//! the size the sum is read again and re-applied if it moved, which closes the window to the
//! duration of one Query; the next acquire or release corrects any remaining drift.

use crate::config::CapacityConfig;
use crate::dynamo::DynamoJobStore;
use crate::sdk_error;
use async_trait::async_trait;
use aws_sdk_autoscaling::Client;
use chrono::{DateTime, Utc};
use sluice_core::model::Lease;
use sluice_core::ports::{CapacityPool, CapacityStatus};
use sluice_core::{JobId, StoreError};

/// IAM actions of a lease change (the permission contract: see [`crate::permissions`]): the
/// lease item (PutItem, DeleteItem), the sum of the active leases (Query) and, with ECS, the
/// group's size. With AWS Batch no group is resized.
pub const LEASE_ACTIONS: &[&str] = &["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"];
pub const RESIZE_ACTIONS: &[&str] = &["autoscaling:SetDesiredCapacity"];

/// A lease older than this stops counting (its job crashed without releasing it).
pub const LEASE_MAX_AGE_HOURS: i64 = 7 * 24;
/// Re-reads of the lease sum after resizing (see module docs).
const SETTLE_ROUNDS: usize = 3;

/// Auto Scaling capacity pool.
#[derive(Debug, Clone)]
pub struct AsgCapacity {
    autoscaling: Client,
    store: DynamoJobStore,
    config: CapacityConfig,
}

/// Instances needed for `slots`, and the slots those instances actually provide.
pub fn desired_instances(slots: u64, config: &CapacityConfig) -> (u32, u32) {
    let per = u64::from(config.slots_per_instance.max(1));
    let instances = slots.div_ceil(per).min(u64::from(config.max_instances)) as u32;
    let desired_slots = slots.min(u64::from(config.max_instances) * per) as u32;
    (instances, desired_slots)
}

impl AsgCapacity {
    pub fn new(autoscaling: Client, store: DynamoJobStore, config: CapacityConfig) -> Self {
        Self {
            autoscaling,
            store,
            config,
        }
    }

    async fn set_desired(&self, group: &str, instances: u32) -> Result<(), StoreError> {
        self.autoscaling
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(i32::try_from(instances).unwrap_or(i32::MAX))
            // Leases change at job boundaries; a cooldown would drop a needed resize.
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| sdk_error("Auto Scaling SetDesiredCapacity", group, e))?;
        Ok(())
    }

    async fn sum(&self) -> Result<(u64, u32), StoreError> {
        let leases = self.store.active_leases(Utc::now()).await?;
        let slots = leases.iter().map(|l| u64::from(l.slots)).sum();
        Ok((slots, leases.len() as u32))
    }

    /// Size the groups from the current leases.
    pub async fn resize(&self) -> Result<CapacityStatus, StoreError> {
        let (mut slots, mut count) = self.sum().await?;
        for _ in 0..SETTLE_ROUNDS {
            let (instances, _) = desired_instances(slots, &self.config);
            let Some(spot) = &self.config.spot_asg else {
                // AWS Batch: the leases are recorded, Batch sizes its own environments.
                break;
            };
            self.set_desired(spot, instances).await?;
            if let (0, Some(od)) = (count, &self.config.on_demand_asg) {
                self.set_desired(od, 0).await?;
            }
            let (again, again_count) = self.sum().await?;
            if (again, again_count) == (slots, count) {
                break;
            }
            (slots, count) = (again, again_count);
        }
        let (_, desired_slots) = desired_instances(slots, &self.config);
        Ok(CapacityStatus {
            desired_slots,
            active_leases: count,
        })
    }
}

#[async_trait]
impl CapacityPool for AsgCapacity {
    async fn acquire(&self, lease: &Lease) -> Result<CapacityStatus, StoreError> {
        self.store
            .put_lease(lease, chrono::Duration::hours(LEASE_MAX_AGE_HOURS))
            .await?;
        self.resize().await
    }

    async fn release(
        &self,
        job: &JobId,
        acquired_by: Option<DateTime<Utc>>,
    ) -> Result<CapacityStatus, StoreError> {
        self.store.delete_lease(job, acquired_by).await?;
        self.resize().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CapacityConfig {
        CapacityConfig {
            spot_asg: Some("spot".into()),
            on_demand_asg: None,
            slots_per_instance: 4,
            max_instances: 3,
        }
    }

    #[test]
    fn rounds_up_and_caps() {
        assert_eq!(desired_instances(0, &config()), (0, 0));
        assert_eq!(desired_instances(1, &config()), (1, 1));
        assert_eq!(desired_instances(4, &config()), (1, 4));
        assert_eq!(desired_instances(5, &config()), (2, 5));
        assert_eq!(desired_instances(40, &config()), (3, 12));
        assert_eq!(desired_instances(u64::MAX, &config()), (3, 12));
    }
}
