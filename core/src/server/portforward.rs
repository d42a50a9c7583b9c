//! `pods/portforward`: SPDY/3.1 streams (see [`super::spdy_session`]) carried either way
//! kubectl does it:
//! - kubectl 1.31+ opens a WebSocket (`GET`, no query string, subprotocol
//!   `SPDY/3.1+portforward.k8s.io`) whose binary messages are only a byte tunnel for the SPDY
//!   connection ([`WsTunnel`]);
//! - kubectl 1.27–1.30 (and later ones with `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`) upgrade the
//!   HTTP/1.1 connection itself: `POST` with `Upgrade: SPDY/3.1` and
//!   `X-Stream-Protocol-Version: portforward.k8s.io`, answered `101` with the same headers.
//!
//! Per local connection kubectl opens two streams with headers `streamType: error|data`,
//! `port: <n>`, `requestID: <k>`; the server connects to the pod's port (`status.podIP`, or
//! 127.0.0.1 for hostNetwork pods, reached from the host through the bridge), copies bytes
//! both ways on the data stream, writes a failure as text on the error stream, and ends both
//! streams with FIN.

use super::body::Body;
use super::request::{ResourceRequest, Verb};
use super::spdy::{self, HeaderBlock};
use super::spdy_session::{self, Inbound, Sender, Stream};
use super::status::ApiError;
use super::ws_tunnel::WsTunnel;
use super::ApiServer;
use crate::resources;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// The WebSocket subprotocol kubectl offers for port-forward.
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol of a plain SPDY upgrade.
pub const SPDY_PROTOCOLS: [&str; 1] = ["portforward.k8s.io"];

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the router sends this request here.
pub fn serves(rr: &ResourceRequest) -> bool {
    rr.verb == Verb::Connect
        && rr.resource.plural == "pods"
        && rr.resource.group.is_empty()
        && rr.subresource.as_deref() == Some("portforward")
}

fn offered(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// `GET|POST /api/v1/namespaces/<ns>/pods/<name>/portforward`.
pub async fn connect(
    server: &Arc<ApiServer>,
    rr: ResourceRequest,
    method: &Method,
    headers: &HeaderMap,
    upgrade: Option<OnUpgrade>,
) -> Result<Response<Body>, ApiError> {
    let ns = rr.namespace.as_deref().unwrap_or("default");
    let name = rr.name.as_deref().unwrap_or("").to_string();
    let pods =
        resources::find("", "v1", "pods").ok_or_else(|| ApiError::internal("no pods resource"))?;
    let pod = server
        .writer
        .objects
        .must_get(pods, Some(ns), &name)
        .await?
        .value;
    if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running") {
        return Err(ApiError::bad_request(format!(
            "unable to forward port because pod is not running. Current status={}",
            pod.pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Unknown")
        )));
    }
    let ip: IpAddr = if pod.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true) {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        pod.pointer("/status/podIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::bad_request(format!("pod {name} does not have a pod IP")))?
    };
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let pod_desc = format!("{name}_{ns}, uid {uid}");
    let websocket = offered(headers, http::header::CONNECTION, "upgrade")
        && offered(headers, http::header::UPGRADE, "websocket")
        && *method == Method::GET;
    if !websocket {
        if !spdy_session::is_upgrade(headers) {
            return Err(ApiError::bad_request("Upgrade request required"));
        }
        let protocol = spdy_session::negotiate(headers, &SPDY_PROTOCOLS)?;
        let upgrade = upgrade
            .ok_or_else(|| ApiError::bad_request("unable to upgrade: not an HTTP/1.1 upgrade"))?;
        tokio::spawn(async move {
            match upgrade.await {
                Ok(u) => run(TokioIo::new(u), ip, pod_desc).await,
                Err(e) => tracing::debug!(error = %e, "portforward upgrade failed"),
            }
        });
        return Ok(spdy_session::switching_protocols(protocol));
    }
    if !offered(headers, http::header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL) {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade: unable to negotiate protocol: server supports [{PROTOCOL}]"
        )));
    }
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
    tokio::spawn(async move {
        let io = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "portforward upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        run(WsTunnel::new(ws), ip, pod_desc).await;
    });

    let mut r = Response::new(super::body::full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(PROTOCOL),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(r)
}

/// A stream waiting for its partner (same `requestID`).
#[derive(Default)]
struct Pending {
    error: Option<Stream>,
    data: Option<Stream>,
}

/// Which new streams are taken: `streamType` error or data, and a valid `port` (the kubelet's
/// `httpStreamReceived` resets the others).
fn accept(headers: &HeaderBlock) -> bool {
    let port_ok = spdy::header(headers, "port")
        .and_then(|p| p.parse::<u16>().ok())
        .is_some_and(|p| p > 0);
    port_ok && matches!(spdy::header(headers, "streamType"), Some("error" | "data"))
}

/// Runs one port-forward connection (SPDY/3.1 on `io`: the upgraded connection, or a
/// [`WsTunnel`]) until the client leaves. `ip` is where the pod's ports are reached; `pod`
/// names the pod in error messages.
pub async fn run<S>(io: S, ip: IpAddr, pod: String)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut conn = spdy_session::serve(io, Box::new(accept));
    let mut pending: HashMap<String, Pending> = HashMap::new();
    while let Some(stream) = conn.streams.recv().await {
        let request = stream.header("requestID").unwrap_or("").to_string();
        let p = pending.entry(request.clone()).or_default();
        if stream.header("streamType") == Some("error") {
            p.error = Some(stream);
        } else {
            p.data = Some(stream);
        }
        if p.error.is_some() && p.data.is_some() {
            if let Some(Pending {
                error: Some(error),
                data: Some(data),
            }) = pending.remove(&request)
            {
                let port = data
                    .header("port")
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(0);
                let out = conn.sender.clone();
                let pod = pod.clone();
                tokio::spawn(async move {
                    forward(SocketAddr::new(ip, port), data, error.id, out, &pod).await;
                });
            }
        }
    }
}

/// One forwarded connection: the data stream to `addr`, failures on the error stream `err_id`.
async fn forward(addr: SocketAddr, data: Stream, err_id: u32, out: Sender, pod: &str) {
    let data_id = data.id;
    let mut rx = data.inbound;
    let conn = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connection timed out",
        )),
    };
    let stream = match conn {
        Ok(s) => s,
        Err(e) => {
            let msg = format!(
                "error forwarding port {} to pod {pod}: failed to connect to {addr}: {e}",
                addr.port()
            );
            let _ = out.data(err_id, msg.as_bytes()).await;
            let _ = out.fin(err_id).await;
            let _ = out.fin(data_id).await;
            return;
        }
    };
    let (mut r, mut w) = stream.into_split();
    // Client → pod; true when the client reset the stream (rather than finishing it).
    let up = async {
        while let Some(m) = rx.recv().await {
            match m {
                Inbound::Data(b) => {
                    if w.write_all(&b).await.is_err() {
                        return false;
                    }
                }
                Inbound::Fin => {
                    let _ = w.shutdown().await;
                    return false;
                }
            }
        }
        true
    };
    // Pod → client, then FIN on both streams.
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !out.data(data_id, &buf[..n]).await {
                        return;
                    }
                }
            }
        }
        let _ = out.fin(data_id).await;
        let _ = out.fin(err_id).await;
    };
    tokio::pin!(up);
    tokio::pin!(down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            reset = &mut up, if !up_done => {
                up_done = true;
                if reset {
                    break;
                }
            }
            _ = &mut down, if !down_done => down_done = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::spdy::{Decoder, Encoder, Frame, FLAG_FIN};
    use crate::server::spdy_session::tests::FakeClient;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;

    fn syn(stream_id: u32, kind: &str, port: u16, request: &str) -> Frame {
        Frame::SynStream {
            stream_id,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: vec![
                ("streamtype".into(), kind.into()),
                ("port".into(), port.to_string()),
                ("requestid".into(), request.into()),
            ],
        }
    }

    /// A local server that answers `got <5 bytes>` once.
    async fn echo_once() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut b = vec![0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(b"got ").await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        port
    }

    /// A fake kubectl over a WebSocket pair forwards one connection to a local echo-once
    /// server, with the SPDY bytes split across messages.
    #[tokio::test]
    async fn forwards_one_connection_through_the_websocket_tunnel() {
        let port = echo_once().await;
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            run(
                WsTunnel::new(ws),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                "p".into(),
            )
            .await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let mut enc = Encoder::new();
        let mut bytes = enc.encode(&syn(1, "error", port, "0"));
        bytes.extend(enc.encode(&syn(3, "data", port, "0")));
        bytes.extend(enc.encode(&Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: b"hello".to_vec(),
        }));
        for chunk in bytes.chunks(5) {
            client
                .send(Message::Binary(chunk.to_vec().into()))
                .await
                .unwrap();
        }
        let mut dec = Decoder::new();
        let (mut data, mut replies, mut fins) = (Vec::new(), 0, 0);
        while fins < 2 {
            let Some(Ok(Message::Binary(b))) = client.next().await else {
                panic!("connection ended early");
            };
            dec.push(&b);
            while let Some(f) = dec.next_frame().unwrap() {
                match f {
                    Frame::SynReply { .. } => replies += 1,
                    Frame::Data {
                        stream_id,
                        flags,
                        data: d,
                    } => {
                        if stream_id == 3 {
                            data.extend(d);
                        } else {
                            assert!(d.is_empty(), "{}", String::from_utf8_lossy(&d));
                        }
                        if flags & FLAG_FIN != 0 {
                            fins += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(replies, 2);
        assert_eq!(data, b"got hello");
    }

    /// The same over a plain SPDY connection (the upgraded HTTP/1.1 connection), with a
    /// stream refused for its port and a port nobody listens on.
    #[tokio::test]
    async fn forwards_over_plain_spdy_and_reports_failures() {
        let port = echo_once().await;
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(run(server_io, IpAddr::V4(Ipv4Addr::LOCALHOST), "p".into()));
        let mut c = FakeClient::new(client_io);

        c.send(syn(1, "data", 0, "9")).await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                stream_id: 1,
                status: spdy_session::CANCEL
            })
        );

        c.send(syn(3, "error", port, "0")).await;
        c.send(syn(5, "data", port, "0")).await;
        c.send(Frame::Data {
            stream_id: 5,
            flags: FLAG_FIN,
            data: b"hello".to_vec(),
        })
        .await;
        let (mut data, mut fins) = (Vec::new(), 0);
        while fins < 2 {
            match c.next().await.expect("frames") {
                Frame::Data {
                    stream_id: 5,
                    flags,
                    data: d,
                } => {
                    data.extend(d);
                    fins += usize::from(flags & FLAG_FIN != 0);
                }
                Frame::Data {
                    stream_id: 3,
                    flags,
                    data: d,
                } => {
                    assert!(d.is_empty());
                    fins += usize::from(flags & FLAG_FIN != 0);
                }
                Frame::SynReply { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(data, b"got hello");

        c.send(syn(7, "error", closed_port, "1")).await;
        c.send(syn(9, "data", closed_port, "1")).await;
        let mut error = Vec::new();
        loop {
            match c.next().await.expect("frames") {
                Frame::Data {
                    stream_id: 7,
                    flags,
                    data: d,
                } => {
                    error.extend(d);
                    if flags & FLAG_FIN != 0 {
                        break;
                    }
                }
                Frame::SynReply { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let error = String::from_utf8(error).unwrap();
        assert!(
            error.starts_with(&format!(
                "error forwarding port {closed_port} to pod p: failed to connect to 127.0.0.1:{closed_port}"
            )),
            "{error}"
        );
    }
}
