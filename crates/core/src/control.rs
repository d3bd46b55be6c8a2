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

/// How a job was continued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continued {
    /// RedriveExecution of its (stopped) execution, which goes on where it stopped.
    Redriven { execution_arn: String },
    /// A new execution with the job's input (its previous one failed, which a redrive would
    /// only fail again); finished tasks are reported straight back, failed ones run again.
    Rerun { execution_arn: String },
}

/// Continues a job that did not succeed. An ABORTED job's execution was stopped and is
/// redriven (RedriveExecution). A FAILED job's execution ended in the pipeline's Fail state
/// (or timed out): RedriveExecution would restart that Fail state and fail again, so a new
/// execution (`<job>-rerun-<n>`) starts from the beginning with the same input, which the
/// pipeline's steps make safe (plan re-plans idempotently, launch reports tasks that already
/// SUCCEEDED straight back, only the failed ones run again).
pub async fn redrive(
    jobs: &dyn JobStore,
    workflows: &dyn Workflows,
    id: &JobId,
) -> Result<Continued, ControlError> {
    let (job, arn) = execution_of(jobs, id).await?;
    let failed = match job.state {
        JobState::Succeeded => return Err(ControlError::Succeeded(id.to_string())),
        JobState::Submitted | JobState::Running => {
            return Err(ControlError::Running(id.to_string(), job.state.as_str()));
        }
        JobState::Failed => true,
        JobState::Aborted => false,
    };
    let workflow = |source| ControlError::Workflow {
        job: id.to_string(),
        source,
    };
    if !failed {
        workflows.redrive_execution(&arn).await.map_err(workflow)?;
        return Ok(Continued::Redriven { execution_arn: arn });
    }
    // The re-run after the one the job last recorded (its plan step records each execution on
    // the job). Names must be new: starting a closed execution's name with the same input
    // answers that execution's ARN (start_execution is idempotent), not a new run.
    let n = crate::ingest::rerun_number(id, &arn).map_or(1, |k| k + 1);
    let input = crate::ingest::execution_input(&job);
    let execution_arn = workflows
        .start_execution(&crate::ingest::rerun_name(id, n), &input)
        .await
        .map_err(workflow)?;
    Ok(Continued::Rerun { execution_arn })
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
            Continued::Redriven {
                execution_arn: arn.clone()
            }
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

    /// A FAILED job ended in the pipeline's Fail state: a redrive would fail again, so it is
    /// re-run as a new execution with its input (and a second re-run gets the next name).
    #[tokio::test]
    async fn a_failed_job_is_rerun_not_redriven() {
        let w = World::new();
        let job = w.running_job("p-1", "p", 1).await;
        w.jobs
            .transition_job(&job.id, JobState::Failed, Default::default())
            .await
            .unwrap();
        let first = redrive(&*w.jobs, &*w.workflows, &job.id).await.unwrap();
        assert_eq!(
            first,
            Continued::Rerun {
                execution_arn: "arn:aws:states:local:000000000000:execution:test:p-1-rerun-1"
                    .into()
            }
        );
        let input = crate::ingest::execution_input(&job);
        assert_eq!(input["jobId"], "p-1");
        assert_eq!(input["input"]["key"], "p/in.csv");
        assert_eq!(
            w.workflows.calls(),
            [WorkflowCall::Start {
                name: "p-1-rerun-1".into(),
                input
            }]
        );
        assert!(
            !w.workflows
                .calls()
                .iter()
                .any(|c| matches!(c, WorkflowCall::Redrive { .. })),
            "no RedriveExecution of a Fail state"
        );
        // The re-run failed too (its plan step recorded it on the job): the next is -rerun-2.
        let Continued::Rerun { execution_arn } = first else {
            unreachable!()
        };
        w.jobs
            .transition_job(
                &job.id,
                JobState::Running,
                crate::model::JobUpdate {
                    execution_arn: Some(execution_arn),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        w.jobs
            .transition_job(&job.id, JobState::Failed, Default::default())
            .await
            .unwrap();
        let second = redrive(&*w.jobs, &*w.workflows, &job.id).await.unwrap();
        assert!(
            matches!(&second, Continued::Rerun { execution_arn } if execution_arn.ends_with(":p-1-rerun-2")),
            "{second:?}"
        );
    }

    #[test]
    fn rerun_names_fit_step_functions() {
        let long = JobId::new("j".repeat(80)).unwrap();
        let name = crate::ingest::rerun_name(&long, 12);
        assert_eq!(name.len(), 80);
        assert!(name.ends_with("-rerun-12"));
        assert_eq!(
            crate::ingest::rerun_name(&JobId::new("ber-1").unwrap(), 1),
            "ber-1-rerun-1"
        );
    }
}
