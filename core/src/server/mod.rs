//! The HTTPS API server: configuration, TLS listener (HTTP/1.1 and HTTP/2 through rustls), the
//! shared server state, start-up bootstrap (default namespaces) and the namespace cleanup that
//! runs when a namespace is deleted.

pub mod auth;
pub mod body;
pub mod certs;
pub mod client;
pub mod exec;
pub mod exec_spdy;
pub mod gc;
pub mod node_streams;
pub mod objects;
pub mod portforward;
pub mod query;
pub mod read;
pub mod request;
pub mod reviews;
pub mod router;
pub mod spdy;
pub mod spdy_session;
pub mod status;
pub mod subresources;
pub mod typed;
pub mod watch;
pub mod write;
pub mod ws_tunnel;

use crate::resources::{self, RESOURCES};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kubelite_storage::Backend;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("credentials: {0}")]
    Certs(#[from] certs::CertError),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub bind_address: std::net::IpAddr,
    pub https_port: u16,
    pub tls_sans: Vec<String>,
    /// Extra place to write the admin kubeconfig (besides `<data-dir>/kubeconfig.yaml`).
    pub write_kubeconfig: Option<PathBuf>,
    /// The in-process controllers (scheduler, workload controllers, node lifecycle).
    pub controllers: crate::controllers::ControllerConfig,
}

/// Shared state of the running server.
pub struct ApiServer {
    pub writer: write::Writer,
    pub auth: auth::Authenticator,
    /// `host:port` clients reach the server at (for discovery's serverAddressByClientCIDRs).
    pub address: String,
    /// The cluster CA, published in every namespace as `kube-root-ca.crt`.
    pub ca_pem: String,
    /// The node agent of this process, once it registered (pod logs and other streams).
    pub node: std::sync::OnceLock<Arc<dyn node_streams::NodeStreams>>,
    /// The node agent's exec and attach, once it registered.
    pub exec: std::sync::OnceLock<Arc<dyn exec::NodeExec>>,
    ready: AtomicBool,
}

impl ApiServer {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// What the service-account and root-CA controllers put in every namespace: the `default`
    /// ServiceAccount and the `kube-root-ca.crt` ConfigMap. Existing objects are left alone.
    pub async fn ensure_namespace_defaults(&self, ns: &str) -> Result<(), status::ApiError> {
        let opts = write::WriteOptions {
            dry_run: false,
            field_manager: "kubelite".into(),
            field_validation: write::FieldValidation::Strict,
            force: false,
        };
        let objs = [
            (
                "serviceaccounts",
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
            ),
            (
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt",
                    "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                    "data": {"ca.crt": self.ca_pem}}),
            ),
        ];
        for (plural, obj) in objs {
            let r = resources::find("", "v1", plural)
                .ok_or_else(|| status::ApiError::internal("missing resource"))?;
            match self.writer.create(r, Some(ns), obj, None, &opts).await {
                Ok(_) => {}
                Err(e) if e.code == 409 || e.code == 403 || e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The namespace controller's job, done in-process: delete everything in a terminating
    /// namespace, then the namespace itself.
    pub fn spawn_namespace_cleanup(self: &Arc<Self>, ns: String) {
        let server = self.clone();
        tokio::spawn(async move {
            if let Err(e) = server.cleanup_namespace(&ns).await {
                tracing::warn!(namespace = %ns, error = %e, "namespace cleanup failed");
            }
        });
    }

    async fn cleanup_namespace(&self, ns: &str) -> Result<(), status::ApiError> {
        let w = &self.writer;
        let force = write::DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        for r in RESOURCES.iter().filter(|r| r.namespaced && r.is_stored()) {
            let page = w
                .objects
                .backend
                .list(&objects::prefix(r, Some(ns)), None, 0, None)
                .await?;
            for kv in page.kvs {
                let s = objects::decode(&kv)?;
                let name = objects::name_of(&s.value).to_string();
                // Finalizers on contents are left to their owners; everything else goes now.
                let mut v = s.value.clone();
                if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    m.remove("finalizers");
                }
                match w.objects.update(r, v, s.revision).await {
                    Ok(_) | Err(status::ApiError { code: 404, .. }) => {}
                    Err(e) => tracing::debug!(error = %e, "clearing finalizers"),
                }
                match w.delete(r, Some(ns), &name, &force).await {
                    Ok(_) | Err(status::ApiError { code: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let nsr = resources::find("", "v1", "namespaces")
            .ok_or_else(|| status::ApiError::internal("no namespaces"))?;
        if let Some(s) = w.objects.get(nsr, None, ns).await? {
            w.objects.delete(nsr, s.value, Some(s.revision)).await?;
        }
        Ok(())
    }
}

/// Creates the namespaces every cluster has, and resumes cleanup of terminating ones.
async fn bootstrap(server: &Arc<ApiServer>) -> Result<(), ServerError> {
    let nsr = resources::find("", "v1", "namespaces")
        .ok_or_else(|| ServerError::Bootstrap("no namespaces resource".into()))?;
    let opts = write::WriteOptions {
        dry_run: false,
        field_manager: "kubelite".into(),
        field_validation: write::FieldValidation::Strict,
        force: false,
    };
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let exists = server
            .writer
            .objects
            .get(nsr, None, name)
            .await
            .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
        if exists.is_none() {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            match server.writer.create(nsr, None, obj, None, &opts).await {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(ServerError::Bootstrap(e.to_string())),
            }
        }
    }
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        server
            .ensure_namespace_defaults(name)
            .await
            .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    }
    let page = server
        .writer
        .objects
        .backend
        .list(&objects::prefix(nsr, None), None, 0, None)
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    for kv in page.kvs {
        if let Ok(s) = objects::decode(&kv) {
            if s.value.pointer("/metadata/deletionTimestamp").is_some() {
                server.spawn_namespace_cleanup(objects::name_of(&s.value).to_string());
            }
        }
    }
    Ok(())
}

fn tls_config(creds: &certs::Credentials) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut creds.serving_cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut creds.serving_key_pem.as_bytes())
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .ok_or_else(|| ServerError::Tls("no private key".into()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServerError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A started server.
pub struct RunningServer {
    pub state: Arc<ApiServer>,
    pub local_addr: SocketAddr,
    pub kubeconfig_path: PathBuf,
}

/// Creates credentials, writes the kubeconfig, binds the port, bootstraps and serves in the
/// background. Returns once the server answers `/readyz`.
pub async fn start(
    cfg: ServerConfig,
    backend: Arc<dyn Backend>,
) -> Result<RunningServer, ServerError> {
    let creds = certs::ensure(&cfg.data_dir, &cfg.tls_sans)?;
    let addr = SocketAddr::new(cfg.bind_address, cfg.https_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen { addr, source })?;
    let host = if cfg.bind_address.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        cfg.bind_address.to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let url = format!("https://{host}:{}", local_addr.port());
    let kubeconfig = certs::kubeconfig(&creds, &url);
    let kubeconfig_path = cfg.data_dir.join("kubeconfig.yaml");
    certs::write_kubeconfig(&kubeconfig_path, &kubeconfig)?;
    if let Some(p) = &cfg.write_kubeconfig {
        certs::write_kubeconfig(p, &kubeconfig)?;
    }
    let tls = tokio_rustls::TlsAcceptor::from(tls_config(&creds)?);
    let state = Arc::new(ApiServer {
        writer: write::Writer {
            objects: objects::Objects::new(backend),
        },
        auth: auth::Authenticator::new(creds.admin_token.clone()),
        address: format!("{host}:{}", local_addr.port()),
        ca_pem: creds.ca_pem.clone(),
        node: std::sync::OnceLock::new(),
        exec: std::sync::OnceLock::new(),
        ready: AtomicBool::new(false),
    });
    let serving = state.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            let state = serving.clone();
            tokio::spawn(async move {
                let stream = match tls.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(router::handle(state, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
    });
    bootstrap(&state).await?;
    let mut controllers = cfg.controllers.clone();
    controllers
        .local_storage_path
        .get_or_insert_with(|| cfg.data_dir.join("storage"));
    if controllers.runs(crate::controllers::volumes::PROVISIONER_CONTROLLER) {
        crate::controllers::volumes::bootstrap(&state)
            .await
            .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    }
    gc::spawn(state.clone());
    crate::controllers::spawn(state.clone(), controllers);
    state.ready.store(true, Ordering::Release);
    Ok(RunningServer {
        state,
        local_addr,
        kubeconfig_path,
    })
}
