//! axum's path and query extractors with the API's own refusal: a segment or query string that
//! does not decode (not UTF-8, not the expected shape) is a 422 `invalid_request` naming the
//! path or query, in the error table's JSON, not axum's plain-text 400.

use super::{ApiError, ErrorCode};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// [`Path`], refused as an [`ApiError`].
pub struct ApiPath<T>(pub T);

/// [`Query`], refused as an [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError {
                field: Some("path".into()),
                ..ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
            }),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError {
                field: Some("query".into()),
                ..ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
            }),
        }
    }
}
