//! `pods/exec` and `pods/attach`: the apiserver's part (decode and check `PodExecOptions` /
//! `PodAttachOptions`, find the pod and the container, as `streamLocation` in
//! `pkg/registry/core/pod/strategy.go` does), the WebSocket upgrade, and the
//! `v5.channel.k8s.io` stream protocol kubectl 1.30+ speaks (`v4.channel.k8s.io` too: the same
//! without the close signal). The kubelet's part (run the process in the container) is the
//! node agent's, reached through [`NodeExec`].
//!
//! The protocol: every message is a binary frame whose first byte is a channel. 0 is stdin
//! (client → server), 1 stdout, 2 stderr, 3 the error channel (one `metav1.Status` at the end),
//! 4 terminal resizes (`{"Width":W,"Height":H}`), and, in v5, 255 the close signal (`[255, 0]`:
//! the client's stdin is at its end). After the status the server sends a close frame.
//!
//! As the real apiserver (which translates WebSocket to the kubelet's SPDY), the checks the
//! apiserver makes answer the upgrade request with an HTTP error, and what the kubelet reports
//! (container not running, the process could not start) comes after the `101` as an
//! `InternalError` status on the error channel, so kubectl prints
//! `error: Internal error occurred: …`.
//!
//! The same sessions are served over SPDY/3.1 (kubectl 1.27–1.29, and later ones falling back
//! or with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`): see [`super::exec_spdy`]. Both transports
//! run the one [`pump`] through the [`Transport`] trait.

use super::body::{self, Body};
use super::node_streams::names;
use super::query::Query;
use super::request::{ResourceRequest, Verb};
use super::status::ApiError;
use super::ApiServer;
use crate::resources;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The stream protocols served, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// How long to wait for the client's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the node agent does for exec and attach. Implemented by the agent, registered in
/// [`ApiServer::exec`].
pub trait NodeExec: Send + Sync {
    /// Starts `command` in `container` (validated to exist in `pod`, the stored object).
    /// An error is the kubelet's plain-text answer (`container not found ("c")`).
    fn exec(
        &self,
        pod: Value,
        container: String,
        command: Vec<String>,
        streams: Streams,
    ) -> BoxFuture<'static, Result<ExecSession, String>>;

    /// Attaches to the main process of `container`.
    fn attach(
        &self,
        pod: Value,
        container: String,
        streams: Streams,
    ) -> BoxFuture<'static, Result<ExecSession, String>>;
}

/// Which streams the client asked for (`stdin`, `stdout`, `stderr`, `tty`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A terminal size from the resize channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// A running exec or attach, as the agent hands it over.
pub struct ExecSession {
    /// The process's input (when stdin was asked for). Dropping it closes the process's stdin.
    pub stdin: Option<mpsc::Sender<Vec<u8>>>,
    /// Terminal size changes (with a tty, when the agent can apply them).
    pub resize: Option<mpsc::UnboundedSender<TerminalSize>>,
    /// The process's output, then its outcome as the last event. Dropping the receiver tells
    /// the agent the client is gone: as containerd, it closes the process's stdin (a tty is
    /// hung up) and lets the process run to its end, discarding its output.
    pub events: mpsc::Receiver<ExecEvent>,
}

/// What comes out of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process exited with this code (the last event).
    Exited(i32),
    /// The process could not be run (the last event); the kubelet's words.
    Failed(String),
}

/// Whether the router sends this request here.
pub fn serves(rr: &ResourceRequest) -> bool {
    rr.verb == Verb::Connect
        && rr.resource.plural == "pods"
        && rr.resource.group.is_empty()
        && matches!(rr.subresource.as_deref(), Some("exec" | "attach"))
}

/// A bool query parameter as the apiserver converts it: absent is false; `0`, `f` and `false`
/// (any case) are false; anything else, the empty string included, is true.
fn flag(q: &Query, key: &str) -> bool {
    match q.get(key) {
        None => false,
        Some(v) => !(v == "0" || v.eq_ignore_ascii_case("f") || v.eq_ignore_ascii_case("false")),
    }
}

/// `streamLocation`'s choice of container: the requested one must exist (init, regular or
/// ephemeral); without one, a pod with exactly one container uses it.
pub fn choose_container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let regular = names(pod, "containers");
    let init = names(pod, "initContainers");
    match requested {
        Some(c) => {
            let known = regular.iter().chain(&init).any(|n| n == c)
                || names(pod, "ephemeralContainers").iter().any(|n| n == c);
            if known {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match regular.len() {
            1 => Ok(regular[0].clone()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    regular.join(" ")
                );
                if !init.is_empty() {
                    msg.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(msg))
            }
        },
    }
}

/// The first protocol of ours the client offers (`Sec-WebSocket-Protocol`, comma separated,
/// possibly over several headers).
pub fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let offered: Vec<String> = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    PROTOCOLS
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
}

fn is_websocket(headers: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, "websocket")
}

/// The error channel's payload for an outcome: kubelet's `metav1.Status` (no kind: the
/// observed bytes are `{"metadata":{},"status":"Success"}`).
pub fn outcome_status(command: &[String], outcome: &ExecEvent) -> Value {
    match outcome {
        ExecEvent::Exited(0) => json!({"metadata": {}, "status": "Success"}),
        ExecEvent::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        ExecEvent::Failed(e) => {
            internal_status(&format!("error executing command in container: {e}"))
        }
        ExecEvent::Stdout(_) | ExecEvent::Stderr(_) => internal_status("no outcome"),
    }
}

fn internal_status(message: &str) -> Value {
    let e = ApiError::internal(message);
    json!({
        "metadata": {},
        "status": "Failure",
        "message": e.message,
        "reason": e.reason,
        "details": {"causes": [{"message": message}]},
        "code": e.code,
    })
}

fn stream_of(frame: &[u8]) -> Option<(u8, &[u8])> {
    frame.split_first().map(|(c, rest)| (*c, rest))
}

fn parse_size(payload: &[u8]) -> Option<TerminalSize> {
    size_from(&serde_json::from_slice(payload).ok()?)
}

/// A terminal size from its JSON (`{"Width":W,"Height":H}`, client-go's `TerminalSize`).
pub(super) fn size_from(v: &Value) -> Option<TerminalSize> {
    let dim = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .map(|n| n.min(u16::MAX as u64) as u16)
    };
    Some(TerminalSize {
        width: dim("Width")?,
        height: dim("Height")?,
    })
}

/// What was asked for: the pod (as stored), the container, the command (exec), the streams.
pub(super) struct Target {
    pub pod: Value,
    pub container: String,
    pub command: Vec<String>,
    pub streams: Streams,
    pub attach: bool,
}

impl Target {
    /// Asks the node agent to start the session.
    pub(super) fn start(
        &self,
        node: &Arc<dyn NodeExec>,
    ) -> BoxFuture<'static, Result<ExecSession, String>> {
        if self.attach {
            node.attach(self.pod.clone(), self.container.clone(), self.streams)
        } else {
            node.exec(
                self.pod.clone(),
                self.container.clone(),
                self.command.clone(),
                self.streams,
            )
        }
    }
}

/// `GET|POST /api/v1/namespaces/<ns>/pods/<name>/exec|attach`.
pub async fn connect(
    server: &Arc<ApiServer>,
    rr: ResourceRequest,
    q: &Query,
    method: &Method,
    headers: &HeaderMap,
    upgrade: Option<OnUpgrade>,
) -> Result<Response<Body>, ApiError> {
    let ns = rr.namespace.as_deref().unwrap_or("default");
    let name = rr.name.as_deref().unwrap_or("");
    let attach = rr.subresource.as_deref() == Some("attach");
    let streams = Streams {
        stdin: flag(q, "stdin"),
        stdout: flag(q, "stdout"),
        stderr: flag(q, "stderr"),
        tty: flag(q, "tty"),
    };
    let command: Vec<String> = q.all("command").into_iter().map(str::to_string).collect();
    let pods =
        resources::find("", "v1", "pods").ok_or_else(|| ApiError::internal("no pods resource"))?;
    let pod = server
        .writer
        .objects
        .must_get(pods, Some(ns), name)
        .await?
        .value;
    let container = choose_container(&pod, q.get("container").filter(|c| !c.is_empty()))?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    if !(streams.stdin || streams.stdout || streams.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if !attach && command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let target = Target {
        pod,
        container,
        command,
        streams,
        attach,
    };
    let node = || {
        server.exec.get().cloned().ok_or_else(|| {
            ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "pod exec and attach are served by the node agent, which does not run in this server (node {node_name:?})"
                ),
            )
        })
    };
    if !(is_websocket(headers) && *method == Method::GET) {
        if !super::spdy_session::is_upgrade(headers) {
            return Err(ApiError::bad_request("Upgrade request required"));
        }
        return super::exec_spdy::connect(target, headers, upgrade, node).await;
    }
    let protocol = negotiate(headers).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unable to upgrade: unable to negotiate protocol: server supports {PROTOCOLS:?}"
        ))
    })?;
    let key = headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .filter(|_| {
            headers
                .get(http::header::SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v == "13")
        })
        .ok_or_else(|| {
            ApiError::bad_request("unable to upgrade: missing or bad Sec-WebSocket-Key/Version")
        })?;
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = upgrade
        .ok_or_else(|| ApiError::bad_request("unable to upgrade: not an HTTP/1.1 upgrade"))?;
    let node = node()?;

    let v5 = protocol == PROTOCOLS[0];
    tokio::spawn(async move {
        let io = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "exec upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let session = target.start(&node).await;
        run(ws, session, &target.command, v5).await;
    });

    let mut r = Response::new(body::full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(r)
}

/// What the client sent, as the pump sees it (whatever the transport).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Input {
    Stdin(Vec<u8>),
    /// The client's stdin is at its end.
    StdinEnd,
    Resize(TerminalSize),
    /// The client went away.
    Gone,
}

/// Where output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    Stdout,
    Stderr,
}

/// One way of carrying a session to the client: WebSocket channels ([`run`]) or SPDY
/// streams ([`super::exec_spdy`]).
pub(super) trait Transport: Send {
    /// The next thing the client sent. Cancel-safe: nothing is lost if the future is dropped.
    fn input(&mut self) -> impl Future<Output = Input> + Send;
    /// Sends output to the client; false when the client is gone.
    fn output(&mut self, to: Output, data: Vec<u8>) -> impl Future<Output = bool> + Send;
    /// Sends the status (None: the client is gone) and ends the connection.
    fn finish(self, status: Option<Value>) -> impl Future<Output = ()> + Send;
}

/// Runs one session over a transport until the outcome is sent (or the client left);
/// `session` is what the agent answered, `command` is for the status message.
pub(super) async fn serve<T: Transport>(
    mut transport: T,
    session: Result<ExecSession, String>,
    command: &[String],
) {
    let status = match session {
        Err(e) => Some(internal_status(&format!(
            "unable to upgrade connection: {e}"
        ))),
        Ok(session) => pump(&mut transport, session, command).await,
    };
    transport.finish(status).await;
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// The channel protocol over a WebSocket.
struct WsTransport<S> {
    tx: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    rx: futures_util::stream::SplitStream<WebSocketStream<S>>,
    v5: bool,
}

impl<S> Transport for WsTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn input(&mut self) -> Input {
        loop {
            match self.rx.next().await {
                Some(Ok(Message::Binary(data))) => match stream_of(&data) {
                    Some((STDIN, payload)) if !payload.is_empty() => {
                        return Input::Stdin(payload.to_vec())
                    }
                    Some((RESIZE, payload)) => {
                        if let Some(size) = parse_size(payload) {
                            return Input::Resize(size);
                        }
                    }
                    Some((CLOSE, [STDIN, ..])) if self.v5 => return Input::StdinEnd,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Input::Gone,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn output(&mut self, to: Output, data: Vec<u8>) -> bool {
        let channel = match to {
            Output::Stdout => STDOUT,
            Output::Stderr => STDERR,
        };
        self.tx.send(frame(channel, &data)).await.is_ok()
    }

    async fn finish(mut self, status: Option<Value>) {
        let Some(status) = status else {
            // The client is gone.
            return;
        };
        let payload = serde_json::to_vec(&status).unwrap_or_default();
        if self.tx.send(frame(ERROR, &payload)).await.is_err() {
            return;
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        if self.tx.send(Message::Close(Some(close))).await.is_err() {
            return;
        }
        // The client answers with its own close frame; what else it sends now is dropped.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(m)) = self.rx.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
    }
}

/// Pumps one session over an upgraded WebSocket connection until the outcome is sent (or the
/// client left); `session` is what the agent answered. `command` is for the status message.
pub async fn run<S>(
    ws: WebSocketStream<S>,
    session: Result<ExecSession, String>,
    command: &[String],
    v5: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (tx, rx) = ws.split();
    serve(WsTransport { tx, rx, v5 }, session, command).await;
}

/// Moves stdin, resizes and output until the outcome; returns the status to send, or None if
/// the client went away first (dropping the session closes the process's stdin; it runs on).
async fn pump<T: Transport>(
    transport: &mut T,
    session: ExecSession,
    command: &[String],
) -> Option<Value> {
    let ExecSession {
        mut stdin,
        resize,
        mut events,
    } = session;
    // A stdin chunk waiting for room in the agent's queue: the client is not read meanwhile,
    // but output keeps flowing (no deadlock with a process that writes before it reads).
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let sender = stdin.clone().filter(|_| pending.is_some());
        let sending = sender.is_some();
        tokio::select! {
            permit = async move { sender.expect("guarded").reserve_owned().await }, if sending => {
                match permit {
                    Ok(p) => {
                        p.send(pending.take().unwrap_or_default());
                    }
                    Err(_) => {
                        // The process no longer reads its input.
                        pending = None;
                        stdin = None;
                    }
                }
            }
            input = transport.input(), if pending.is_none() => {
                match input {
                    Input::Stdin(data) => {
                        if stdin.is_some() && !data.is_empty() {
                            pending = Some(data);
                        }
                    }
                    Input::StdinEnd => stdin = None,
                    Input::Resize(size) => {
                        if let Some(r) = &resize {
                            let _ = r.send(size);
                        }
                    }
                    Input::Gone => return None,
                }
            }
            ev = events.recv() => {
                match ev {
                    Some(ExecEvent::Stdout(b)) => {
                        if !transport.output(Output::Stdout, b).await {
                            return None;
                        }
                    }
                    Some(ExecEvent::Stderr(b)) => {
                        if !transport.output(Output::Stderr, b).await {
                            return None;
                        }
                    }
                    Some(outcome) => return Some(outcome_status(command, &outcome)),
                    None => {
                        return Some(outcome_status(
                            command,
                            &ExecEvent::Failed("the session ended without an exit status".into()),
                        ))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_v5_then_v4() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v4.channel.k8s.io, v5.channel.k8s.io"),
        );
        assert_eq!(negotiate(&h), Some("v5.channel.k8s.io"));
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("base64.channel.k8s.io,v4.channel.k8s.io"),
        );
        assert_eq!(negotiate(&h), Some("v4.channel.k8s.io"));
        h.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("channel.k8s.io"),
        );
        assert_eq!(negotiate(&h), None);
    }

    #[test]
    fn container_choice_like_stream_location() {
        let pod = json!({"metadata": {"name": "x"}, "spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(choose_container(&pod, Some("b")).unwrap(), "b");
        assert_eq!(choose_container(&pod, Some("i")).unwrap(), "i");
        assert_eq!(
            choose_container(&pod, None).unwrap_err().message,
            "a container name must be specified for pod x, choose one of: [a b] or one of the init containers: [i]"
        );
        let e = choose_container(&pod, Some("c")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container c is not valid for pod x")
        );
    }

    #[test]
    fn statuses_as_the_kubelet_writes_them() {
        let cmd = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        assert_eq!(
            outcome_status(&cmd, &ExecEvent::Exited(0)).to_string(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let s = outcome_status(&cmd, &ExecEvent::Exited(3));
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"],
            json!([{"reason": "ExitCode", "message": "3"}])
        );
        let s = outcome_status(&cmd, &ExecEvent::Failed("no such file".into()));
        assert_eq!(
            s["message"],
            "Internal error occurred: error executing command in container: no such file"
        );
        assert_eq!(
            parse_size(br#"{"Width":120,"Height":40}"#),
            Some(TerminalSize {
                width: 120,
                height: 40
            })
        );
    }

    /// A fake agent session driven through a real WebSocket pair: stdin is echoed to stdout
    /// until the close signal, then the process "exits" 3.
    #[tokio::test]
    async fn v5_session_end_to_end() {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let (stdin_tx, mut stdin_rx) = mpsc::channel::<Vec<u8>>(4);
        let (ev_tx, ev_rx) = mpsc::channel(4);
        let (resize_tx, mut resize_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _ = ev_tx.send(ExecEvent::Stderr(b"ready\n".to_vec())).await;
            while let Some(b) = stdin_rx.recv().await {
                let _ = ev_tx.send(ExecEvent::Stdout(b)).await;
            }
            let _ = ev_tx.send(ExecEvent::Exited(3)).await;
        });
        let session = ExecSession {
            stdin: Some(stdin_tx),
            resize: Some(resize_tx),
            events: ev_rx,
        };
        let server = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            run(ws, Ok(session), &["cat".to_string()], true).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        client
            .send(frame(RESIZE, br#"{"Width":80,"Height":24}"#))
            .await
            .unwrap();
        client.send(frame(STDIN, b"hello ")).await.unwrap();
        client.send(frame(STDIN, b"world")).await.unwrap();
        client.send(frame(CLOSE, &[STDIN])).await.unwrap();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut status = None;
        while let Some(Ok(m)) = client.next().await {
            let Message::Binary(b) = m else { continue };
            match stream_of(&b) {
                Some((STDOUT, p)) => out.extend_from_slice(p),
                Some((STDERR, p)) => err.extend_from_slice(p),
                Some((ERROR, p)) => status = Some(serde_json::from_slice::<Value>(p).unwrap()),
                other => panic!("unexpected frame {other:?}"),
            }
        }
        server.await.unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(err, b"ready\n");
        assert_eq!(status.unwrap()["details"]["causes"][0]["message"], "3");
        assert_eq!(
            resize_rx.recv().await,
            Some(TerminalSize {
                width: 80,
                height: 24
            })
        );
    }
}
