//! Turns a request path and method into what it addresses: discovery documents, or a resource
//! (group, version, namespace, name, subresource) and the verb, as the Kubernetes
//! `RequestInfo` resolver does.

use crate::resources::{self, Resource};
use http::Method;

/// What a path names.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `/api`, `/apis`, `/api/v1`, `/apis/<g>`, `/apis/<g>/<v>`.
    Discovery {
        group: Option<String>,
        version: Option<String>,
        core: bool,
    },
    /// A resource path.
    Resource(ResourceRequest),
    /// Anything else (health, version, openapi): handled by the router by path.
    Other,
}

/// A request on a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRequest {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    /// GET/POST on connect subresources (exec, attach, portforward).
    Connect,
}

/// Errors that map to 404/405.
#[derive(Debug, PartialEq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed,
}

const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Resolves `path` (without query) and `method`; `watch` is the `watch` query flag.
pub fn resolve(method: &Method, path: &str, watch: bool) -> Result<Target, RouteError> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => {
            return Ok(Target::Discovery {
                group: None,
                version: None,
                core: true,
            })
        }
        ["apis"] => {
            return Ok(Target::Discovery {
                group: None,
                version: None,
                core: false,
            })
        }
        ["api", v] => {
            return Ok(Target::Discovery {
                group: None,
                version: Some(v.to_string()),
                core: true,
            })
        }
        ["apis", g] => {
            return Ok(Target::Discovery {
                group: Some(g.to_string()),
                version: None,
                core: false,
            })
        }
        ["apis", g, v] => {
            return Ok(Target::Discovery {
                group: Some(g.to_string()),
                version: Some(v.to_string()),
                core: false,
            })
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(Target::Other),
    };
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, r, ..] if !NAMESPACE_SUBRESOURCES.contains(r) => {
            (Some(ns.to_string()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(RouteError::NotFound),
    };
    let resource = resources::find(group, version, plural).ok_or(RouteError::NotFound)?;
    if resource.namespaced != namespace.is_some() {
        // Cluster-wide list/watch of a namespaced resource is allowed (`/api/v1/pods`).
        if !(resource.namespaced && name.is_none()) {
            return Err(RouteError::NotFound);
        }
    }
    if let Some(s) = &sub {
        if resource.subresource(s).is_none() {
            return Err(RouteError::NotFound);
        }
    }
    let connect = matches!(sub.as_deref(), Some("exec" | "attach" | "portforward"));
    let verb = match (method.as_str(), name.is_some()) {
        _ if connect && (method == Method::GET || method == Method::POST) => Verb::Connect,
        ("GET", true) => Verb::Get,
        ("GET", false) if watch => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("POST", true) if sub.is_some() => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Err(RouteError::MethodNotAllowed),
    };
    let verb = if verb == Verb::Get && watch {
        Verb::Watch
    } else {
        verb
    };
    let allowed = match (&sub, verb) {
        (Some(s), v) => {
            let sr = resource.subresource(s).ok_or(RouteError::NotFound)?;
            let needed = match v {
                Verb::Get => "get",
                Verb::Create => "create",
                Verb::Update => "update",
                Verb::Patch => "patch",
                Verb::Connect => "get",
                _ => "none",
            };
            sr.verbs.contains(&needed) || (v == Verb::Connect && sr.verbs.contains(&"create"))
        }
        (None, v) => resource.has_verb(match v {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Connect => "get",
        }),
    };
    if !allowed {
        return Err(RouteError::MethodNotAllowed);
    }
    Ok(Target::Resource(ResourceRequest {
        resource,
        namespace,
        name,
        subresource: sub,
        verb,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(m: Method, p: &str, watch: bool) -> ResourceRequest {
        match resolve(&m, p, watch) {
            Ok(Target::Resource(r)) => r,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn resolves_kubernetes_paths() {
        let r = res(Method::GET, "/api/v1/namespaces/default/pods", false);
        assert_eq!(
            (r.resource.plural, r.namespace.as_deref(), r.verb),
            ("pods", Some("default"), Verb::List)
        );
        let r = res(Method::GET, "/api/v1/pods", true);
        assert_eq!((r.namespace, r.verb), (None, Verb::Watch));
        let r = res(Method::GET, "/api/v1/namespaces/kube-system", false);
        assert_eq!(
            (r.resource.plural, r.name.as_deref(), r.verb),
            ("namespaces", Some("kube-system"), Verb::Get)
        );
        let r = res(Method::PUT, "/api/v1/namespaces/x/status", false);
        assert_eq!(
            (r.resource.plural, r.subresource.as_deref()),
            ("namespaces", Some("status"))
        );
        let r = res(
            Method::PATCH,
            "/apis/apps/v1/namespaces/d/deployments/web/scale",
            false,
        );
        assert_eq!(
            (r.resource.plural, r.subresource.as_deref(), r.verb),
            ("deployments", Some("scale"), Verb::Patch)
        );
        let r = res(Method::POST, "/api/v1/namespaces/d/pods/p/binding", false);
        assert_eq!(r.verb, Verb::Create);
        let r = res(Method::GET, "/api/v1/namespaces/d/pods/p/exec", false);
        assert_eq!(r.verb, Verb::Connect);
        let r = res(Method::DELETE, "/api/v1/namespaces/d/configmaps", false);
        assert_eq!(r.verb, Verb::DeleteCollection);
        assert_eq!(
            resolve(&Method::GET, "/api/v1/namespaces/d/bogus", false),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            resolve(&Method::GET, "/api/v1/nodes/n/bogus", false),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            resolve(&Method::PUT, "/api/v1/namespaces/d/pods", false),
            Err(RouteError::MethodNotAllowed)
        );
    }
}
