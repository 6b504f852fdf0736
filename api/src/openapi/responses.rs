//! The error answers many operations share (401, 400, 403, 404, 413, 429,
//! 503), as named components (`#/components/responses/...`), so each
//! handler's `#[utoipa::path]` lists them by name and every one carries the
//! one [`ErrorBody`] shape of [`crate::ApiError`].

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::ToResponse;

use super::schemas::ErrorBody;

/// An error answer with `description`, its body the shared error shape.
fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(
                <ErrorBody as utoipa::ToSchema>::name(),
            )))
            .build(),
    )
}

/// Declares a shared error response: its component name is the type's.
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident => $description:expr;)+) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response($description).build().into())
                }
            }
        )+
    };
}

error_responses! {
    /// 400 from [`crate::input`] and the store's validation.
    BadRequest => "Invalid input: `error.field` names the offending field";
    /// 401 from the [`crate::auth::Caller`] extractor.
    Unauthorized => "Missing or unknown token";
    /// 403 on monitors and silences ([`crate::scope`]).
    Forbidden => "The token may not do this: another team (or the admin token is needed), a cluster, group or topic the team does not own (`error.field` names it), or a team quota is reached (`error.code` `quota_exceeded`, the message names the quota)";
    /// 403 on the admin-only token endpoints.
    AdminOnly => "The token may not do this (admin-only endpoint, or another team)";
    /// 404, also for another team's objects.
    NotFound => "No such object, or it belongs to another team";
    /// 413 from the body limit ([`crate::input::MAX_BODY_BYTES`]).
    PayloadTooLarge => "Request body larger than 64 KiB";
}

/// 503: history not configured or failing on the reads that need it, or
/// the agent's HTTP guard refusing a request it cannot serve (concurrency
/// limit reached, request timeout); possible on every operation.
pub struct Unavailable;

impl<'r> ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = error_response(
            "Unavailable: history (ClickHouse) not configured or unavailable (`error.code` `history_unavailable`, status and alert reads), the server at its concurrency limit (`overloaded`, retry after `Retry-After` seconds) or a request not answered within the server's request timeout (`request_timeout`)",
        )
        .header("Retry-After", retry_after());
        ("Unavailable", response.build().into())
    }
}

fn retry_after() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before retrying"))
        .build()
}

/// 429 from [`crate::limits`], with `Retry-After`.
pub struct RateLimited;

impl<'r> ToResponse<'r> for RateLimited {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = error_response(
            "Rate limited (`error.code` `rate_limited`): too many requests with this token or from this address, or too many failed authentications from this address; retry after `Retry-After` seconds",
        )
        .header("Retry-After", retry_after());
        ("RateLimited", response.build().into())
    }
}
