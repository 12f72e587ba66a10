//! Every error the HTTP API answers, in one table (meilisearch's shape): a stable `code`
//! string clients may branch on, its HTTP status, and what it means. Handlers return
//! [`ApiError`]; domain errors become one through `From`.

use crate::alerts::store::StoreError;
use crate::engine::history::HistoryError;
use crate::engine::scheduler::TriggerError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The error codes of the API. Their strings are part of the API: never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidConfig,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    UnknownJob,
    AlreadyRunning,
    ModelUnavailable,
    DataUnavailable,
    Starting,
    Stopping,
    UnsupportedMediaType,
    PayloadTooLarge,
    Overloaded,
    History,
    Store,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidConfig,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UnknownJob,
        ErrorCode::AlreadyRunning,
        ErrorCode::ModelUnavailable,
        ErrorCode::DataUnavailable,
        ErrorCode::Starting,
        ErrorCode::Stopping,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Overloaded,
        ErrorCode::History,
        ErrorCode::Store,
        ErrorCode::Internal,
    ];

    /// (code, status, meaning) — the table itself.
    pub const fn describe(self) -> (&'static str, StatusCode, &'static str) {
        match self {
            ErrorCode::InvalidRequest => (
                "invalid_request",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The body, a query parameter or a path segment is wrong; `field` names it.",
            ),
            ErrorCode::InvalidConfig => (
                "invalid_config",
                StatusCode::UNPROCESSABLE_ENTITY,
                "A reload found invalid job or rule files; `problems` lists each with file:line:column, and the running configuration stays.",
            ),
            ErrorCode::Unauthorized => (
                "unauthorized",
                StatusCode::UNAUTHORIZED,
                "The endpoint needs `Authorization: Bearer <token>` with the daemon's API token.",
            ),
            ErrorCode::NotFound => (
                "not_found",
                StatusCode::NOT_FOUND,
                "No such endpoint, client, manager, agency or report.",
            ),
            ErrorCode::MethodNotAllowed => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "The endpoint exists, not for this method; the `Allow` header lists the methods it takes.",
            ),
            ErrorCode::UnknownJob => (
                "unknown_job",
                StatusCode::NOT_FOUND,
                "No job of that name is configured.",
            ),
            ErrorCode::AlreadyRunning => ("already_running", StatusCode::CONFLICT, "The job is running now."),
            ErrorCode::ModelUnavailable => (
                "model_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The model has no champion yet: train one or wait for the retraining.",
            ),
            ErrorCode::DataUnavailable => (
                "data_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The champions or the latest snapshot cannot be loaded.",
            ),
            ErrorCode::Starting => (
                "starting",
                StatusCode::SERVICE_UNAVAILABLE,
                "The daemon is still preparing its first data and models.",
            ),
            ErrorCode::Stopping => (
                "stopping",
                StatusCode::SERVICE_UNAVAILABLE,
                "The scheduler is not running.",
            ),
            ErrorCode::UnsupportedMediaType => (
                "unsupported_media_type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "A request body must be JSON, sent with Content-Type: application/json.",
            ),
            ErrorCode::PayloadTooLarge => (
                "payload_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than daemon.http.max_body_bytes.",
            ),
            ErrorCode::Overloaded => (
                "overloaded",
                StatusCode::SERVICE_UNAVAILABLE,
                "More requests are in flight than daemon.http.max_concurrent_requests: retry after the Retry-After seconds.",
            ),
            ErrorCode::History => (
                "history",
                StatusCode::INTERNAL_SERVER_ERROR,
                "The run history could not be read.",
            ),
            ErrorCode::Store => (
                "store",
                StatusCode::INTERNAL_SERVER_ERROR,
                "The alert store could not be read or written.",
            ),
            ErrorCode::Internal => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "A bug or an unexpected failure.",
            ),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.describe().0
    }

    pub const fn status(self) -> StatusCode {
        self.describe().1
    }
}

/// An API error: `{"error": {"code", "message", "field"?, "problems"?}}` with the code's status.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub problems: Vec<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code from the error table (`invalid_request`, `not_found`, …).
    pub code: &'static str,
    pub message: String,
    /// The request field at fault (`client_id`, `features.age`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem, each with file:line:column (`invalid_config`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
        }
    }

    /// 422 naming the request field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(ErrorCode::InvalidRequest, message)
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(ErrorCode::Internal, message.to_string())
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str(),
                message: self.message.clone(),
                field: self.field.clone(),
                problems: self.problems.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code.status(), axum::Json(self.body())).into_response()
    }
}

impl From<super::serving::Refusal> for ApiError {
    fn from(refusal: super::serving::Refusal) -> ApiError {
        use super::serving::Refusal;
        match refusal {
            Refusal::NoModel(model) => ApiError::new(
                ErrorCode::ModelUnavailable,
                format!("no {model} champion yet: train one (bankml train) or wait for the retraining"),
            ),
            Refusal::NotFound(message) => ApiError::new(ErrorCode::NotFound, message),
            Refusal::Invalid { field, message } => ApiError::invalid(field, message),
            Refusal::Internal(message) => ApiError::new(ErrorCode::Internal, message),
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> ApiError {
        ApiError::new(ErrorCode::History, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(ErrorCode::Store, e.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(e)
    }
}

impl ApiError {
    /// A trigger the scheduler refused, for the job `name`.
    pub fn trigger(error: TriggerError, name: &str) -> ApiError {
        match error {
            TriggerError::UnknownJob => ApiError::new(
                ErrorCode::UnknownJob,
                format!("no job named {name} (GET /api/v1/jobs lists them)"),
            ),
            TriggerError::AlreadyRunning => ApiError::new(ErrorCode::AlreadyRunning, format!("{name} is running now")),
            TriggerError::NotRecorded => ApiError::internal(format!(
                "{name} did not start: its run could not be recorded (see the daemon log)"
            )),
        }
    }

    pub fn stopping() -> ApiError {
        ApiError::new(ErrorCode::Stopping, "the scheduler is not running")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_table_maps_each_code_to_its_status_once() {
        let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len(), "codes are unique");
        let expected = [
            ("invalid_request", 422),
            ("invalid_config", 422),
            ("unauthorized", 401),
            ("not_found", 404),
            ("method_not_allowed", 405),
            ("unknown_job", 404),
            ("already_running", 409),
            ("model_unavailable", 503),
            ("data_unavailable", 503),
            ("starting", 503),
            ("stopping", 503),
            ("unsupported_media_type", 415),
            ("payload_too_large", 413),
            ("overloaded", 503),
            ("history", 500),
            ("store", 500),
            ("internal", 500),
        ];
        assert_eq!(expected.len(), ErrorCode::ALL.len(), "every code is in the table");
        for (code, (name, status)) in ErrorCode::ALL.iter().zip(expected) {
            assert_eq!((code.as_str(), code.status().as_u16()), (name, status));
            assert!(!code.describe().2.is_empty());
        }
        let refusal = super::super::serving::Refusal::NoModel(crate::vocab::ModelKind::Agency);
        let error = ApiError::from(refusal);
        assert_eq!(
            (error.code, error.code.status().as_u16()),
            (ErrorCode::ModelUnavailable, 503)
        );
        assert!(error.message.contains("no agency champion"), "{}", error.message);
        let body = serde_json::to_value(ApiError::invalid("client_id", "bad").body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "invalid_request", "message": "bad", "field": "client_id"}})
        );
    }
}
