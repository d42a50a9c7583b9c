//! OpenAPI documents for kubectl: v3 per group-version (`/openapi/v3/<path>`) and a v2 (swagger
//! 2.0) document of everything (`/openapi/v2`, JSON form), built from the schema data
//! (`schema.rs`) and the resource table (`resources.rs`), never written by hand.
//!
//! What kubectl relies on (kubectl-wire.md §3):
//! - every PATCH operation carries `x-kubernetes-group-version-kind` and a `fieldValidation`
//!   query parameter (otherwise kubectl falls back to client-side validation with v2);
//! - PATCH `requestBody.content` lists `application/strategic-merge-patch+json` (kubectl then
//!   computes strategic merge patches from the v3 schema and its `x-kubernetes-patch-*` keys);
//! - `components.schemas` entries keep `x-kubernetes-group-version-kind`, descriptions, and the
//!   `allOf: [{$ref}]` field form that `kubectl explain` renders.
//!
//! The schema data is JSON Schema (`#/$defs/<name>`, nullable types as `["object","null"]`);
//! it is rewritten to OpenAPI 3.0 the way the kube-apiserver publishes it: refs to
//! `#/components/schemas/<name>` (v2: `#/definitions/<name>`), single types, a referenced field
//! with siblings as `allOf: [{$ref}]`, struct array items as `{allOf: [{$ref}], default: {}}`,
//! `IntOrString` as `{format: int-or-string, oneOf: [integer, string]}` and `Quantity` as
//! `oneOf: [string, number]` (v2: both plain strings). Documents are built once, serialized with
//! a fixed key order, and addressed by the upper-case hex SHA-512 of their bytes, which is the
//! `?hash=` kubectl sends back (and a good `ETag`).

use crate::resources::{self, Resource, Subresource};
use crate::schema::{self, Schema};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// One served OpenAPI v3 document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersionDoc {
    /// The JSON document.
    pub body: Vec<u8>,
    /// Upper-case hex SHA-512 of `body`.
    pub hash: String,
}

impl GroupVersionDoc {
    fn new(doc: &Value) -> Self {
        // Serializing a `Value` cannot fail (all keys are strings).
        let body = serde_json::to_vec(doc).unwrap_or_default();
        let hash = hex_upper(&Sha512::digest(&body));
        GroupVersionDoc { body, hash }
    }

    /// The strong `ETag` for this document (`"<hash>"`).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }

    /// The URL kubectl is told to fetch (`/openapi/v3/api/v1?hash=...`).
    pub fn server_relative_url(&self, path: &str) -> String {
        format!(
            "/openapi/v3/{}?hash={}",
            path.trim_start_matches('/'),
            self.hash
        )
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

static V3_DOCS: OnceLock<BTreeMap<String, GroupVersionDoc>> = OnceLock::new();
static V2_DOC: OnceLock<Vec<u8>> = OnceLock::new();

fn v3_docs() -> &'static BTreeMap<String, GroupVersionDoc> {
    V3_DOCS.get_or_init(|| {
        let s = schema::schema();
        let mut docs = BTreeMap::new();
        docs.insert(
            "api".to_string(),
            GroupVersionDoc::new(&root_doc(s, DiscoveryRoot::Core)),
        );
        docs.insert(
            "apis".to_string(),
            GroupVersionDoc::new(&root_doc(s, DiscoveryRoot::Groups)),
        );
        docs.insert(
            "api/v1".to_string(),
            GroupVersionDoc::new(&group_version_doc(s, "", "v1")),
        );
        for (group, versions) in resources::groups() {
            docs.insert(
                format!("apis/{group}"),
                GroupVersionDoc::new(&root_doc(s, DiscoveryRoot::Group(group))),
            );
            for version in versions {
                docs.insert(
                    format!("apis/{group}/{version}"),
                    GroupVersionDoc::new(&group_version_doc(s, group, version)),
                );
            }
        }
        docs
    })
}

/// `GET /openapi/v3`: the index of the v3 documents, each with its `serverRelativeURL`.
pub fn v3_root() -> Value {
    let paths: Map<String, Value> = v3_docs()
        .iter()
        .map(|(path, doc)| {
            (
                path.clone(),
                json!({"serverRelativeURL": doc.server_relative_url(path)}),
            )
        })
        .collect();
    json!({ "paths": paths })
}

/// `GET /openapi/v3/<path>` for `path` such as `api/v1` or `apis/apps/v1` (a leading `/` and a
/// `/openapi/v3/` prefix are tolerated). Built once, on first use.
pub fn v3_document(path: &str) -> Option<&'static GroupVersionDoc> {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("openapi/v3/").unwrap_or(path);
    v3_docs().get(path.trim_end_matches('/'))
}

/// The paths `v3_root` lists, sorted.
pub fn v3_paths() -> impl Iterator<Item = &'static str> {
    v3_docs().keys().map(String::as_str)
}

/// `GET /openapi/v2` (JSON): a swagger 2.0 document of every served resource.
pub fn v2_document() -> &'static [u8] {
    V2_DOC.get_or_init(|| serde_json::to_vec(&swagger_doc(schema::schema())).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Schema conversion
// ---------------------------------------------------------------------------------------------

const DEFS_PREFIX: &str = "#/$defs/";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";

const INT_OR_STRING_DESCRIPTION: &str = "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.";
const QUANTITY_DESCRIPTION: &str = "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= <signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)\n\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | <digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits> <sign>            ::= \"+\" | \"-\" <signedNumber>    ::= <number> | <sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n\t(International System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n<decimalSI>       ::= m | \"\" | k | M | G | T | P | E\n\n\t(Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the capitalization.)\n\n<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber> ```\n\nNo matter which of the three exponent forms is used, no quantity may represent a number greater than 2^63-1 in magnitude, nor may it have more than 3 decimal places. Numbers larger or more precise will be capped or rounded up. (E.g.: 0.1m will rounded up to 1m.) This may be extended in the future if we require larger or smaller quantities.\n\nWhen a Quantity is parsed from a string, it will remember the type of suffix it had, and will use the same type again when it is serialized.\n\nBefore serializing, Quantity will be put in \"canonical form\". This means that Exponent/suffix will be adjusted up or down (with a corresponding increase or decrease in Mantissa) such that:\n\n- No precision is lost - No fractional digits will be emitted - The exponent (or suffix) is as large as possible.\n\nThe sign will be omitted unless the number is negative.\n\nExamples:\n\n- 1.5 will be serialized as \"1500m\" - 1.5Gi will be serialized as \"1536Mi\"\n\nNote that the quantity will NEVER be internally represented by a floating point number. That is the whole point of this exercise.\n\nNon-canonical values will still parse as long as they are well formed, but will be re-emitted in their canonical form. (So always use canonical form, or don't diff.)\n\nThis format is intended to make it difficult to use these numbers without writing some sort of special handling code in the hopes that that will cause implementors to also use a fixed point implementation.";

/// Which OpenAPI dialect a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    V3,
    V2,
}

impl Dialect {
    fn reference(self, name: &str) -> String {
        match self {
            Dialect::V3 => format!("#/components/schemas/{name}"),
            Dialect::V2 => format!("#/definitions/{name}"),
        }
    }

    fn ref_node(self, name: &str) -> Value {
        json!({ "$ref": self.reference(name) })
    }
}

/// Where a schema node sits, which decides how a `$ref` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Property,
    Items,
    Other,
}

fn def_ref(node: &Value) -> Option<&str> {
    node.get("$ref")?.as_str()?.strip_prefix(DEFS_PREFIX)
}

/// Collects the names of the definitions a node refers to.
fn collect_refs<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(name) = v.as_str().and_then(|r| r.strip_prefix(DEFS_PREFIX)) {
                        out.push(name);
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The definitions reachable from `roots` (including them), sorted by name.
fn closure(s: &Schema, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().collect();
    while let Some(name) = stack.pop() {
        let Some(def) = s.definition(&name) else {
            continue;
        };
        if !seen.insert(name) {
            continue;
        }
        let mut refs = Vec::new();
        collect_refs(def, &mut refs);
        stack.extend(
            refs.into_iter()
                .filter(|r| !seen.contains(*r))
                .map(str::to_string),
        );
    }
    seen
}

fn single_type(types: &Value) -> Value {
    match types {
        Value::Array(list) => {
            let kept: Vec<&Value> = list.iter().filter(|t| t.as_str() != Some("null")).collect();
            match kept.as_slice() {
                [one] => (*one).clone(),
                _ => Value::Array(kept.into_iter().cloned().collect()),
            }
        }
        other => other.clone(),
    }
}

fn is_struct(s: &Schema, name: &str) -> bool {
    s.definition(name)
        .is_some_and(|d| d.get("properties").is_some())
}

fn sorted(map: Map<String, Value>) -> Value {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(entries.into_iter().collect())
}

/// Rewrites one JSON Schema node into the dialect.
fn convert_node(s: &Schema, node: &Value, pos: Position, dialect: Dialect) -> Value {
    let Value::Object(map) = node else {
        return node.clone();
    };
    if let Some(target) = def_ref(node) {
        let mut siblings = Map::new();
        for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "$ref") {
            siblings.insert(k.clone(), convert_value(s, k, v, dialect));
        }
        return match dialect {
            Dialect::V2 => {
                siblings.insert("$ref".into(), json!(dialect.reference(target)));
                sorted(siblings)
            }
            Dialect::V3 => {
                if pos == Position::Items && siblings.is_empty() && is_struct(s, target) {
                    siblings.insert("default".into(), json!({}));
                }
                if siblings.is_empty() || pos == Position::Other {
                    siblings.insert("$ref".into(), json!(dialect.reference(target)));
                } else {
                    siblings.insert("allOf".into(), json!([dialect.ref_node(target)]));
                }
                sorted(siblings)
            }
        };
    }
    let mut out = Map::new();
    for (k, v) in map {
        out.insert(k.clone(), convert_value(s, k, v, dialect));
    }
    sorted(out)
}

/// Converts the value of keyword `key` of a schema node.
fn convert_value(s: &Schema, key: &str, v: &Value, dialect: Dialect) -> Value {
    match key {
        "type" => single_type(v),
        "properties" => match v {
            Value::Object(props) => {
                let mut out = Map::new();
                for (name, prop) in props {
                    out.insert(
                        name.clone(),
                        convert_node(s, prop, Position::Property, dialect),
                    );
                }
                sorted(out)
            }
            other => other.clone(),
        },
        "items" => convert_node(s, v, Position::Items, dialect),
        "additionalProperties" => match v {
            Value::Object(_) => convert_node(s, v, Position::Other, dialect),
            other => other.clone(),
        },
        "oneOf" | "anyOf" | "allOf" => match v {
            Value::Array(list) => Value::Array(
                list.iter()
                    .map(|n| convert_node(s, n, Position::Other, dialect))
                    .collect(),
            ),
            other => other.clone(),
        },
        _ => v.clone(),
    }
}

/// One component / definition, as the kube-apiserver publishes it.
fn convert_definition(s: &Schema, name: &str, def: &Value, dialect: Dialect) -> Value {
    match (name, dialect) {
        (INT_OR_STRING, Dialect::V3) => json!({
            "description": INT_OR_STRING_DESCRIPTION,
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}]
        }),
        (INT_OR_STRING, Dialect::V2) => json!({
            "description": INT_OR_STRING_DESCRIPTION,
            "format": "int-or-string",
            "type": "string"
        }),
        (QUANTITY, Dialect::V3) => json!({
            "description": QUANTITY_DESCRIPTION,
            "oneOf": [{"type": "string"}, {"type": "number"}]
        }),
        (QUANTITY, Dialect::V2) => json!({"description": QUANTITY_DESCRIPTION, "type": "string"}),
        _ => {
            let mut converted = convert_node(s, def, Position::Other, dialect);
            // The schema data pins `apiVersion`/`kind` with an `enum`; the apiserver doesn't.
            if def.get("x-kubernetes-group-version-kind").is_some() {
                for field in ["apiVersion", "kind"] {
                    if let Some(Value::Object(prop)) = converted
                        .get_mut("properties")
                        .and_then(|p| p.get_mut(field))
                    {
                        prop.remove("enum");
                    }
                }
            }
            converted
        }
    }
}

fn converted_definitions(
    s: &Schema,
    names: &BTreeSet<String>,
    dialect: Dialect,
) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|name| {
            let def = s.definition(name)?;
            Some((name.clone(), convert_definition(s, name, def, dialect)))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Paths and operations (dialect-neutral model)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Param {
    name: &'static str,
    location: &'static str,
    ty: &'static str,
    description: &'static str,
}

impl Param {
    const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Self {
        Param {
            name,
            location: "query",
            ty,
            description,
        }
    }
}

const P_PRETTY: Param = Param::query("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).");
const P_NAMESPACE: Param = Param {
    name: "namespace",
    location: "path",
    ty: "string",
    description: "object name and auth scope, such as for teams and projects",
};
const P_DRY_RUN: Param = Param::query("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed");
const P_FIELD_MANAGER: Param = Param::query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.");
const P_FIELD_MANAGER_PATCH: Param = Param::query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).");
const P_FIELD_VALIDATION: Param = Param::query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.");
const P_FORCE: Param = Param::query("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.");
const P_GRACE: Param = Param::query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.");
const P_IGNORE_STORE: Param = Param::query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it");
const P_ORPHAN: Param = Param::query("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.");
const P_PROPAGATION: Param = Param::query("propagationPolicy", "string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.");
const P_ALLOW_BOOKMARKS: Param = Param::query("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.");
const P_CONTINUE: Param = Param::query("continue", "string", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token.");
const P_FIELD_SELECTOR: Param = Param::query(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const P_LABEL_SELECTOR: Param = Param::query(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const P_LIMIT: Param = Param::query("limit", "integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.");
const P_RESOURCE_VERSION: Param = Param::query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset");
const P_RESOURCE_VERSION_MATCH: Param = Param::query("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset");
const P_SEND_INITIAL_EVENTS: Param = Param::query("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.");
const P_TIMEOUT: Param = Param::query("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.");
const P_WATCH: Param = Param::query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.");

const LIST_PARAMS: &[Param] = &[
    P_ALLOW_BOOKMARKS,
    P_CONTINUE,
    P_FIELD_SELECTOR,
    P_LABEL_SELECTOR,
    P_LIMIT,
    P_RESOURCE_VERSION,
    P_RESOURCE_VERSION_MATCH,
    P_SEND_INITIAL_EVENTS,
    P_TIMEOUT,
    P_WATCH,
];
const WRITE_PARAMS: &[Param] = &[P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION];
const PATCH_PARAMS: &[Param] = &[
    P_DRY_RUN,
    P_FIELD_MANAGER_PATCH,
    P_FIELD_VALIDATION,
    P_FORCE,
];
const DELETE_PARAMS: &[Param] = &[P_DRY_RUN, P_GRACE, P_IGNORE_STORE, P_ORPHAN, P_PROPAGATION];
const DELETE_COLLECTION_PARAMS: &[Param] = &[
    P_CONTINUE,
    P_DRY_RUN,
    P_FIELD_SELECTOR,
    P_GRACE,
    P_IGNORE_STORE,
    P_LABEL_SELECTOR,
    P_LIMIT,
    P_ORPHAN,
    P_PROPAGATION,
    P_RESOURCE_VERSION,
    P_RESOURCE_VERSION_MATCH,
    P_SEND_INITIAL_EVENTS,
    P_TIMEOUT,
];
const LOG_PARAMS: &[Param] = &[
    Param::query("container", "string", "The container for which to stream logs. Defaults to only container if there is one container in the pod."),
    Param::query("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
    Param::query("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to."),
    Param::query("limitBytes", "integer", "If set, the number of bytes to read from the server before terminating the log output."),
    Param::query("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
    Param::query("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs."),
    Param::query("stream", "string", "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\". If not specified, \"All\" is used."),
    Param::query("tailLines", "integer", "If set, the number of lines from the end of the logs to show."),
    Param::query("timestamps", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
];
const EXEC_PARAMS: &[Param] = &[
    Param::query("command", "string", "Command is the remote command to execute. argv array. Not executed within a shell."),
    Param::query("container", "string", "Container in which to execute the command. Defaults to only container if there is only one container in the pod."),
    Param::query("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
    Param::query("stdin", "boolean", "Redirect the standard input stream of the pod for this call. Defaults to false."),
    Param::query("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
    Param::query("tty", "boolean", "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false."),
];
const ATTACH_PARAMS: &[Param] = &[
    Param::query("container", "string", "The container in which to execute the command. Defaults to only container if there is only one container in the pod."),
    Param::query("stderr", "boolean", "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true."),
    Param::query("stdin", "boolean", "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false."),
    Param::query("stdout", "boolean", "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true."),
    Param::query("tty", "boolean", "TTY if true indicates that a tty will be allocated for the attach call. This is passed through the container runtime so the tty is allocated on the worker node by the container runtime. Defaults to false."),
];
const PORTFORWARD_PARAMS: &[Param] = &[Param::query(
    "ports",
    "integer",
    "List of ports to forward Required when using WebSockets",
)];

/// The four PATCH body types.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const LIST_TYPES: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
];
const LOG_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const ANY_TYPES: &[&str] = &["*/*"];

/// What a body or a response is.
#[derive(Debug, Clone)]
enum Payload {
    Def(String),
    Text,
}

#[derive(Debug, Clone)]
struct Body {
    types: &'static [&'static str],
    payload: Payload,
    required: bool,
}

#[derive(Debug, Clone)]
struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: Option<&'static str>,
    gvk: Option<(String, String, String)>,
    params: Vec<Param>,
    body: Option<Body>,
    /// (status code, description)
    codes: &'static [(&'static str, &'static str)],
    produces: &'static [&'static str],
    payload: Payload,
    tag: String,
}

#[derive(Debug, Clone, Default)]
struct PathItem {
    params: Vec<(Param, Option<String>)>,
    ops: Vec<Operation>,
}

const OK: &[(&str, &str)] = &[("200", "OK")];
const CREATED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created"), ("202", "Accepted")];
const REPLACED: &[(&str, &str)] = &[("200", "OK"), ("201", "Created")];
const DELETED: &[(&str, &str)] = &[("200", "OK"), ("202", "Accepted")];

/// `rbac.authorization.k8s.io` → `["rbac", "authorization"]`, `""` → `["core"]`.
fn group_words(group: &str) -> Vec<&str> {
    if group.is_empty() {
        return vec!["core"];
    }
    group
        .strip_suffix(".k8s.io")
        .unwrap_or(group)
        .split('.')
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
fn gv_ident(group: &str, version: &str) -> String {
    let mut out: String = group_words(group).iter().map(|w| capitalize(w)).collect();
    out.push_str(&capitalize(version));
    out
}

/// The operation tag: `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn gv_tag(group: &str, version: &str) -> String {
    let words = group_words(group);
    let mut out = words.first().map(|w| w.to_string()).unwrap_or_default();
    for w in words.iter().skip(1) {
        out.push_str(&capitalize(w));
    }
    format!("{out}_{version}")
}

fn gv_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

struct OpBuilder<'a> {
    s: &'a Schema,
    group: &'a str,
    version: &'a str,
    tag: String,
    ident: String,
}

impl OpBuilder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        method: &'static str,
        id: String,
        description: String,
        action: Option<&'static str>,
        gvk: Option<(&str, &str, &str)>,
        params: &[Param],
        body: Option<Body>,
        codes: &'static [(&'static str, &'static str)],
        produces: &'static [&'static str],
        payload: Payload,
    ) -> Operation {
        Operation {
            method,
            id,
            description,
            action,
            gvk: gvk.map(|(g, v, k)| (g.to_string(), v.to_string(), k.to_string())),
            params: params.to_vec(),
            body,
            codes,
            produces,
            payload,
            tag: self.tag.clone(),
        }
    }

    fn resource_paths(&self, r: &Resource, out: &mut BTreeMap<String, PathItem>) {
        let prefix = gv_prefix(self.group, self.version);
        let ns = if r.namespaced { "Namespaced" } else { "" };
        let ident = &self.ident;
        let kind = r.kind;
        let gvk = Some((r.group, r.version, kind));
        let object = Payload::Def(r.definition.to_string());
        let list_def = format!("{}List", r.definition);
        let has_list = self.s.definition(&list_def).is_some();
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        let item = format!("{collection}/{{name}}");
        let scope_params = |named: Option<&str>| -> Vec<(Param, Option<String>)> {
            let mut p = Vec::new();
            if let Some(what) = named {
                p.push((
                    Param {
                        name: "name",
                        location: "path",
                        ty: "string",
                        description: "",
                    },
                    Some(format!("name of the {what}")),
                ));
            }
            if r.namespaced {
                p.push((P_NAMESPACE, None));
            }
            p.push((P_PRETTY, None));
            p
        };

        // Collection: list, create, deletecollection.
        let mut coll = PathItem {
            params: scope_params(None),
            ops: Vec::new(),
        };
        if r.has_verb("list") && has_list {
            coll.ops.push(self.op(
                "get",
                format!("list{ident}{ns}{kind}"),
                format!("list or watch objects of kind {kind}"),
                Some("list"),
                gvk,
                LIST_PARAMS,
                None,
                OK,
                LIST_TYPES,
                Payload::Def(list_def.clone()),
            ));
        }
        if r.has_verb("create") {
            coll.ops.push(self.op(
                "post",
                format!("create{ident}{ns}{kind}"),
                format!("create {} {kind}", article(kind)),
                Some("post"),
                gvk,
                WRITE_PARAMS,
                Some(Body {
                    types: ANY_TYPES,
                    payload: object.clone(),
                    required: true,
                }),
                CREATED,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if r.has_verb("deletecollection") {
            coll.ops.push(self.op(
                "delete",
                format!("delete{ident}Collection{ns}{kind}"),
                format!("delete collection of {kind}"),
                Some("deletecollection"),
                gvk,
                DELETE_COLLECTION_PARAMS,
                Some(Body {
                    types: ANY_TYPES,
                    payload: Payload::Def(DELETE_OPTIONS.into()),
                    required: false,
                }),
                OK,
                OBJECT_TYPES,
                Payload::Def(STATUS.into()),
            ));
        }
        if !coll.ops.is_empty() {
            out.insert(collection.clone(), coll);
        }

        // All namespaces.
        if r.namespaced && r.has_verb("list") && has_list {
            let mut params: Vec<(Param, Option<String>)> =
                LIST_PARAMS.iter().map(|p| (*p, None)).collect();
            params.push((P_PRETTY, None));
            params.sort_by_key(|(p, _)| p.name);
            let op = self.op(
                "get",
                format!("list{ident}{kind}ForAllNamespaces"),
                format!("list or watch objects of kind {kind}"),
                Some("list"),
                gvk,
                &[],
                None,
                OK,
                LIST_TYPES,
                Payload::Def(list_def.clone()),
            );
            out.insert(
                format!("{prefix}/{}", r.plural),
                PathItem {
                    params,
                    ops: vec![op],
                },
            );
        }

        // Item: read, replace, patch, delete.
        let mut one = PathItem {
            params: scope_params(Some(kind)),
            ops: Vec::new(),
        };
        if r.has_verb("get") {
            one.ops.push(self.op(
                "get",
                format!("read{ident}{ns}{kind}"),
                format!("read the specified {kind}"),
                Some("get"),
                gvk,
                &[],
                None,
                OK,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if r.has_verb("update") {
            one.ops.push(self.op(
                "put",
                format!("replace{ident}{ns}{kind}"),
                format!("replace the specified {kind}"),
                Some("put"),
                gvk,
                WRITE_PARAMS,
                Some(Body {
                    types: ANY_TYPES,
                    payload: object.clone(),
                    required: true,
                }),
                REPLACED,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if r.has_verb("patch") {
            one.ops.push(self.op(
                "patch",
                format!("patch{ident}{ns}{kind}"),
                format!("partially update the specified {kind}"),
                Some("patch"),
                gvk,
                PATCH_PARAMS,
                Some(Body {
                    types: PATCH_TYPES,
                    payload: Payload::Def(PATCH.into()),
                    required: true,
                }),
                REPLACED,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if r.has_verb("delete") {
            one.ops.push(self.op(
                "delete",
                format!("delete{ident}{ns}{kind}"),
                format!("delete {} {kind}", article(kind)),
                Some("delete"),
                gvk,
                DELETE_PARAMS,
                Some(Body {
                    types: ANY_TYPES,
                    payload: Payload::Def(DELETE_OPTIONS.into()),
                    required: false,
                }),
                DELETED,
                OBJECT_TYPES,
                Payload::Def(STATUS.into()),
            ));
        }
        if !one.ops.is_empty() {
            out.insert(item.clone(), one);
        }

        for sub in r.subresources {
            self.subresource_paths(r, sub, &item, out);
        }
    }

    fn subresource_paths(
        &self,
        r: &Resource,
        sub: &Subresource,
        item: &str,
        out: &mut BTreeMap<String, PathItem>,
    ) {
        let ident = &self.ident;
        let ns = if r.namespaced { "Namespaced" } else { "" };
        let kind = r.kind;
        let suffix = capitalize(sub.name);
        let gvk = Some((sub.group, sub.version, sub.kind));
        let def = if sub.group == r.group && sub.version == r.version && sub.kind == r.kind {
            Some(r.definition.to_string())
        } else {
            self.s
                .definition_for_gvk(sub.group, sub.version, sub.kind)
                .map(|(n, _)| n.to_string())
        };
        let path = format!("{item}/{}", sub.name);
        let has = |verb: &str| sub.verbs.contains(&verb);
        let name_param = (
            Param {
                name: "name",
                location: "path",
                ty: "string",
                description: "",
            },
            Some(format!("name of the {}", sub.kind)),
        );
        let mut params = vec![name_param];
        if r.namespaced {
            params.push((P_NAMESPACE, None));
        }
        let mut item_ops = PathItem {
            params,
            ops: Vec::new(),
        };

        let connect = sub.kind.ends_with("Options");
        if connect {
            let extra = match sub.name {
                "exec" => EXEC_PARAMS,
                "attach" => ATTACH_PARAMS,
                "portforward" => PORTFORWARD_PARAMS,
                _ => &[],
            };
            for (method, verb) in [("get", "get"), ("post", "create")] {
                if !has(verb) {
                    continue;
                }
                let m = capitalize(method);
                item_ops.ops.push(self.op(
                    method,
                    format!("connect{ident}{m}{ns}{kind}{suffix}"),
                    format!(
                        "connect {} requests to {} of {kind}",
                        method.to_uppercase(),
                        sub.name
                    ),
                    Some("connect"),
                    gvk,
                    extra,
                    None,
                    OK,
                    ANY_TYPES,
                    Payload::Text,
                ));
            }
            out.insert(path, item_ops);
            return;
        }
        item_ops.params.push((P_PRETTY, None));

        if sub.name == "log" {
            if has("get") {
                item_ops.ops.push(self.op(
                    "get",
                    format!("read{ident}{ns}{kind}Log"),
                    format!("read log of the specified {kind}"),
                    Some("get"),
                    gvk,
                    LOG_PARAMS,
                    None,
                    OK,
                    LOG_TYPES,
                    Payload::Text,
                ));
            }
            out.insert(path, item_ops);
            return;
        }
        let Some(def) = def else { return };
        let object = Payload::Def(def);
        if has("get") {
            item_ops.ops.push(self.op(
                "get",
                format!("read{ident}{ns}{kind}{suffix}"),
                format!("read {} of the specified {kind}", sub.name),
                Some("get"),
                gvk,
                &[],
                None,
                OK,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if has("create") {
            item_ops.ops.push(self.op(
                "post",
                format!("create{ident}{ns}{kind}{suffix}"),
                format!("create {} of {} {kind}", sub.name, article(kind)),
                Some("post"),
                gvk,
                WRITE_PARAMS,
                Some(Body {
                    types: ANY_TYPES,
                    payload: object.clone(),
                    required: true,
                }),
                CREATED,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if has("update") {
            item_ops.ops.push(self.op(
                "put",
                format!("replace{ident}{ns}{kind}{suffix}"),
                format!("replace {} of the specified {kind}", sub.name),
                Some("put"),
                gvk,
                WRITE_PARAMS,
                Some(Body {
                    types: ANY_TYPES,
                    payload: object.clone(),
                    required: true,
                }),
                REPLACED,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if has("patch") {
            item_ops.ops.push(self.op(
                "patch",
                format!("patch{ident}{ns}{kind}{suffix}"),
                format!("partially update {} of the specified {kind}", sub.name),
                Some("patch"),
                gvk,
                PATCH_PARAMS,
                Some(Body {
                    types: PATCH_TYPES,
                    payload: Payload::Def(PATCH.into()),
                    required: true,
                }),
                REPLACED,
                OBJECT_TYPES,
                object.clone(),
            ));
        }
        if !item_ops.ops.is_empty() {
            out.insert(path, item_ops);
        }
    }
}

fn article(kind: &str) -> &'static str {
    match kind.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U') => "an",
        _ => "a",
    }
}

/// The paths of one group-version, sorted.
fn group_version_paths(s: &Schema, group: &str, version: &str) -> BTreeMap<String, PathItem> {
    let b = OpBuilder {
        s,
        group,
        version,
        tag: gv_tag(group, version),
        ident: gv_ident(group, version),
    };
    let mut out = BTreeMap::new();
    let resources_op = b.op(
        "get",
        format!("get{}APIResources", b.ident),
        "get available resources".into(),
        None,
        None,
        &[],
        None,
        OK,
        OBJECT_TYPES,
        Payload::Def(API_RESOURCE_LIST.into()),
    );
    out.insert(
        format!("{}/", gv_prefix(group, version)),
        PathItem {
            params: Vec::new(),
            ops: vec![resources_op],
        },
    );
    for r in resources::in_group_version(group, version) {
        b.resource_paths(r, &mut out);
    }
    out
}

/// The definitions the operations of `paths` refer to.
fn path_roots(paths: &BTreeMap<String, PathItem>) -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    for item in paths.values() {
        for op in &item.ops {
            if let Payload::Def(d) = &op.payload {
                roots.insert(d.clone());
            }
            if let Some(Body {
                payload: Payload::Def(d),
                ..
            }) = &op.body
            {
                roots.insert(d.clone());
            }
        }
    }
    roots
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

fn param_v3(p: &Param, description: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert(
        "description".into(),
        json!(description.unwrap_or(p.description)),
    );
    m.insert("in".into(), json!(p.location));
    m.insert("name".into(), json!(p.name));
    if p.location == "path" {
        m.insert("required".into(), json!(true));
    }
    m.insert("schema".into(), json!({"type": p.ty, "uniqueItems": true}));
    Value::Object(m)
}

fn param_v2(p: &Param, description: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert(
        "description".into(),
        json!(description.unwrap_or(p.description)),
    );
    m.insert("in".into(), json!(p.location));
    m.insert("name".into(), json!(p.name));
    if p.location == "path" {
        m.insert("required".into(), json!(true));
    }
    m.insert("type".into(), json!(p.ty));
    m.insert("uniqueItems".into(), json!(true));
    Value::Object(m)
}

fn payload_schema(payload: &Payload, dialect: Dialect) -> Value {
    match payload {
        Payload::Def(name) => dialect.ref_node(name),
        Payload::Text => json!({"type": "string"}),
    }
}

fn gvk_value(gvk: &(String, String, String)) -> Value {
    json!({"group": gvk.0, "kind": gvk.2, "version": gvk.1})
}

fn operation_v3(op: &Operation) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), json!(op.description));
    m.insert("operationId".into(), json!(op.id));
    if !op.params.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(op.params.iter().map(|p| param_v3(p, None)).collect()),
        );
    }
    if let Some(body) = &op.body {
        let content: Map<String, Value> = body
            .types
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    json!({"schema": payload_schema(&body.payload, Dialect::V3)}),
                )
            })
            .collect();
        let mut rb = Map::new();
        rb.insert("content".into(), Value::Object(content));
        if body.required {
            rb.insert("required".into(), json!(true));
        }
        m.insert("requestBody".into(), Value::Object(rb));
    }
    let mut responses = Map::new();
    for (code, text) in op.codes {
        let content: Map<String, Value> = op
            .produces
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    json!({"schema": payload_schema(&op.payload, Dialect::V3)}),
                )
            })
            .collect();
        responses.insert(
            code.to_string(),
            json!({"content": content, "description": text}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    m.insert("responses".into(), Value::Object(responses));
    m.insert("tags".into(), json!([op.tag]));
    if let Some(action) = op.action {
        m.insert("x-kubernetes-action".into(), json!(action));
    }
    if let Some(gvk) = &op.gvk {
        m.insert("x-kubernetes-group-version-kind".into(), gvk_value(gvk));
    }
    Value::Object(m)
}

fn operation_v2(op: &Operation) -> Value {
    let mut m = Map::new();
    let consumes: &[&str] = match &op.body {
        Some(body) if body.types != ANY_TYPES => body.types,
        _ => ANY_TYPES,
    };
    m.insert("consumes".into(), json!(consumes));
    m.insert("description".into(), json!(op.description));
    m.insert("operationId".into(), json!(op.id));
    let mut params = Vec::new();
    if let Some(body) = &op.body {
        let mut bp = Map::new();
        bp.insert("in".into(), json!("body"));
        bp.insert("name".into(), json!("body"));
        if body.required {
            bp.insert("required".into(), json!(true));
        }
        bp.insert("schema".into(), payload_schema(&body.payload, Dialect::V2));
        params.push(Value::Object(bp));
    }
    params.extend(op.params.iter().map(|p| param_v2(p, None)));
    if !params.is_empty() {
        m.insert("parameters".into(), Value::Array(params));
    }
    m.insert("produces".into(), json!(op.produces));
    let mut responses = Map::new();
    for (code, text) in op.codes {
        responses.insert(
            code.to_string(),
            json!({"description": text, "schema": payload_schema(&op.payload, Dialect::V2)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    m.insert("responses".into(), Value::Object(responses));
    m.insert("schemes".into(), json!(["https"]));
    m.insert("tags".into(), json!([op.tag]));
    if let Some(action) = op.action {
        m.insert("x-kubernetes-action".into(), json!(action));
    }
    if let Some(gvk) = &op.gvk {
        m.insert("x-kubernetes-group-version-kind".into(), gvk_value(gvk));
    }
    Value::Object(m)
}

fn render_paths(paths: &BTreeMap<String, PathItem>, dialect: Dialect) -> Map<String, Value> {
    paths
        .iter()
        .map(|(path, item)| {
            let mut entries: Vec<(String, Value)> = item
                .ops
                .iter()
                .map(|op| {
                    let v = match dialect {
                        Dialect::V3 => operation_v3(op),
                        Dialect::V2 => operation_v2(op),
                    };
                    (op.method.to_string(), v)
                })
                .collect();
            if !item.params.is_empty() {
                let params = item
                    .params
                    .iter()
                    .map(|(p, d)| match dialect {
                        Dialect::V3 => param_v3(p, d.as_deref()),
                        Dialect::V2 => param_v2(p, d.as_deref()),
                    })
                    .collect();
                entries.push(("parameters".into(), Value::Array(params)));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            (path.clone(), Value::Object(entries.into_iter().collect()))
        })
        .collect()
}

fn v3_doc(s: &Schema, paths: &BTreeMap<String, PathItem>) -> Value {
    let schemas = converted_definitions(s, &closure(s, path_roots(paths)), Dialect::V3);
    json!({
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey"
                }
            }
        },
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "openapi": "3.0.0",
        "paths": render_paths(paths, Dialect::V3),
        "security": [{"BearerToken": []}]
    })
}

fn group_version_doc(s: &Schema, group: &str, version: &str) -> Value {
    v3_doc(s, &group_version_paths(s, group, version))
}

/// The discovery endpoints documented by the `api`, `apis` and `apis/<group>` documents.
#[derive(Debug, Clone, Copy)]
enum DiscoveryRoot<'a> {
    Core,
    Groups,
    Group(&'a str),
}

fn discovery_root_paths(s: &Schema, root: DiscoveryRoot<'_>) -> BTreeMap<String, PathItem> {
    let (path, id, description, def, tag) = match root {
        DiscoveryRoot::Core => (
            "/api/".to_string(),
            "getCoreAPIVersions".to_string(),
            "get available API versions",
            API_VERSIONS,
            "core".to_string(),
        ),
        DiscoveryRoot::Groups => (
            "/apis/".to_string(),
            "getAPIVersions".to_string(),
            "get available API versions",
            API_GROUP_LIST,
            "apis".to_string(),
        ),
        DiscoveryRoot::Group(g) => {
            let words = group_words(g);
            let ident: String = words.iter().map(|w| capitalize(w)).collect();
            let tag = gv_tag(g, "").trim_end_matches('_').to_string();
            (
                format!("/apis/{g}/"),
                format!("get{ident}APIGroup"),
                "get information of a group",
                API_GROUP,
                tag,
            )
        }
    };
    let b = OpBuilder {
        s,
        group: "",
        version: "",
        tag,
        ident: String::new(),
    };
    let op = b.op(
        "get",
        id,
        description.into(),
        None,
        None,
        &[],
        None,
        OK,
        OBJECT_TYPES,
        Payload::Def(def.into()),
    );
    BTreeMap::from([(
        path,
        PathItem {
            params: Vec::new(),
            ops: vec![op],
        },
    )])
}

fn root_doc(s: &Schema, root: DiscoveryRoot<'_>) -> Value {
    v3_doc(s, &discovery_root_paths(s, root))
}

fn swagger_doc(s: &Schema) -> Value {
    let mut paths = discovery_root_paths(s, DiscoveryRoot::Core);
    paths.extend(discovery_root_paths(s, DiscoveryRoot::Groups));
    paths.extend(group_version_paths(s, "", "v1"));
    for (group, versions) in resources::groups() {
        paths.extend(discovery_root_paths(s, DiscoveryRoot::Group(group)));
        for version in versions {
            paths.extend(group_version_paths(s, group, version));
        }
    }
    let definitions = converted_definitions(s, &closure(s, path_roots(&paths)), Dialect::V2);
    json!({
        "definitions": definitions,
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": render_paths(&paths, Dialect::V2),
        "security": [{"BearerToken": []}],
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey"
            }
        },
        "swagger": "2.0"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str) -> Value {
        let d = v3_document(path).expect("document");
        serde_json::from_slice(&d.body).expect("valid JSON")
    }

    fn schemas(doc: &Value) -> &Map<String, Value> {
        doc["components"]["schemas"].as_object().expect("schemas")
    }

    /// Every `$ref` of a document must resolve inside it.
    fn assert_refs_resolve(doc: &Value, prefix: &str, defs: &Map<String, Value>) {
        let mut refs = Vec::new();
        fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        if k == "$ref" {
                            if let Some(s) = v.as_str() {
                                out.push(s);
                            }
                        } else {
                            walk(v, out);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("foreign ref {r}"));
            assert!(defs.contains_key(name), "dangling ref {r}");
        }
    }

    #[test]
    fn root_lists_documents_with_hashes() {
        let root = v3_root();
        let paths = root["paths"].as_object().expect("paths");
        for p in [
            "api",
            "apis",
            "api/v1",
            "apis/apps",
            "apis/apps/v1",
            "apis/batch/v1",
            "apis/authorization.k8s.io/v1",
        ] {
            let url = paths[p]["serverRelativeURL"].as_str().expect("url");
            let d = v3_document(p).expect("doc");
            assert_eq!(url, format!("/openapi/v3/{p}?hash={}", d.hash));
            assert_eq!(d.hash.len(), 128);
            assert!(d
                .hash
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            assert_eq!(d.hash, hex_upper(&Sha512::digest(&d.body)));
        }
        assert!(v3_document("/openapi/v3/apis/apps/v1").is_some());
        assert!(v3_document("apis/nope/v1").is_none());
        assert_eq!(v3_paths().count(), paths.len());
    }

    #[test]
    fn documents_are_stable() {
        let s = schema::schema();
        let again = GroupVersionDoc::new(&group_version_doc(s, "apps", "v1"));
        assert_eq!(v3_document("apis/apps/v1").expect("doc"), &again);
    }

    #[test]
    fn every_patch_has_field_validation_and_patch_types() {
        for path in v3_paths() {
            let d = doc(path);
            for (p, item) in d["paths"].as_object().expect("paths") {
                for (method, op) in item.as_object().expect("item") {
                    if method == "parameters" {
                        continue;
                    }
                    let names: Vec<&str> = op["parameters"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
                        .unwrap_or_default();
                    if method == "patch" {
                        for required in ["dryRun", "fieldManager", "fieldValidation", "force"] {
                            assert!(names.contains(&required), "{p} patch lacks {required}");
                        }
                        let content = op["requestBody"]["content"].as_object().expect("content");
                        for t in PATCH_TYPES {
                            assert!(content.contains_key(*t), "{p} lacks {t}");
                        }
                        assert!(op["x-kubernetes-group-version-kind"]["kind"].is_string());
                    }
                    if (method == "post" || method == "put")
                        && op["x-kubernetes-action"] != "connect"
                    {
                        assert!(names.contains(&"fieldValidation"), "{p} {method}");
                    }
                }
            }
        }
    }

    #[test]
    fn pod_paths_and_gvk() {
        let d = doc("api/v1");
        let paths = d["paths"].as_object().expect("paths");
        let item = &paths["/api/v1/namespaces/{namespace}/pods/{name}"];
        assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
        assert_eq!(
            item["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "", "kind": "Pod", "version": "v1"})
        );
        assert_eq!(item["patch"]["operationId"], "patchCoreV1NamespacedPod");
        assert_eq!(item["get"]["operationId"], "readCoreV1NamespacedPod");
        assert_eq!(item["put"]["operationId"], "replaceCoreV1NamespacedPod");
        assert_eq!(item["delete"]["operationId"], "deleteCoreV1NamespacedPod");
        let coll = &paths["/api/v1/namespaces/{namespace}/pods"];
        assert_eq!(coll["get"]["x-kubernetes-action"], "list");
        assert_eq!(coll["post"]["x-kubernetes-action"], "post");
        assert_eq!(coll["delete"]["x-kubernetes-action"], "deletecollection");
        assert_eq!(
            coll["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodList"
        );
        assert_eq!(
            paths["/api/v1/pods"]["get"]["operationId"],
            "listCoreV1PodForAllNamespaces"
        );
        assert_eq!(
            paths["/api/v1/nodes/{name}"]["get"]["operationId"],
            "readCoreV1Node"
        );
        assert_eq!(
            paths["/api/v1/nodes/{name}/status"]["patch"]["operationId"],
            "patchCoreV1NodeStatus"
        );
        let status = &paths["/api/v1/namespaces/{namespace}/pods/{name}/status"];
        assert_eq!(
            status["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Pod"
        );
        let eviction = &paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"];
        assert_eq!(
            eviction["post"]["x-kubernetes-group-version-kind"],
            json!({"group": "policy", "kind": "Eviction", "version": "v1"})
        );
        let exec = &paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"];
        assert_eq!(exec["get"]["x-kubernetes-action"], "connect");
        assert_eq!(
            exec["post"]["operationId"],
            "connectCoreV1PostNamespacedPodExec"
        );
        let log = &paths["/api/v1/namespaces/{namespace}/pods/{name}/log"];
        assert_eq!(log["get"]["operationId"], "readCoreV1NamespacedPodLog");
        assert!(paths.contains_key("/api/v1/"));
        assert!(paths.contains_key("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"));
        assert!(!paths.keys().any(|p| p.starts_with("/apis/")));
    }

    #[test]
    fn apps_scale_and_components() {
        let d = doc("apis/apps/v1");
        let paths = d["paths"].as_object().expect("paths");
        let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
        );
        assert_eq!(
            scale["get"]["operationId"],
            "readAppsV1NamespacedDeploymentScale"
        );
        let schemas = schemas(&d);
        for needed in [
            "io.k8s.api.apps.v1.Deployment",
            "io.k8s.api.apps.v1.DeploymentList",
            "io.k8s.api.autoscaling.v1.Scale",
            "io.k8s.api.core.v1.PodTemplateSpec",
            "io.k8s.api.core.v1.Container",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            DELETE_OPTIONS,
            STATUS,
            PATCH,
            INT_OR_STRING,
            QUANTITY,
        ] {
            assert!(schemas.contains_key(needed), "missing {needed}");
        }
        // Only what is reachable: no Node, no batch types.
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Node"));
        assert!(!schemas.contains_key("io.k8s.api.batch.v1.Job"));
        assert_refs_resolve(&d, "#/components/schemas/", schemas);
        assert_eq!(
            schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert_eq!(d["openapi"], "3.0.0");
    }

    #[test]
    fn schemas_are_openapi3_shaped() {
        let d = doc("api/v1");
        let schemas = schemas(&d);
        let pod = &schemas["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["type"], "object");
        assert_eq!(
            pod["properties"]["spec"],
            json!({
                "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}],
                "description": "Specification of the desired behavior of the pod. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"
            })
        );
        assert!(pod["properties"]["apiVersion"].get("enum").is_none());
        assert_eq!(pod["properties"]["kind"]["type"], "string");
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["type"], "array");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(
            containers["items"],
            json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}], "default": {}})
        );
        assert_eq!(
            schemas["io.k8s.api.core.v1.PodSpec"]["required"],
            json!(["containers"])
        );
        let limits = &schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"];
        assert_eq!(limits["type"], "object");
        assert_eq!(
            limits["additionalProperties"],
            json!({"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"})
        );
        let labels =
            &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"];
        assert_eq!(labels["additionalProperties"], json!({"type": "string"}));
        let ios = &schemas[INT_OR_STRING];
        assert_eq!(ios["format"], "int-or-string");
        assert_eq!(
            ios["oneOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert_eq!(
            schemas[QUANTITY]["oneOf"],
            json!([{"type": "string"}, {"type": "number"}])
        );
        assert_eq!(
            schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"],
            "date-time"
        );
        assert_eq!(
            schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["type"],
            "string"
        );
        // No JSON-Schema-only forms left anywhere.
        let text = String::from_utf8_lossy(&v3_document("api/v1").expect("doc").body).to_string();
        assert!(!text.contains("\"null\""));
        assert!(!text.contains("#/$defs/"));
    }

    #[test]
    fn review_resources_are_create_only() {
        let d = doc("apis/authorization.k8s.io/v1");
        let paths = d["paths"].as_object().expect("paths");
        let item = &paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"];
        assert_eq!(
            item["post"]["operationId"],
            "createAuthorizationV1SelfSubjectAccessReview"
        );
        assert!(item.get("get").is_none());
        assert!(
            !paths.contains_key("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/{name}")
        );
    }

    #[test]
    fn discovery_root_documents() {
        let d = doc("api");
        assert_eq!(
            d["paths"]["/api/"]["get"]["operationId"],
            "getCoreAPIVersions"
        );
        assert!(schemas(&d).contains_key(API_VERSIONS));
        let d = doc("apis/apps");
        assert_eq!(
            d["paths"]["/apis/apps/"]["get"]["operationId"],
            "getAppsAPIGroup"
        );
        let d = doc("apis/coordination.k8s.io");
        assert_eq!(
            d["paths"]["/apis/coordination.k8s.io/"]["get"]["tags"],
            json!(["coordination"])
        );
    }

    #[test]
    fn swagger_v2() {
        let d: Value = serde_json::from_slice(v2_document()).expect("json");
        assert_eq!(d["swagger"], "2.0");
        let defs = d["definitions"].as_object().expect("definitions");
        assert_refs_resolve(&d, "#/definitions/", defs);
        let paths = d["paths"].as_object().expect("paths");
        let patch = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["consumes"], json!(PATCH_TYPES));
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        assert!(names.contains(&"body"));
        let pod = &defs["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodSpec"
        );
        assert_eq!(defs[INT_OR_STRING]["type"], "string");
        assert_eq!(defs[INT_OR_STRING]["format"], "int-or-string");
        assert_eq!(defs[QUANTITY]["type"], "string");
        assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods"));
        assert!(paths.contains_key("/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status"));
    }

    #[test]
    fn identifiers() {
        assert_eq!(gv_ident("", "v1"), "CoreV1");
        assert_eq!(
            gv_ident("rbac.authorization.k8s.io", "v1"),
            "RbacAuthorizationV1"
        );
        assert_eq!(
            gv_tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(gv_tag("", "v1"), "core_v1");
        assert_eq!(
            gv_ident("coordination.k8s.io", "v1beta1"),
            "CoordinationV1beta1"
        );
    }
}
