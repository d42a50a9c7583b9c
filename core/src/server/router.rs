//! Dispatch of every HTTP request: public health/version endpoints, authentication, discovery,
//! OpenAPI, and resource requests to the read, write, watch and subresource handlers.

use super::auth::{is_public, User};
use super::body::{self, Body};
use super::query::Query;
use super::read;
use super::request::{self, ResourceRequest, RouteError, Target, Verb};
use super::status::ApiError;
use super::write::{DeleteOptions, FieldValidation, WriteOptions};
use super::{reviews, subresources, watch, ApiServer};
use crate::patch::PatchType;
use crate::table::IncludeObject;
use crate::{discovery, openapi};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};
use std::sync::Arc;

/// The kubelite version reported by `/version` (a v1.33 gitVersion, so kubectl's dispatcher
/// picks a 1.33 client).
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": concat!("v1.33.0+kubelite-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "kubelite",
        "gitTreeState": "clean",
        "buildDate": "2026-11-25T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("linux/{}", if cfg!(target_arch = "x86_64") { "amd64" } else if cfg!(target_arch = "aarch64") { "arm64" } else { std::env::consts::ARCH }),
    })
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn text(code: u16, s: &str) -> Response<Body> {
    let mut r = Response::new(body::full(Bytes::from(s.to_string())));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Handles one request.
pub async fn handle(server: Arc<ApiServer>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    // Read the whole body before answering anything (even errors), so the connection stays
    // usable for the client's next request.
    let (parts, incoming) = req.into_parts();
    let has_body = matches!(
        parts.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let raw = if has_body {
        read_body(incoming).await
    } else {
        Ok(Bytes::new())
    };
    let result = match raw {
        Ok(raw) => route(&server, parts, raw, &path, &query).await,
        Err(e) => Err(e),
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => body::error(&e),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    resp
}

async fn read_body(b: Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(b, body::MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(ApiError::too_large(format!(
            "the request body could not be read: {e}"
        ))),
    }
}

async fn route(
    server: &Arc<ApiServer>,
    mut req: http::request::Parts,
    raw: Bytes,
    path: &str,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let headers = req.headers.clone();
    if is_public(path) {
        return Ok(match path {
            "/version" | "/version/" => body::json(200, &version_info()),
            p if p.starts_with("/readyz") => {
                if server.is_ready() {
                    text(200, "ok")
                } else {
                    text(500, "[-]storage not ready\nreadyz check failed")
                }
            }
            _ => text(200, "ok"),
        });
    }
    let user = server
        .auth
        .authenticate(header(&headers, "authorization"))
        .ok_or_else(ApiError::unauthorized)?;
    let accept = header(&headers, "accept")
        .unwrap_or("application/json")
        .to_string();
    if let Some(rest) = path.strip_prefix("/openapi/") {
        return openapi_route(rest, &headers, &accept);
    }
    let method = req.method.clone();
    let target = match request::resolve(&method, path, q.flag("watch")) {
        Ok(t) => t,
        Err(RouteError::NotFound) => return Err(ApiError::not_found_path()),
        Err(RouteError::MethodNotAllowed) => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
    };
    match target {
        Target::Other => Err(ApiError::not_found_path()),
        Target::Discovery {
            group,
            version,
            core,
        } => discovery_route(server, core, group.as_deref(), version.as_deref(), &accept),
        Target::Resource(rr) if super::exec::serves(&rr) => {
            let upgrade = req.extensions.remove::<hyper::upgrade::OnUpgrade>();
            super::exec::connect(server, rr, q, &method, &headers, upgrade).await
        }
        Target::Resource(rr) if super::portforward::serves(&rr) => {
            let upgrade = req.extensions.remove::<hyper::upgrade::OnUpgrade>();
            super::portforward::connect(server, rr, &method, &headers, upgrade).await
        }
        Target::Resource(rr) => {
            let ct = header(&headers, "content-type").map(str::to_string);
            let user_agent = header(&headers, "user-agent").unwrap_or("").to_string();
            let body = raw;
            resource_route(
                server,
                rr,
                q,
                &accept,
                ct.as_deref(),
                &user_agent,
                body,
                &user,
            )
            .await
        }
    }
}

fn openapi_route(
    rest: &str,
    headers: &HeaderMap,
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    match rest {
        "v3" | "v3/" => Ok(body::json(200, &openapi::v3_root())),
        "v2" | "v2/" => {
            use crate::openapi_v2_pb::{self, V2Format};
            match openapi_v2_pb::negotiate(accept) {
                Some(V2Format::Protobuf) => {
                    let mut r =
                        Response::new(body::full(Bytes::from_static(openapi_v2_pb::v2_protobuf())));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static(openapi_v2_pb::MIME_PB_DOTTED),
                    );
                    r.headers_mut()
                        .insert(http::header::VARY, HeaderValue::from_static("Accept"));
                    Ok(r)
                }
                Some(V2Format::Json) => Ok(body::json_bytes(
                    200,
                    Bytes::from_static(openapi::v2_document()),
                )),
                None => Err(ApiError::not_acceptable(format!(
                    "only application/json and {} are served for /openapi/v2",
                    openapi_v2_pb::MIME_PB
                ))),
            }
        }
        p => {
            let gv = p.strip_prefix("v3/").ok_or_else(ApiError::not_found_path)?;
            let doc = openapi::v3_document(gv).ok_or_else(ApiError::not_found_path)?;
            let etag = format!("\"{}\"", doc.hash);
            if header(headers, "if-none-match") == Some(etag.as_str()) {
                let mut r = Response::new(body::full(Bytes::new()));
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                return Ok(r);
            }
            let mut r = body::json_bytes(200, doc.body.clone());
            if let Ok(v) = HeaderValue::from_str(&etag) {
                r.headers_mut().insert(http::header::ETAG, v);
            }
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            Ok(r)
        }
    }
}

fn discovery_route(
    server: &ApiServer,
    core: bool,
    group: Option<&str>,
    version: Option<&str>,
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    match (group, version) {
        (None, None) => {
            if let Some(v) = discovery::negotiate_aggregated(accept) {
                let mut r = body::json(200, &discovery::aggregated(core, v));
                if let Ok(ct) = HeaderValue::from_str(&discovery::aggregated_content_type(v)) {
                    r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
                }
                return Ok(r);
            }
            if core {
                Ok(body::json(200, &discovery::api_versions(&server.address)))
            } else {
                Ok(body::json(200, &discovery::api_group_list()))
            }
        }
        (None, Some(v)) if core => discovery::api_resource_list("", v)
            .map(|d| body::json(200, &d))
            .ok_or_else(ApiError::not_found_path),
        (Some(g), Some(v)) => discovery::api_resource_list(g, v)
            .map(|d| body::json(200, &d))
            .ok_or_else(ApiError::not_found_path),
        (Some(g), None) => {
            let list = discovery::api_group_list();
            list.get("groups")
                .and_then(Value::as_array)
                .and_then(|gs| {
                    gs.iter()
                        .find(|x| x.get("name").and_then(Value::as_str) == Some(g))
                })
                .map(|grp| {
                    let mut grp = grp.clone();
                    grp["kind"] = json!("APIGroup");
                    grp["apiVersion"] = json!("v1");
                    body::json(200, &grp)
                })
                .ok_or_else(ApiError::not_found_path)
        }
        _ => Err(ApiError::not_found_path()),
    }
}

fn write_options(
    q: &Query,
    user_agent: &str,
    default_manager_from_ua: bool,
) -> Result<WriteOptions, ApiError> {
    let manager = match q.get("fieldManager") {
        Some(m) if !m.is_empty() => {
            if m.len() > 128 {
                return Err(ApiError::bad_request(
                    "fieldManager: Too long: may not be more than 128 bytes",
                ));
            }
            m.to_string()
        }
        _ if default_manager_from_ua => {
            let base = user_agent.split('/').next().unwrap_or("").trim();
            if base.is_empty() {
                "unknown".to_string()
            } else {
                base.to_string()
            }
        }
        _ => String::new(),
    };
    Ok(WriteOptions {
        dry_run: q.dry_run()?,
        field_manager: manager,
        field_validation: FieldValidation::parse(q.get("fieldValidation"))?,
        force: q.flag("force"),
    })
}

fn written(code: u16, object: &Value, warnings: &[String]) -> Response<Body> {
    let mut r = body::json(code, object);
    body::add_warnings(&mut r, warnings);
    r
}

#[allow(clippy::too_many_arguments)]
async fn resource_route(
    server: &Arc<ApiServer>,
    rr: ResourceRequest,
    q: &Query,
    accept: &str,
    ct: Option<&str>,
    user_agent: &str,
    raw: Bytes,
    user: &User,
) -> Result<Response<Body>, ApiError> {
    let r = rr.resource;
    let ns = rr.namespace.as_deref();
    let name = rr.name.as_deref().unwrap_or("");
    let sub = rr.subresource.as_deref();
    let w = &server.writer;
    let objects = &w.objects;
    match (rr.verb, sub) {
        (Verb::Get, None) => read::get(objects, r, ns, name, q, accept).await,
        (Verb::List, None) => read::list(objects, r, ns, q, accept).await,
        (Verb::Watch, None) => {
            let table =
                read::wants_table(accept).then(|| IncludeObject::parse(q.get("includeObject")));
            let mut q = q.clone();
            if let Some(n) = rr.name.as_deref() {
                // Legacy single-object watch: narrow by name.
                let fs = match q.get("fieldSelector") {
                    Some(f) if !f.is_empty() => format!("{f},metadata.name={n}"),
                    _ => format!("metadata.name={n}"),
                };
                q = Query::parse(Some(&format!(
                    "fieldSelector={}&resourceVersion={}&timeoutSeconds={}&allowWatchBookmarks={}",
                    enc(&fs),
                    enc(q.get("resourceVersion").unwrap_or("")),
                    enc(q.get("timeoutSeconds").unwrap_or("")),
                    q.flag("allowWatchBookmarks")
                )));
            }
            watch::watch(objects, r, ns, &q, table).await
        }
        (Verb::Get, Some("status")) => read::get(objects, r, ns, name, q, accept).await,
        (Verb::Get, Some("scale")) => {
            let (code, v) =
                subresources::scale(w, r, ns, name, None, &write_options(q, user_agent, true)?)
                    .await?;
            Ok(body::json(code, &v))
        }
        (Verb::Update | Verb::Patch, Some("scale")) => {
            let pt = if rr.verb == Verb::Patch {
                Some(patch_type(ct)?)
            } else {
                None
            };
            let (v, _) = body::decode(ct, &raw, "Scale")?;
            let (code, v) = subresources::scale(
                w,
                r,
                ns,
                name,
                Some((pt, v)),
                &write_options(q, user_agent, true)?,
            )
            .await?;
            Ok(body::json(code, &v))
        }
        (Verb::Get, Some("log")) if r.plural == "pods" => {
            super::node_streams::pod_log(server, ns.unwrap_or("default"), name, q).await
        }
        (Verb::Get, Some("log")) | (Verb::Connect, _) => {
            Err(subresources::not_yet(sub.unwrap_or("")))
        }
        (Verb::Create, Some("binding")) => {
            let (v, _) = body::decode(ct, &raw, "Binding")?;
            let (code, v) = subresources::bind(w, ns.unwrap_or(""), name, &v).await?;
            Ok(body::json(code, &v))
        }
        (Verb::Create, Some("eviction")) => {
            let (v, _) = body::decode(ct, &raw, "Eviction")?;
            let (code, v) = subresources::evict(w, ns.unwrap_or(""), name, &v).await?;
            Ok(body::json(code, &v))
        }
        (Verb::Create, Some(other)) => Err(ApiError::not_implemented(format!(
            "{}/{} is not implemented yet",
            r.plural, other
        ))),
        (Verb::Create, None) => {
            let (v, raw_json) = body::decode(ct, &raw, r.kind)?;
            if !r.is_stored() {
                if r.kind == "Binding" {
                    let pod = v
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let (code, v) = subresources::bind(w, ns.unwrap_or(""), &pod, &v).await?;
                    return Ok(body::json(code, &v));
                }
                let (v, _) = super::write::prepare_input(
                    r,
                    v,
                    raw_json.as_deref(),
                    FieldValidation::parse(q.get("fieldValidation"))?,
                )?;
                let auth = &server.auth;
                let answered = reviews::answer(r.kind, v, user, |t| auth.token_user(t));
                return Ok(body::json(201, &answered));
            }
            let opts = write_options(q, user_agent, true)?;
            let out = w.create(r, ns, v, raw_json.as_deref(), &opts).await?;
            if r.kind == "Namespace" && !opts.dry_run {
                let name = super::objects::name_of(&out.object).to_string();
                server.ensure_namespace_defaults(&name).await?;
            }
            Ok(written(out.code, &out.object, &out.warnings))
        }
        (Verb::Update, None | Some("status")) => {
            let (v, raw_json) = body::decode(ct, &raw, r.kind)?;
            let opts = write_options(q, user_agent, true)?;
            let out = w
                .update(r, ns, name, sub, v, raw_json.as_deref(), &opts)
                .await?;
            Ok(written(out.code, &out.object, &out.warnings))
        }
        (Verb::Patch, None | Some("status")) => {
            let pt = patch_type(ct)?;
            let (v, raw_json) = body::decode(ct, &raw, r.kind)?;
            let opts = write_options(q, user_agent, pt != PatchType::Apply)?;
            let out = w
                .patch(r, ns, name, sub, pt, v, raw_json.as_deref(), &opts)
                .await?;
            Ok(written(out.code, &out.object, &out.warnings))
        }
        (Verb::Delete, None) => {
            let opts = DeleteOptions::parse(ct, &raw, q)?;
            let (code, v) = w.delete(r, ns, name, &opts).await?;
            if r.kind == "Namespace" && !opts.dry_run {
                server.spawn_namespace_cleanup(name.to_string());
            }
            Ok(body::json(code, &v))
        }
        (Verb::DeleteCollection, None) => {
            let opts = DeleteOptions::parse(ct, &raw, q)?;
            let sel = read::Selectors::parse(r, q)?;
            let listed = read::list_items(objects, r, ns, &Query::parse(None), &sel).await?;
            let mut items = Vec::new();
            for kv in &listed.items {
                let Ok(s) = super::objects::decode(kv) else {
                    continue;
                };
                let n = super::objects::name_of(&s.value).to_string();
                let obj_ns = super::objects::namespace_of(&s.value).map(str::to_string);
                match w.delete(r, obj_ns.as_deref(), &n, &opts).await {
                    Ok(_) => items.push(s.value),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let list = json!({"kind": r.list_kind(), "apiVersion": r.api_version(), "metadata": {"resourceVersion": objects.backend.current_revision().to_string()}, "items": items});
            Ok(body::json(200, &list))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn patch_type(ct: Option<&str>) -> Result<PatchType, ApiError> {
    let mt = body::media_type(ct);
    PatchType::from_content_type(&mt).ok_or_else(|| ApiError::unsupported_media_type(&mt))
}
