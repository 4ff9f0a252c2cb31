//! `Status` objects, the body of every failed request (and of a watch `ERROR` event), shaped as
//! the apiserver writes them (k8s.io/apimachinery `pkg/api/errors`).

use serde_json::{Value, json};

use crate::kinds::KindInfo;

/// A failed request: the HTTP code and the `Status` body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status code, also the Status's `code`.
    pub code: u16,
    /// The Status object.
    pub body: Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = self.body["reason"].as_str().unwrap_or_default();
        let message = self.body["message"].as_str().unwrap_or_default();
        write!(f, "{} {reason}: {message}", self.code)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// The Status's `reason` (`NotFound`, `Expired`, ...).
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> ApiError {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    ApiError { code, body }
}

fn details(kind: &KindInfo, name: &str) -> Value {
    let mut d = json!({ "kind": kind.plural });
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !kind.group.is_empty() {
        d["group"] = json!(kind.group);
    }
    d
}

/// 404 `NotFound`: `wasmplugins.extensions.istio.io "x" not found`.
pub fn not_found(kind: &KindInfo, name: &str) -> ApiError {
    let msg = format!("{} \"{}\" not found", kind.qualified(), name);
    status(404, "NotFound", &msg, Some(details(kind, name)))
}

/// 404 for a path that names no resource (the apiserver answers `404 page not found` there;
/// a Status with reason NotFound is what its API handlers send).
pub fn no_route(path: &str) -> ApiError {
    status(
        404,
        "NotFound",
        &format!("the server could not find the requested resource ({path})"),
        None,
    )
}

/// 409 `AlreadyExists`.
pub fn already_exists(kind: &KindInfo, name: &str) -> ApiError {
    let msg = format!("{} \"{}\" already exists", kind.qualified(), name);
    status(409, "AlreadyExists", &msg, Some(details(kind, name)))
}

/// 409 `Conflict` for a stale `metadata.resourceVersion` on update.
pub fn conflict(kind: &KindInfo, name: &str) -> ApiError {
    let msg = format!(
        "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply \
         your changes to the latest version and try again",
        kind.qualified(),
        name
    );
    status(409, "Conflict", &msg, Some(details(kind, name)))
}

/// 401 `Unauthorized` (missing or unknown bearer token).
pub fn unauthorized() -> ApiError {
    status(401, "Unauthorized", "Unauthorized", None)
}

/// 403 `Forbidden`, with the RBAC authorizer's reason:
/// `secrets "pull" is forbidden: User "u" cannot get resource "secrets" in API group "" in the
/// namespace "default"`.
pub fn forbidden(
    kind: &KindInfo,
    name: &str,
    user: &str,
    verb: &str,
    subresource: Option<&str>,
    namespace: Option<&str>,
) -> ApiError {
    let resource = match subresource {
        Some(s) => format!("{}/{}", kind.plural, s),
        None => kind.plural.to_string(),
    };
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let reason = format!(
        "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        kind.group
    );
    let msg = if name.is_empty() {
        format!("{} is forbidden: {reason}", kind.qualified())
    } else {
        format!("{} \"{name}\" is forbidden: {reason}", kind.qualified())
    };
    status(403, "Forbidden", &msg, Some(details(kind, name)))
}

/// 410 `Expired`: `too old resource version: X (Y)` for a watch, or the continue-token message.
pub fn expired(message: &str) -> ApiError {
    status(410, "Expired", message, None)
}

/// The message of a watch from a compacted resourceVersion (the watch cache's wording).
pub fn too_old_message(requested: u64, oldest: u64) -> String {
    format!("too old resource version: {requested} ({oldest})")
}

/// The message of a `continue` token whose snapshot was compacted (the etcd3 store's wording).
pub const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a \
    consistent list result. You can start a new list without the continue parameter, or use the \
    continue token in this response to retrieve the remainder of the results. Continuing with the \
    provided token results in an inconsistent list - objects that were created, modified, or \
    deleted between the time the first chunk was returned and now may show up in the list.";

/// 400 `BadRequest`.
pub fn bad_request(message: &str) -> ApiError {
    status(400, "BadRequest", message, None)
}

/// 405 `MethodNotAllowed`.
pub fn method_not_allowed() -> ApiError {
    status(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        None,
    )
}

/// 415 `UnsupportedMediaType`.
pub fn unsupported_media_type(content_type: &str) -> ApiError {
    status(
        415,
        "UnsupportedMediaType",
        &format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"
        ),
        None,
    )
}

/// 422 `Invalid` for an object that lacks what the server requires (a name).
pub fn invalid(kind: &KindInfo, name: &str, message: &str) -> ApiError {
    let msg = format!("{} \"{name}\" is invalid: {message}", kind.kind);
    status(422, "Invalid", &msg, Some(details(kind, name)))
}

/// 504 `Timeout` for a list at a resourceVersion the server has not reached.
pub fn too_large_rv(requested: u64, current: u64) -> ApiError {
    let msg = format!("Too large resource version: {requested}, current: {current}");
    let d = json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1});
    status(504, "Timeout", &msg, Some(d))
}
