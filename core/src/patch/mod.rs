//! PATCH bodies: the four patch content types Kubernetes accepts, and applying JSON patch
//! (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch (`strategic.rs`) to a
//! JSON object. Server-side apply (`application/apply-patch+yaml`) is only recognised here; it
//! is carried out elsewhere.
//!
//! Errors carry the messages the Kubernetes API server gives, plus the HTTP status and reason
//! it answers with (`PatchError::status_code`, `PatchError::reason`, `PatchError::status_message`).

mod strategic;

use serde_json::Value;

/// Upstream's cap on the number of operations in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The kind of a PATCH request, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// All patch types, in the order the API server lists them.
    pub const ALL: [PatchType; 4] = [
        PatchType::Json,
        PatchType::Merge,
        PatchType::Strategic,
        PatchType::Apply,
    ];

    /// The patch type of a `Content-Type` header value; parameters after `;` are ignored and
    /// the media type is compared case-insensitively.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        PatchType::ALL
            .into_iter()
            .find(|t| t.content_type().eq_ignore_ascii_case(media))
    }

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied. Display gives the message as Kubernetes phrases it.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum PatchError {
    /// The body is not a JSON patch (not an array of operations, unknown `op`, ...).
    #[error("{0}")]
    InvalidJsonPatch(String),
    /// More operations than `MAX_JSON_PATCH_OPERATIONS`.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// An operation of a JSON patch failed (missing path, failed `test`, ...).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A merge patch or strategic merge patch body that is not a JSON object.
    #[error("json: cannot unmarshal {found} into Go value of type map[string]interface {{}}")]
    PatchNotAnObject { found: &'static str },
    /// The document being patched is not a JSON object.
    #[error("invalid JSON document")]
    InvalidDocument,
    /// A merge-key list element (in the patch or the object) lacks the merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    /// A `$patch` directive with an unknown value.
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownDirective { directive: String, map: String },
    /// `$patch: merge` on a list element.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeListDirective,
    /// A malformed `$deleteFromPrimitiveList/<field>` directive.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// A malformed `$retainKeys` directive, or a patch key missing from it.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// A malformed `$setElementOrder/<field>` directive.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// The patch list is not in the order its `$setElementOrder` list gives.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch { patch: String, order: String },
    /// A list of lists under a merge strategy.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A merge list mixing maps and scalars.
    #[error("list element types are not identical: {0}")]
    MixedListElements(String),
    /// A merge list of maps whose schema declares no merge key.
    #[error("cannot merge lists without merge key for type map")]
    MissingMergeKeyDeclaration,
    /// A value of the wrong JSON type where a map or list was required.
    #[error("expected a {expected}, but received a {actual}")]
    WrongType {
        expected: &'static str,
        actual: &'static str,
    },
}

impl PatchError {
    /// The HTTP status the API server answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::InvalidJsonPatch(_)
            | PatchError::PatchNotAnObject { .. }
            | PatchError::InvalidDocument
            | PatchError::BadPrimitiveListFormat
            | PatchError::BadRetainKeysFormat
            | PatchError::BadSetElementOrderFormat => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::JsonPatchFailed(_) | PatchError::ListOfLists => 422,
            // Upstream passes these through as plain errors: 500 with an empty reason.
            PatchError::NoMergeKey { .. }
            | PatchError::UnknownDirective { .. }
            | PatchError::MergeListDirective
            | PatchError::SetElementOrderMismatch { .. }
            | PatchError::MixedListElements(_)
            | PatchError::MissingMergeKeyDeclaration
            | PatchError::WrongType { .. } => 500,
        }
    }

    /// The `reason` of the `Status` the API server answers with (`""` is `StatusReasonUnknown`).
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            400 => "BadRequest",
            413 => "RequestEntityTooLarge",
            422 => "Invalid",
            _ => "",
        }
    }

    /// The `message` of the `Status` the API server answers with. For 422 answers upstream
    /// builds a generic server response, whose message is fixed.
    pub fn status_message(&self) -> String {
        match self.status_code() {
            422 => "the server rejected our request due to an error in our request".to_string(),
            _ => self.to_string(),
        }
    }
}

/// Applies an RFC 6902 JSON patch. `patch` must be an array of operations.
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = match patch {
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::InvalidJsonPatch(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_type_name(other)
            )))
        }
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: ops.len(),
        });
    }
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::InvalidJsonPatch(e.to_string()))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &parsed.0)
        .map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(out)
}

/// Applies an RFC 7386 JSON merge patch. `patch` must be a JSON object (as Kubernetes requires).
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::PatchNotAnObject {
            found: json_type_name(patch),
        });
    }
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

/// Applies a strategic merge patch to `doc`, whose type is the schema definition `definition`
/// (e.g. `io.k8s.api.core.v1.Pod`). Fields the schema doesn't know (or an unknown definition)
/// merge like a JSON merge patch: maps merge recursively, lists are replaced. Directives
/// (`$patch`, `$retainKeys`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…`) never remain
/// in the result.
pub fn apply_strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    definition: &str,
) -> Result<Value, PatchError> {
    strategic::apply(doc, patch, definition)
}

/// The word Go's JSON decoder uses for a JSON value's type in its error messages.
fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type(" Application/Strategic-Merge-Patch+JSON "),
            Some(PatchType::Strategic)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml;charset=utf-8"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(PatchType::from_content_type(""), None);
        for t in PatchType::ALL {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "main", "image": "nginx:1.25"},
                {"name": "side", "image": "busybox"}
            ]}}}
        })
    }

    #[test]
    fn json_patch_add_replace_remove() {
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
            {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "x", "image": "y"}},
            {"op": "remove", "path": "/spec/template/spec/containers/1"},
            {"op": "test", "path": "/metadata/name", "value": "web"}
        ]);
        let out = apply_json_patch(&deployment(), &patch).expect("applies");
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "tier": "web"})
        );
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["main", "x"]);
    }

    #[test]
    fn json_patch_test_failure_is_422() {
        let doc = deployment();
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "test", "path": "/spec/replicas", "value": 3}
        ]);
        let err = apply_json_patch(&doc, &patch).expect_err("test fails");
        assert!(matches!(err, PatchError::JsonPatchFailed(_)), "{err:?}");
        assert_eq!(err.status_code(), 422);
        assert_eq!(err.reason(), "Invalid");
        assert_eq!(
            err.status_message(),
            "the server rejected our request due to an error in our request"
        );
        assert!(err.to_string().contains("/spec/replicas"), "{err}");
    }

    #[test]
    fn json_patch_missing_path_fails() {
        let patch = json!([{"op": "remove", "path": "/spec/nothing"}]);
        let err = apply_json_patch(&deployment(), &patch).expect_err("missing");
        assert_eq!(err.status_code(), 422);
        let patch = json!([{"op": "replace", "path": "/spec/nothing/deeper", "value": 1}]);
        assert!(apply_json_patch(&deployment(), &patch).is_err());
    }

    #[test]
    fn json_patch_malformed_is_400() {
        let err = apply_json_patch(&deployment(), &json!({"op": "add"})).expect_err("object");
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        let err = apply_json_patch(&deployment(), &json!([{"op": "frobnicate", "path": "/a"}]))
            .expect_err("unknown op");
        assert_eq!(err.status_code(), 400);
        let err = apply_json_patch(&deployment(), &json!([{"op": "add", "value": 1}]))
            .expect_err("no path");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn json_patch_operation_cap() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/kind", "value": "Deployment"}))
            .collect();
        let err = apply_json_patch(&deployment(), &Value::Array(ops)).expect_err("too many");
        assert_eq!(err.status_code(), 413);
        assert_eq!(
            err.to_string(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn json_patch_leaves_input_untouched() {
        let doc = deployment();
        let patch = json!([{"op": "replace", "path": "/spec/replicas", "value": 9}]);
        let _ = apply_json_patch(&doc, &patch).expect("applies");
        assert_eq!(doc["spec"]["replicas"], 2);
    }

    #[test]
    fn merge_patch_merges_maps_replaces_lists_deletes_nulls() {
        let patch = json!({
            "metadata": {"labels": {"app": null, "tier": "web"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "only"}]}}}
        });
        let out = apply_merge_patch(&deployment(), &patch).expect("applies");
        assert_eq!(out["metadata"]["labels"], json!({"tier": "web"}));
        assert_eq!(out["metadata"]["name"], "web");
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only"}])
        );
    }

    #[test]
    fn merge_patch_rejects_non_object() {
        let err = apply_merge_patch(&deployment(), &json!([1, 2])).expect_err("array");
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
    }

    #[test]
    fn merge_patch_adds_nested_maps() {
        let out = apply_merge_patch(&json!({"a": 1}), &json!({"b": {"c": {"d": 1, "e": null}}}))
            .expect("applies");
        assert_eq!(out, json!({"a": 1, "b": {"c": {"d": 1}}}));
    }
}
