//! `sluice cancel --aws` and `sluice redrive --aws`: the same verbs against a deployed stack,
//! through the job table (DynamoDB) and the Workflows port (Step Functions StopExecution /
//! RedriveExecution). Built with the `aws` feature only.
//!
//! Reads `SLUICE_TABLE` and `SLUICE_STATE_MACHINE_ARN` (the stack's outputs) and the standard
//! AWS configuration (credentials, region, `AWS_ENDPOINT_URL`) from the environment.

use anyhow::Context;
use sluice_core::JobId;
use sluice_core::control;

struct Stack {
    jobs: sluice_aws::DynamoJobStore,
    workflows: sluice_aws::SfnWorkflows,
}

async fn stack() -> anyhow::Result<Stack> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .with_context(|| format!("--aws needs {name} (the stack output of that name)"))
    };
    let (table, machine) = (var("SLUICE_TABLE")?, var("SLUICE_STATE_MACHINE_ARN")?);
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(Stack {
        jobs: sluice_aws::DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
        workflows: sluice_aws::SfnWorkflows::new(aws_sdk_sfn::Client::new(&sdk), machine),
    })
}

pub async fn cancel(job: &JobId, reason: &str) -> anyhow::Result<u8> {
    let s = stack().await?;
    let arn = control::cancel(&s.jobs, &s.workflows, job, reason).await?;
    println!("job {job}: stopped execution {arn}");
    println!(
        "the execution-events function now stops its tasks, records it ABORTED and releases its capacity"
    );
    Ok(0)
}

pub async fn redrive(job: &JobId) -> anyhow::Result<u8> {
    let s = stack().await?;
    match control::redrive(&s.jobs, &s.workflows, job).await? {
        control::Continued::Redriven { execution_arn } => {
            println!("job {job}: redriving execution {execution_arn}");
        }
        control::Continued::Rerun { execution_arn } => {
            println!(
                "job {job}: its execution failed (a redrive would only fail again); started a new one with its input: {execution_arn}"
            );
            println!(
                "tasks that already succeeded are reported straight back; the others run again"
            );
        }
    }
    Ok(0)
}
