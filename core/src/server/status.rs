//! API errors as Kubernetes `Status` objects: the HTTP code, `reason`, message and details kubectl
//! prints (`Error from server (NotFound): pods "x" not found`).

use crate::resources::Resource;
use crate::validation::Cause;
use serde_json::{json, Value};

/// An error answered to a client as a `metav1.Status`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// `pods` or `deployments.apps`: how Kubernetes names a resource in messages.
pub fn qualified(r: &Resource) -> String {
    if r.group.is_empty() {
        r.plural.to_string()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

fn details(r: &Resource, name: &str) -> Value {
    let mut d = json!({"name": name});
    if !r.group.is_empty() {
        d["group"] = json!(r.group);
    }
    d["kind"] = json!(r.plural);
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    pub fn not_found(r: &Resource, name: &str) -> Self {
        ApiError {
            details: Some(details(r, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{}\" not found", qualified(r), name),
            )
        }
    }
    pub fn namespace_not_found(ns: &str) -> Self {
        ApiError {
            details: Some(json!({"name": ns, "kind": "namespaces"})),
            ..Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
        }
    }
    pub fn already_exists(r: &Resource, name: &str) -> Self {
        ApiError {
            details: Some(details(r, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", qualified(r), name),
            )
        }
    }
    pub fn conflict(r: &Resource, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(details(r, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {}",
                    qualified(r),
                    name,
                    why
                ),
            )
        }
    }
    pub fn stale(r: &Resource, name: &str) -> Self {
        Self::conflict(r, name, "the object has been modified; please apply your changes to the latest version and try again")
    }
    pub fn invalid(r: &Resource, name: &str, causes: &[Cause]) -> Self {
        let mut d = json!({"name": name});
        if !r.group.is_empty() {
            d["group"] = json!(r.group);
        }
        d["kind"] = json!(r.kind);
        d["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        ApiError {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                crate::validation::invalid_message(
                    &crate::validation::qualified_kind(r),
                    name,
                    causes,
                ),
            )
        }
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }
    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct})"))
    }
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(501, "NotImplemented", message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s["code"] = json!(self.code);
        s
    }
}

impl From<kubelite_storage::Error> for ApiError {
    fn from(e: kubelite_storage::Error) -> Self {
        match e {
            kubelite_storage::Error::Compacted { .. } => {
                Self::expired(format!("too old resource version: {e}"))
            }
            other => Self::internal(other.to_string()),
        }
    }
}

/// A `Status` of success (deletecollection, delete of a reviewed object).
pub fn success(details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}
