//! Cancel and redrive a job through the ports: what `sluice cancel --aws` and
//! `sluice redrive --aws` do against a deployed stack (StopExecution / RedriveExecution).
//!
//! Only the orchestrator is asked; the rest follows from its "Execution Status Change" events
//! (the execution-events handler stops the tasks, records the job and moves its capacity). The
//! local runtime has its own path (`sluice-local::driver`), since there the process that runs
//! an execution must be found first.

use crate::ids::JobId;
use crate::model::JobState;
use crate::ports::{JobStore, WorkflowError, Workflows};

/// The error a cancelled execution stops with.
pub const CANCELLED_ERROR: &str = "Sluice.Cancelled";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no job '{0}'")]
    UnknownJob(String),
    #[error("job {0} has no execution (it was rejected before one started)")]
    NoExecution(String),
    #[error("job {0} is already {1}: there is nothing to cancel")]
    AlreadyFinal(String, &'static str),
    #[error("job {0} already SUCCEEDED: there is nothing to redrive")]
    Succeeded(String),
    #[error("job {0} is {1}: its execution is still running; cancel it first")]
    Running(String, &'static str),
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
    #[error("job {job}: {source}")]
    Workflow {
        job: String,
        #[source]
        source: WorkflowError,
    },
}

async fn execution_of(
    jobs: &dyn JobStore,
    id: &JobId,
) -> Result<(crate::model::Job, String), ControlError> {
    let job = jobs
        .get_job(id)
        .await?
        .ok_or_else(|| ControlError::UnknownJob(id.to_string()))?;
    let arn = job
        .execution_arn
        .clone()
        .ok_or_else(|| ControlError::NoExecution(id.to_string()))?;
    Ok((job, arn))
}

/// StopExecution of the job's execution; returns its ARN.
pub async fn cancel(
    jobs: &dyn JobStore,
    workflows: &dyn Workflows,
    id: &JobId,
    reason: &str,
) -> Result<String, ControlError> {
    let (job, arn) = execution_of(jobs, id).await?;
    if job.state.is_final() {
        return Err(ControlError::AlreadyFinal(
            id.to_string(),
            job.state.as_str(),
        ));
    }
    workflows
        .stop_execution(&arn, CANCELLED_ERROR, reason)
        .await
        .map_err(|source| ControlError::Workflow {
            job: id.to_string(),
            source,
        })?;
    Ok(arn)
}

/// RedriveExecution of the job's execution (FAILED or ABORTED jobs); returns its ARN.
pub async fn redrive(
    jobs: &dyn JobStore,
    workflows: &dyn Workflows,
    id: &JobId,
) -> Result<String, ControlError> {
    let (job, arn) = execution_of(jobs, id).await?;
    match job.state {
        JobState::Succeeded => return Err(ControlError::Succeeded(id.to_string())),
        JobState::Submitted | JobState::Running => {
            return Err(ControlError::Running(id.to_string(), job.state.as_str()));
        }
        JobState::Failed | JobState::Aborted => {}
    }
    workflows
        .redrive_execution(&arn)
        .await
        .map_err(|source| ControlError::Workflow {
            job: id.to_string(),
            source,
        })?;
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{WorkflowCall, World};

    #[tokio::test]
    async fn cancel_and_redrive_ask_the_orchestrator_only_when_they_make_sense() {
        let w = World::new();
        let job = w.running_job("p-1", "p", 1).await;
        let arn = job.execution_arn.clone().unwrap();
        assert!(matches!(
            redrive(&*w.jobs, &*w.workflows, &job.id).await,
            Err(ControlError::Running(..))
        ));
        assert_eq!(
            cancel(&*w.jobs, &*w.workflows, &job.id, "why")
                .await
                .unwrap(),
            arn
        );
        w.jobs
            .transition_job(&job.id, JobState::Aborted, Default::default())
            .await
            .unwrap();
        assert!(matches!(
            cancel(&*w.jobs, &*w.workflows, &job.id, "again").await,
            Err(ControlError::AlreadyFinal(_, "ABORTED"))
        ));
        assert_eq!(
            redrive(&*w.jobs, &*w.workflows, &job.id).await.unwrap(),
            arn
        );
        assert_eq!(
            w.workflows.calls(),
            [
                WorkflowCall::Stop {
                    execution_arn: arn.clone(),
                    error: CANCELLED_ERROR.into(),
                    cause: "why".into()
                },
                WorkflowCall::Redrive { execution_arn: arn }
            ]
        );
        assert!(matches!(
            cancel(&*w.jobs, &*w.workflows, &JobId::new("nope").unwrap(), "x").await,
            Err(ControlError::UnknownJob(_))
        ));
    }
}
