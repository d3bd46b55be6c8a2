//! The common `main` of the sluice Lambda functions (feature `lambda`).
//!
//! Every `functions/<name>/src/main.rs` is one call to [`run`] with its handler: JSON logs for
//! CloudWatch, the ports built once at cold start, and a handler's [`StepError`] reported as a
//! Lambda error whose `errorType` is the `Sluice.*` name the state machine's Retry/Catch match
//! on, and whose `errorMessage` is the cause.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_core::Services;
use sluice_core::error::StepError;
use std::future::Future;

/// A handler's failure as the Lambda runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure(pub StepError);

impl From<StepFailure> for Diagnostic {
    fn from(failure: StepFailure) -> Self {
        Diagnostic {
            error_type: failure.0.name.as_str().to_owned(),
            error_message: failure.0.cause,
        }
    }
}

/// JSON logs, one object per line, level from `RUST_LOG` (default `info`). CloudWatch stamps
/// lines itself, so no timestamp is added.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // `try_init` so a second call (tests) is harmless.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .try_init();
}

/// Run a handler as a Lambda function until the runtime shuts the process down.
///
/// `handler` gets a clone of the cold-start [`Services`] (a bundle of `Arc`s) and the decoded
/// payload.
pub async fn run<I, O, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(Services, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, StepError>> + Send + 'static,
{
    init_tracing();
    let services = match crate::services_from_env().await {
        Ok(s) => s,
        Err(e) => {
            // Fails the init phase: Lambda reports it and retries the cold start.
            tracing::error!(error = %e, "configuration error");
            return Err(e.into());
        }
    };
    let handler = &handler;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<I>| async move {
        handler(services.clone(), event.payload).await.map_err(|e| {
            tracing::warn!(error = e.name.as_str(), cause = %e.cause, "step failed");
            StepFailure(e)
        })
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::ErrorName;

    #[test]
    fn step_error_becomes_typed_lambda_error() {
        let d: Diagnostic =
            StepFailure(StepError::new(ErrorName::SpotInterrupted, "host reclaimed")).into();
        assert_eq!(d.error_type, "Sluice.SpotInterrupted");
        assert_eq!(d.error_message, "host reclaimed");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["errorType"], "Sluice.SpotInterrupted");
        assert_eq!(json["errorMessage"], "host reclaimed");
    }
}
