//! The table of API resources kubelite serves: group, version, plural, kind, scope, short names,
//! categories, verbs and subresources. Discovery, OpenAPI paths, routing and storage keys are all
//! derived from this one table; adding a resource is adding a row (plus its strategy).

/// One subresource (`pods/status`, `deployments/scale`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Subresource {
    pub name: &'static str,
    /// Group/version/kind of what the subresource answers with.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One resource.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Name of the schema definition (see `schema.rs`).
    pub definition: &'static str,
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.group == other.group && self.version == other.version && self.plural == other.plural
    }
}

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `PodList`, `DeploymentList`, ...
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The storage key prefix for this resource: `/registry/<group or core>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        format!("/registry/{}/{}/", group, self.plural)
    }

    /// Whether the resource stores objects (false for create-only reviews).
    pub fn is_stored(&self) -> bool {
        self.verbs.contains(&"get")
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

/// Verbs of an ordinary stored resource.
pub const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const CREATE_ONLY: &[&str] = &["create"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group,
        version,
        kind,
        verbs: STATUS_VERBS,
    }
}
const fn scale() -> Subresource {
    Subresource {
        name: "scale",
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: STATUS_VERBS,
    }
}
const fn action(
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group,
        version,
        kind,
        verbs,
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $namespaced:expr,
     short: $short:expr, cat: $cat:expr, verbs: $verbs:expr, sub: $sub:expr, def: $def:expr) => {
        Resource {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: $short,
            categories: $cat,
            verbs: $verbs,
            subresources: $sub,
            definition: $def,
        }
    };
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// Every resource kubelite serves, in discovery order.
pub static RESOURCES: &[Resource] = &[
    // core/v1
    res!("", "v1", "namespaces", "namespace", "Namespace", false, short: &["ns"], cat: NONE, verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
        sub: &[status("", "v1", "Namespace"), action("finalize", "", "v1", "Namespace", &["update"])], def: "io.k8s.api.core.v1.Namespace"),
    res!("", "v1", "pods", "pod", "Pod", true, short: &["po"], cat: ALL, verbs: CRUD,
        sub: &[
            status("", "v1", "Pod"),
            action("binding", "", "v1", "Binding", &["create"]),
            action("eviction", "policy", "v1", "Eviction", &["create"]),
            action("log", "", "v1", "Pod", &["get"]),
            action("exec", "", "v1", "PodExecOptions", &["create", "get"]),
            action("attach", "", "v1", "PodAttachOptions", &["create", "get"]),
            action("portforward", "", "v1", "PodPortForwardOptions", &["create", "get"]),
            action("ephemeralcontainers", "", "v1", "Pod", STATUS_VERBS),
            action("resize", "", "v1", "Pod", STATUS_VERBS),
        ],
        def: "io.k8s.api.core.v1.Pod"),
    res!("", "v1", "bindings", "binding", "Binding", true, short: NONE, cat: NONE, verbs: CREATE_ONLY, sub: &[], def: "io.k8s.api.core.v1.Binding"),
    res!("", "v1", "nodes", "node", "Node", false, short: &["no"], cat: NONE, verbs: CRUD, sub: &[status("", "v1", "Node")], def: "io.k8s.api.core.v1.Node"),
    res!("", "v1", "events", "event", "Event", true, short: &["ev"], cat: NONE, verbs: CRUD, sub: &[], def: "io.k8s.api.core.v1.Event"),
    res!("", "v1", "configmaps", "configmap", "ConfigMap", true, short: &["cm"], cat: NONE, verbs: CRUD, sub: &[], def: "io.k8s.api.core.v1.ConfigMap"),
    res!("", "v1", "secrets", "secret", "Secret", true, short: NONE, cat: NONE, verbs: CRUD, sub: &[], def: "io.k8s.api.core.v1.Secret"),
    res!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, short: &["sa"], cat: NONE, verbs: CRUD,
        sub: &[action("token", "authentication.k8s.io", "v1", "TokenRequest", &["create"])], def: "io.k8s.api.core.v1.ServiceAccount"),
    res!("", "v1", "services", "service", "Service", true, short: &["svc"], cat: ALL, verbs: CRUD, sub: &[status("", "v1", "Service")], def: "io.k8s.api.core.v1.Service"),
    res!("", "v1", "endpoints", "endpoints", "Endpoints", true, short: &["ep"], cat: NONE, verbs: CRUD, sub: &[], def: "io.k8s.api.core.v1.Endpoints"),
    res!("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, short: &["pv"], cat: NONE, verbs: CRUD,
        sub: &[status("", "v1", "PersistentVolume")], def: "io.k8s.api.core.v1.PersistentVolume"),
    res!("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, short: &["pvc"], cat: NONE, verbs: CRUD,
        sub: &[status("", "v1", "PersistentVolumeClaim")], def: "io.k8s.api.core.v1.PersistentVolumeClaim"),
    // apps/v1
    res!("apps", "v1", "deployments", "deployment", "Deployment", true, short: &["deploy"], cat: ALL, verbs: CRUD,
        sub: &[status("apps", "v1", "Deployment"), scale()], def: "io.k8s.api.apps.v1.Deployment"),
    res!("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, short: &["rs"], cat: ALL, verbs: CRUD,
        sub: &[status("apps", "v1", "ReplicaSet"), scale()], def: "io.k8s.api.apps.v1.ReplicaSet"),
    res!("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, short: &["sts"], cat: ALL, verbs: CRUD,
        sub: &[status("apps", "v1", "StatefulSet"), scale()], def: "io.k8s.api.apps.v1.StatefulSet"),
    res!("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, short: &["ds"], cat: ALL, verbs: CRUD,
        sub: &[status("apps", "v1", "DaemonSet")], def: "io.k8s.api.apps.v1.DaemonSet"),
    res!("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true, short: NONE, cat: NONE, verbs: CRUD,
        sub: &[], def: "io.k8s.api.apps.v1.ControllerRevision"),
    // batch/v1
    res!("batch", "v1", "jobs", "job", "Job", true, short: NONE, cat: ALL, verbs: CRUD, sub: &[status("batch", "v1", "Job")], def: "io.k8s.api.batch.v1.Job"),
    res!("batch", "v1", "cronjobs", "cronjob", "CronJob", true, short: &["cj"], cat: ALL, verbs: CRUD, sub: &[status("batch", "v1", "CronJob")], def: "io.k8s.api.batch.v1.CronJob"),
    // coordination.k8s.io/v1
    res!("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, short: NONE, cat: NONE, verbs: CRUD, sub: &[], def: "io.k8s.api.coordination.v1.Lease"),
    // storage.k8s.io/v1
    res!("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false, short: &["sc"], cat: NONE, verbs: CRUD,
        sub: &[], def: "io.k8s.api.storage.v1.StorageClass"),
    // events.k8s.io/v1
    res!("events.k8s.io", "v1", "events", "event", "Event", true, short: &["ev"], cat: NONE, verbs: CRUD, sub: &[], def: "io.k8s.api.events.v1.Event"),
    // authentication / authorization: create-only reviews
    res!("authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", false, short: NONE, cat: NONE, verbs: CREATE_ONLY,
        sub: &[], def: "io.k8s.api.authentication.v1.SelfSubjectReview"),
    res!("authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", false, short: NONE, cat: NONE, verbs: CREATE_ONLY,
        sub: &[], def: "io.k8s.api.authentication.v1.TokenReview"),
    res!("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", false, short: NONE, cat: NONE,
        verbs: CREATE_ONLY, sub: &[], def: "io.k8s.api.authorization.v1.SelfSubjectAccessReview"),
    res!("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview", false, short: NONE, cat: NONE,
        verbs: CREATE_ONLY, sub: &[], def: "io.k8s.api.authorization.v1.SelfSubjectRulesReview"),
    res!("authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview", false, short: NONE, cat: NONE,
        verbs: CREATE_ONLY, sub: &[], def: "io.k8s.api.authorization.v1.SubjectAccessReview"),
];

/// The API groups served (besides the core group), each with its versions in preference order.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// The resources of one group-version.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by group and kind (any version).
pub fn find_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_exists_in_the_schema() {
        let s = crate::schema::schema();
        for r in RESOURCES {
            assert!(
                s.definition(r.definition).is_some(),
                "{} missing",
                r.definition
            );
        }
    }

    #[test]
    fn groups_are_listed_once() {
        let g = groups();
        assert!(g
            .iter()
            .any(|(name, v)| *name == "apps" && v == &vec!["v1"]));
        assert_eq!(g.iter().filter(|(name, _)| *name == "apps").count(), 1);
    }
}
