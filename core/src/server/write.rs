//! The write path shared by every resource: decode and validate input, prepare metadata
//! (uid, timestamps, generation, managedFields), apply defaults, validate, and write with
//! optimistic concurrency. Create, update (main resource and `/status`), patch (JSON, merge,
//! strategic, apply) and delete (grace periods, preconditions, finalizers) live here.

use super::objects::{self, name_of, Objects, Stored};
use super::status::{self, ApiError};
use crate::patch::{self, PatchType};
use crate::resources::{self, Resource};
use crate::{apply, defaults, fieldvalidation, validation};
use kubelite_storage::Revision;
use rand::Rng;
use serde_json::{json, Map, Value};

/// How unknown and duplicate fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter {other:?} is not valid: valid values are Ignore, Warn and Strict"
            ))),
        }
    }
}

/// Options of a write request.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    pub force: bool,
}

/// What a write produced.
pub struct Written {
    pub code: u16,
    /// The object as served (with resourceVersion).
    pub object: Value,
    pub warnings: Vec<String>,
}

/// RFC 3339 with whole seconds, as Kubernetes writes `metav1.Time`.
pub fn now() -> String {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", jiff::Timestamp::now()).unwrap_or_default()
}

fn generated_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Kinds whose `metadata.generation` tracks spec changes.
fn tracks_generation(r: &Resource) -> bool {
    matches!(r.group, "apps" | "batch")
        || matches!(
            r.kind,
            "Service" | "PersistentVolumeClaim" | "PersistentVolume"
        )
}

fn has_status(r: &Resource) -> bool {
    r.subresource("status").is_some()
}

/// Everything but metadata and status: what a generation counts.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// Decodes and checks a client object: apiVersion/kind, unknown and duplicate fields, types.
pub fn prepare_input(
    r: &Resource,
    mut v: Value,
    raw_json: Option<&[u8]>,
    fv: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let api_version = r.api_version();
    let handled = |msg: String| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {}",
            r.kind, r.version, r.kind, msg
        ))
    };
    let Some(obj) = v.as_object_mut() else {
        return Err(handled("body must be a JSON object".into()));
    };
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            obj.insert("apiVersion".into(), Value::String(api_version.clone()));
        }
        Some(av) if av == api_version => {}
        Some(av) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            obj.insert("kind".into(), Value::String(r.kind.into()));
        }
        Some(k) if k == r.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )))
        }
    }
    let mut problems: Vec<String> = Vec::new();
    if fv != FieldValidation::Ignore {
        let encoded;
        let raw = match raw_json {
            Some(raw) => raw,
            None => {
                encoded = serde_json::to_vec(&v).unwrap_or_default();
                &encoded
            }
        };
        match fieldvalidation::strict_violations(r.definition, raw) {
            Ok(violations) => problems.extend(violations.iter().map(|x| x.to_string())),
            Err(e) => return Err(handled(e.to_string())),
        }
    }
    if fv == FieldValidation::Strict && !problems.is_empty() {
        return Err(handled(format!(
            "strict decoding error: {}",
            problems.join(", ")
        )));
    }
    fieldvalidation::normalize(r.definition, &mut v);
    let v = super::typed::roundtrip(r, v).map_err(handled)?;
    Ok((
        v,
        if fv == FieldValidation::Warn {
            problems
        } else {
            Vec::new()
        },
    ))
}

/// The server's write logic over an [`Objects`] store.
#[derive(Clone)]
pub struct Writer {
    pub objects: Objects,
}

impl Writer {
    async fn check_namespace(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        if !r.namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or("");
        let nsr = resources::find("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("no namespaces resource"))?;
        match self.objects.get(nsr, None, ns).await? {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if n.value.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                status::qualified(r),
                name,
                ns
            ))),
            Some(_) => Ok(()),
        }
    }

    /// The storage admission plugins of a create: `DefaultStorageClass` (PVCs) and
    /// `StorageObjectInUseProtection` (PVCs and PVs); see `defaults::storage`.
    async fn storage_admission(&self, r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
        if r.kind == "PersistentVolumeClaim" {
            let mut classes = Vec::new();
            if let Some(sc) = resources::find("storage.k8s.io", "v1", "storageclasses") {
                let page = self
                    .objects
                    .backend
                    .list(&objects::prefix(sc, None), None, 0, None)
                    .await?;
                classes.extend(
                    page.kvs
                        .iter()
                        .filter_map(|kv| objects::decode(kv).ok().map(|s| s.value)),
                );
            }
            let default = defaults::storage::pick_default_class(&classes);
            defaults::storage::default_storage_class(obj, default.as_deref());
        }
        defaults::storage::add_protection_finalizer(r.kind, obj);
        Ok(())
    }

    /// POST: create a new object.
    pub async fn create(
        &self,
        r: &Resource,
        url_ns: Option<&str>,
        body: Value,
        raw: Option<&[u8]>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (mut obj, warnings) = prepare_input(r, body, raw, opts.field_validation)?;
        let now = now();
        {
            let meta = meta_mut(&mut obj);
            if r.namespaced {
                let body_ns = meta
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
                match (url_ns, body_ns.as_deref()) {
                    (Some(u), Some(b)) if u != b => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ))
                    }
                    (Some(u), _) => {
                        meta.insert("namespace".into(), json!(u));
                    }
                    (None, _) => return Err(ApiError::bad_request("a namespace is required to create this object")),
                }
            } else {
                meta.remove("namespace");
            }
            if meta
                .get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
            {
                return Err(ApiError::bad_request(
                    "resourceVersion should not be set on objects to be created",
                ));
            }
            let name_empty = meta
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if name_empty {
                if let Some(g) = meta
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|g| !g.is_empty())
                {
                    let name = format!("{g}{}", generated_suffix());
                    meta.insert("name".into(), json!(name));
                }
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now));
            for k in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
                "managedFields",
            ] {
                meta.remove(k);
            }
            if tracks_generation(r) {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        if has_status(r) && r.kind != "Node" {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        if r.kind == "Job" {
            let uid = obj
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            defaults::job_selector_defaults(&mut obj, &uid);
        }
        defaults::apply_defaults(r, &mut obj);
        if r.group.is_empty() && matches!(r.kind, "PersistentVolumeClaim" | "PersistentVolume") {
            self.storage_admission(r, &mut obj).await?;
        }
        let causes = validation::validate_create(r, &obj);
        let name = name_of(&obj).to_string();
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, &name, &causes));
        }
        self.check_namespace(r, objects::namespace_of(&obj), &name)
            .await?;
        apply::track_update(
            None,
            &mut obj,
            &opts.field_manager,
            &r.api_version(),
            r.definition,
            "",
            &now,
        );
        if opts.dry_run {
            return Ok(Written {
                code: 201,
                object: obj,
                warnings,
            });
        }
        let stored = self.objects.create(r, obj).await?;
        Ok(Written {
            code: 201,
            object: stored.value,
            warnings,
        })
    }

    /// Builds the object to store from the current one and the client's new version, for the
    /// main resource or a subresource (status), then validates it.
    fn merge_update(
        &self,
        r: &Resource,
        sub: Option<&str>,
        old: &Value,
        new: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let mut out = match sub {
            Some("status") => {
                let mut o = old.clone();
                o["status"] = new.get("status").cloned().unwrap_or(json!({}));
                o
            }
            _ => {
                let mut n = new;
                if has_status(r) && r.kind != "Node" {
                    match old.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            if let Some(o) = n.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                n
            }
        };
        {
            let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
            let meta = meta_mut(&mut out);
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "name",
            ] {
                match old_meta.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
            meta.remove("selfLink");
            match old_meta.get("generation") {
                Some(g) => meta.insert("generation".into(), g.clone()),
                None => meta.remove("generation"),
            };
        }
        if tracks_generation(r) && spec_part(old) != spec_part(&out) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut out).insert("generation".into(), json!(g));
        }
        if sub.is_none() {
            defaults::apply_defaults(r, &mut out);
        }
        let causes = match sub {
            Some(s) => validation::validate_subresource_update(r, s, old, &out),
            None => validation::validate_update(r, old, &out),
        };
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, name_of(old), &causes));
        }
        apply::track_update(
            Some(old),
            &mut out,
            manager,
            &r.api_version(),
            r.definition,
            sub.unwrap_or(""),
            &now(),
        );
        Ok(out)
    }

    /// Writes `next` over `current` (revision `expected`), or deletes it when a pending
    /// deletion has lost its last finalizer. Unchanged objects are not written.
    async fn commit(
        &self,
        r: &Resource,
        current: &Stored,
        next: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let mut cmp_old = current.value.clone();
        let mut cmp_new = next.clone();
        for v in [&mut cmp_old, &mut cmp_new] {
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
        }
        if cmp_old == cmp_new {
            return Ok(current.value.clone());
        }
        if opts.dry_run {
            return Ok(next);
        }
        let finalizers_empty = next
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if next.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers_empty
            && !is_graceful_pending(&next)
        {
            let s = self.objects.delete(r, next, Some(current.revision)).await?;
            return Ok(s.value);
        }
        Ok(self.objects.update(r, next, current.revision).await?.value)
    }

    /// PUT: replace an object (or its status).
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        body: Value,
        raw: Option<&[u8]>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (new, warnings) = prepare_input(r, body, raw, opts.field_validation)?;
        if let Some(n) = new.pointer("/metadata/name").and_then(Value::as_str) {
            if n != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        if let (Some(u), Some(b)) = (
            ns,
            new.pointer("/metadata/namespace").and_then(Value::as_str),
        ) {
            if r.namespaced && !b.is_empty() && u != b {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
        }
        let wanted_rv = new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        for _ in 0..8 {
            let Some(current) = self.objects.get(r, ns, name).await? else {
                if sub.is_none() && allows_create_on_update(r) {
                    let mut body = new.clone();
                    if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("resourceVersion");
                    }
                    return self.create(r, ns, body, None, opts).await;
                }
                return Err(ApiError::not_found(r, name));
            };
            if let Some(rv) = &wanted_rv {
                if *rv != current.revision.to_string() {
                    return Err(ApiError::stale(r, name));
                }
            }
            let next =
                self.merge_update(r, sub, &current.value, new.clone(), &opts.field_manager)?;
            match self.commit(r, &current, next, opts).await {
                Err(e) if e.reason == "Conflict" && wanted_rv.is_none() => continue,
                Err(e) => return Err(e),
                Ok(object) => {
                    return Ok(Written {
                        code: 200,
                        object,
                        warnings,
                    })
                }
            }
        }
        Err(ApiError::stale(r, name))
    }

    /// PATCH: apply a patch of any of the four types to the current object.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        pt: PatchType,
        body: Value,
        raw: Option<&[u8]>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if pt == PatchType::Apply {
            return self
                .server_side_apply(r, ns, name, sub, body, raw, opts)
                .await;
        }
        for _ in 0..8 {
            let current = self.objects.must_get(r, ns, name).await?;
            let patched = match pt {
                PatchType::Json => patch::apply_json_patch(&current.value, &body),
                PatchType::Merge => patch::apply_merge_patch(&current.value, &body),
                PatchType::Strategic => {
                    patch::apply_strategic_merge_patch(&current.value, &body, r.definition)
                }
                PatchType::Apply => unreachable!("handled above"),
            }
            .map_err(|e| match pt {
                PatchType::Json => ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                ),
                _ => ApiError::bad_request(e.to_string()),
            })?;
            let patch_rv = patched
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            let raw_patched = serde_json::to_vec(&patched).ok();
            let (new, warnings) =
                prepare_input(r, patched, raw_patched.as_deref(), opts.field_validation)?;
            let conditional = patch_rv
                .as_deref()
                .is_some_and(|rv| rv != current.revision.to_string());
            if conditional {
                return Err(ApiError::stale(r, name));
            }
            if new.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object does not match the name on the URL ({name})"
                )));
            }
            // A uid in the patch must be the object's (kubelet's status patches carry it, so
            // a pod deleted and recreated under the same name is not patched by mistake).
            let current_uid = current
                .value
                .pointer("/metadata/uid")
                .and_then(Value::as_str);
            if let Some(u) = new.pointer("/metadata/uid").and_then(Value::as_str) {
                if Some(u) != current_uid {
                    let cause = validation::Cause {
                        reason: "FieldValueInvalid",
                        field: "metadata.uid".into(),
                        message: format!("Invalid value: \"{u}\": field is immutable"),
                    };
                    return Err(ApiError::invalid(r, name, &[cause]));
                }
            }
            let next = self.merge_update(r, sub, &current.value, new, &opts.field_manager)?;
            match self.commit(r, &current, next, opts).await {
                Err(e) if e.reason == "Conflict" => continue,
                Err(e) => return Err(e),
                Ok(object) => {
                    return Ok(Written {
                        code: 200,
                        object,
                        warnings,
                    })
                }
            }
        }
        Err(ApiError::stale(r, name))
    }

    #[allow(clippy::too_many_arguments)]
    async fn server_side_apply(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        body: Value,
        raw: Option<&[u8]>,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if opts.field_manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH requests with apply content type must specify fieldManager",
            ));
        }
        let (mut applied, warnings) = prepare_input(r, body, raw, opts.field_validation)?;
        if applied
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| n != name)
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object does not match the name on the URL ({name})"
            )));
        }
        {
            let meta = meta_mut(&mut applied);
            meta.insert("name".into(), json!(name));
            if let Some(ns) = ns {
                meta.insert("namespace".into(), json!(ns));
            }
        }
        if sub.is_none() && has_status(r) && r.kind != "Node" {
            if let Some(o) = applied.as_object_mut() {
                o.remove("status");
            }
        }
        let api_version = r.api_version();
        for _ in 0..8 {
            let current = self.objects.get(r, ns, name).await?;
            let Some(current) = current else {
                if sub.is_some() {
                    return Err(ApiError::not_found(r, name));
                }
                let created = apply::apply(
                    None,
                    &applied,
                    &opts.field_manager,
                    &api_version,
                    r.definition,
                    opts.force,
                    &now(),
                )
                .map_err(|e| apply_error(r, name, e))?;
                let managed = created.pointer("/metadata/managedFields").cloned();
                let mut w = self
                    .create(
                        r,
                        ns,
                        created,
                        None,
                        &WriteOptions {
                            field_validation: FieldValidation::Ignore,
                            ..opts.clone()
                        },
                    )
                    .await?;
                // Creation by apply is recorded as an Apply entry, not an Update one.
                if let (Some(m), false) = (managed, opts.dry_run) {
                    let stored = self.objects.must_get(r, ns, name).await?;
                    let mut v = stored.value.clone();
                    meta_mut(&mut v).insert("managedFields".into(), m);
                    w.object = self.objects.update(r, v, stored.revision).await?.value;
                }
                w.warnings = warnings;
                return Ok(w);
            };
            let merged = apply::apply(
                Some(&current.value),
                &applied,
                &opts.field_manager,
                &api_version,
                r.definition,
                opts.force,
                &now(),
            )
            .map_err(|e| apply_error(r, name, e))?;
            let managed = merged.pointer("/metadata/managedFields").cloned();
            let mut next =
                self.merge_update(r, sub, &current.value, merged, &opts.field_manager)?;
            if let Some(m) = managed {
                meta_mut(&mut next).insert("managedFields".into(), m);
            }
            match self.commit(r, &current, next, opts).await {
                Err(e) if e.reason == "Conflict" => continue,
                Err(e) => return Err(e),
                Ok(object) => {
                    return Ok(Written {
                        code: 200,
                        object,
                        warnings,
                    })
                }
            }
        }
        Err(ApiError::stale(r, name))
    }

    /// DELETE of one object, honouring grace periods, preconditions and finalizers.
    /// Returns the response code and body (the object while deletion is pending, a Success
    /// status once it is gone).
    pub async fn delete(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(u16, Value), ApiError> {
        for _ in 0..8 {
            let current = self.objects.must_get(r, ns, name).await?;
            let uid = current
                .value
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(want) = &opts.precondition_uid {
                if *want != uid {
                    return Err(ApiError::conflict(r, name, &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}")));
                }
            }
            if let Some(want) = &opts.precondition_rv {
                if *want != current.revision.to_string() {
                    return Err(ApiError::conflict(r, name, &format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}", current.revision)));
                }
            }
            let grace = self.grace_period(r, &current.value, opts.grace_period_seconds);
            let mut next = current.value.clone();
            // Orphan and Foreground deletion are recorded as finalizers, as Kubernetes does;
            // the garbage collector (gc.rs) acts on them and removes them.
            let gc_finalizer = match opts.propagation_policy.as_deref() {
                Some("Orphan") => Some(FINALIZER_ORPHAN),
                Some("Foreground") => Some(FINALIZER_FOREGROUND),
                _ => None,
            };
            if let Some(f) = gc_finalizer {
                if r.kind != "Namespace" {
                    let list = meta_mut(&mut next)
                        .entry("finalizers")
                        .or_insert_with(|| json!([]));
                    if let Some(a) = list.as_array_mut() {
                        if !a.iter().any(|x| x == f) {
                            a.push(json!(f));
                        }
                    }
                }
            }
            let finalizers: Vec<Value> = next
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let already = current
                .value
                .pointer("/metadata/deletionTimestamp")
                .is_some();
            if r.kind == "Namespace" {
                if !already {
                    meta_mut(&mut next).insert("deletionTimestamp".into(), json!(now()));
                    meta_mut(&mut next).insert("deletionGracePeriodSeconds".into(), json!(0));
                    next["status"] = json!({"phase": "Terminating"});
                }
                if opts.dry_run {
                    return Ok((200, next));
                }
                let v = if already {
                    current.value
                } else {
                    self.objects.update(r, next, current.revision).await?.value
                };
                return Ok((200, v));
            }
            if !finalizers.is_empty() || grace > 0 {
                let meta = meta_mut(&mut next);
                let existing_grace = meta
                    .get("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                if !already || existing_grace.is_some_and(|g| grace < g) {
                    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                    let ts =
                        jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", at).unwrap_or_default();
                    meta.insert("deletionTimestamp".into(), json!(ts));
                    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
                if grace == 0 && finalizers.is_empty() {
                    // fall through to immediate deletion below
                } else {
                    if opts.dry_run || next == current.value {
                        return Ok((200, next));
                    }
                    match self.objects.update(r, next, current.revision).await {
                        Err(e) if e.reason == "Conflict" => continue,
                        Err(e) => return Err(e),
                        Ok(s) => return Ok((200, s.value)),
                    }
                }
            }
            if opts.dry_run {
                return Ok((200, current.value));
            }
            match self.objects.delete(r, next, Some(current.revision)).await {
                Err(e) if e.reason == "Conflict" => continue,
                Err(e) => return Err(e),
                Ok(gone) => {
                    if r.kind == "Pod" {
                        return Ok((200, gone.value));
                    }
                    let mut d = json!({"name": name, "kind": r.plural, "uid": uid});
                    if !r.group.is_empty() {
                        d["group"] = json!(r.group);
                    }
                    return Ok((200, status::success(Some(d))));
                }
            }
        }
        Err(ApiError::stale(r, name))
    }

    /// Seconds of grace for deleting `obj`: pods bound to a node get their termination grace
    /// period (or the request's); everything else, and unbound or finished pods, none.
    fn grace_period(&self, r: &Resource, obj: &Value, requested: Option<i64>) -> i64 {
        if r.kind != "Pod" {
            return 0;
        }
        let unbound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if unbound || finished {
            return 0;
        }
        requested
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30)
            .max(0)
    }
}

/// Finalizer recording `propagationPolicy: Orphan`.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// Finalizer recording `propagationPolicy: Foreground`.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// A pod whose graceful deletion is still running on its node: the agent removes it.
fn is_graceful_pending(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Pod")
        && obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g > 0)
}

fn allows_create_on_update(r: &Resource) -> bool {
    matches!(r.kind, "Lease" | "Event" | "Endpoints" | "Service")
}

fn apply_error(r: &Resource, name: &str, e: apply::ApplyError) -> ApiError {
    match &e {
        apply::ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
                .collect();
            let mut d = json!({"name": name, "kind": r.plural, "causes": causes});
            if !r.group.is_empty() {
                d["group"] = json!(r.group);
            }
            ApiError {
                code: 409,
                reason: "Conflict",
                message: e.message(),
                details: Some(d),
            }
        }
        apply::ApplyError::Invalid(m) => ApiError::new(422, "Invalid", m.clone()),
    }
}

/// `DeleteOptions`, from the body or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Parses a DeleteOptions body (may be empty; JSON, YAML or protobuf as `kubectl drain`
    /// sends), then query parameters override.
    pub fn parse(
        content_type: Option<&str>,
        body: &[u8],
        query: &super::query::Query,
    ) -> Result<Self, ApiError> {
        let mut o = DeleteOptions::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let (v, _) = super::body::decode(content_type, body, "DeleteOptions")?;
            o.grace_period_seconds = v.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.propagation_policy = v
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string);
            if v.get("orphanDependents").and_then(Value::as_bool) == Some(true)
                && o.propagation_policy.is_none()
            {
                o.propagation_policy = Some("Orphan".into());
            }
            o.precondition_uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.precondition_rv = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            o.dry_run = v
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All"));
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            o.grace_period_seconds =
                Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}"))
                })?);
        }
        if let Some(p) = query.get("propagationPolicy") {
            o.propagation_policy = Some(p.to_string());
        }
        if query.dry_run()? {
            o.dry_run = true;
        }
        if let Some(p) = &o.propagation_policy {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        }
        Ok(o)
    }
}

/// Revision type re-exported for handlers.
pub type Rev = Revision;
