//! Scale: a job's claim on compute capacity.
//!
//! Before fan-out the job acquires a lease of `slots` task slots; after it, on every path,
//! failures included, it releases it. The capacity adapter sizes the cluster from the sum of
//! all active leases, so overlapping jobs never scale each other down.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sluice_core::error::StepError;
use sluice_core::model::Lease;
use sluice_core::ports::PortCall;
use sluice_core::{JobId, Services};

/// Every port call this handler's code can make (see [`PortCall`]): the IAM permission
/// contract test derives the function's role from this list, and the decision tests refuse
/// any other call.
pub const PORT_CALLS: &[PortCall] = &[PortCall::CapacityLease];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Acquire,
    Release,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleInput {
    pub action: Action,
    pub job_id: JobId,
    #[serde(default)]
    pub slots: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleOutput {
    pub desired_slots: u32,
    pub active_leases: u32,
}

pub async fn handle(services: &Services, input: ScaleInput) -> Result<ScaleOutput, StepError> {
    let status = match input.action {
        Action::Acquire => {
            let slots = input
                .slots
                .filter(|s| *s > 0)
                .ok_or_else(|| StepError::invalid_input("scale: acquire needs slots > 0"))?;
            let lease = Lease {
                job_id: input.job_id.clone(),
                slots,
                acquired_at: Utc::now(),
            };
            services.capacity.acquire(&lease).await?
        }
        // The execution's own scale-down, run by the execution itself: nothing newer of the
        // job can have acquired meanwhile.
        Action::Release => services.capacity.release(&input.job_id, None).await?,
    };
    tracing::info!(job = %input.job_id, action = ?input.action, desired = status.desired_slots, "capacity");
    Ok(ScaleOutput {
        desired_slots: status.desired_slots,
        active_leases: status.active_leases,
    })
}
