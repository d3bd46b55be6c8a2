//! The console's errors and the HTTP status each one is answered with.
//!
//! Every refusal names what was wrong; nothing in a request can make the console panic. The
//! API answers `{"error": "..."}`; pages answer the same message in an HTML page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: a bad id, a bad field, a file that is not a CSV.
    #[error("{0}")]
    BadRequest(String),
    /// No token, or a wrong one, on a console that requires one.
    #[error("{0}")]
    Unauthorized(String),
    /// A cross-site request, a missing CSRF header, or a file outside the work directory.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The job is not in a state that allows the action (cancel a finished job, ...).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The Host header names another site (DNS rebinding on a loopback console).
    #[error("{0}")]
    MisdirectedRequest(String),
    /// An action that needs what this console was not started with (triggering without a
    /// pipeline).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sluice_core::StoreError> for ApiError {
    fn from(e: sluice_core::StoreError) -> Self {
        ApiError::Internal(format!("job table: {e}"))
    }
}

impl From<sluice_core::ids::IdError> for ApiError {
    fn from(e: sluice_core::ids::IdError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, ApiError::Internal(_)) {
            tracing::error!(error = %self, "console request failed");
        }
        let mut response = (
            self.status(),
            axum::Json(serde_json::json!({"error": self.to_string()})),
        )
            .into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"sluice console\""),
            );
        }
        response
    }
}
