//! The IAM permission contract: the actions each port call needs with these adapters.
//!
//! Each adapter module declares the actions of the calls it makes, next to the code that makes
//! them (`s3::GET_ACTIONS`, `ecs::LAUNCH_ACTIONS`, ...); each Lambda crate declares the port
//! calls its code makes (`PORT_CALLS`, checked by its decision tests, whose in-memory ports
//! refuse any other). [`required`] joins the two, and `tests/permissions.rs` checks that every
//! function's role in `infra/template.yaml` grants exactly that set, for both compute backends:
//! nothing missing (an AccessDenied at run time), nothing unused.

use crate::{batch, capacity, dynamo, ecs, s3, sfn};
use sluice_core::ports::PortCall;
use std::collections::BTreeSet;

/// Which compute backend a deployment uses (`SLUICE_COMPUTE`, the template's ComputeBackend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Ecs,
    Batch,
}

/// The IAM actions one port call needs on `backend`.
pub fn actions(call: PortCall, backend: Backend) -> Vec<&'static str> {
    let parts: &[&[&'static str]] = match (call, backend) {
        (PortCall::ObjectGet | PortCall::PipelineGet, _) => &[s3::GET_ACTIONS],
        (PortCall::ObjectPut, _) => &[s3::PUT_ACTIONS],
        (PortCall::ObjectExists, _) => &[s3::EXISTS_ACTIONS],
        (PortCall::JobRead, _) => &[dynamo::READ_ACTIONS],
        (PortCall::JobCreate, _) => &[dynamo::CREATE_ACTIONS],
        (PortCall::JobUpdate, _) => &[dynamo::UPDATE_ACTIONS],
        (PortCall::ComputeLaunch, Backend::Ecs) => &[ecs::LAUNCH_ACTIONS],
        (PortCall::ComputeLaunch, Backend::Batch) => &[batch::SUBMIT_ACTIONS],
        (PortCall::ComputeStop, Backend::Ecs) => &[ecs::STOP_ACTIONS],
        (PortCall::ComputeStop, Backend::Batch) => &[batch::TERMINATE_ACTIONS],
        (PortCall::ComputeTasksOnInstance, Backend::Ecs) => &[ecs::TASKS_ON_INSTANCE_ACTIONS],
        (PortCall::ComputeTasksOnInstance, Backend::Batch) => &[],
        (PortCall::CapacityLease, Backend::Ecs) => {
            &[capacity::LEASE_ACTIONS, capacity::RESIZE_ACTIONS]
        }
        (PortCall::CapacityLease, Backend::Batch) => &[capacity::LEASE_ACTIONS],
        (PortCall::WorkflowStart, _) => &[sfn::START_ACTIONS],
        (PortCall::WorkflowAnswer, _) => &[sfn::ANSWER_ACTIONS],
        (PortCall::WorkflowStop, _) => &[sfn::STOP_ACTIONS],
        (PortCall::WorkflowRedrive, _) => &[sfn::REDRIVE_ACTIONS],
    };
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// Every IAM action a handler that makes `calls` needs on `backend`.
pub fn required(calls: &[PortCall], backend: Backend) -> BTreeSet<&'static str> {
    calls.iter().flat_map(|c| actions(*c, backend)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_needs_an_action_somewhere() {
        for call in PortCall::ALL {
            assert!(
                !actions(call, Backend::Ecs).is_empty(),
                "{call:?} has no IAM action on ECS"
            );
        }
        // Batch cannot tell which jobs run on an instance, so it asks nothing.
        assert!(actions(PortCall::ComputeTasksOnInstance, Backend::Batch).is_empty());
        assert!(
            !required(&[PortCall::CapacityLease], Backend::Batch)
                .contains("autoscaling:SetDesiredCapacity")
        );
    }
}
