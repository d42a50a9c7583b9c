//! `pods/portforward`: kubectl 1.31+ opens a WebSocket (`GET`, no query string, subprotocol
//! `SPDY/3.1+portforward.k8s.io`) whose binary messages are only a byte tunnel for a SPDY/3.1
//! connection (see [`super::spdy`]). Per local connection kubectl opens two streams with
//! headers `streamType: error|data`, `port: <n>`, `requestID: <k>`; the server connects to the
//! pod's port (`status.podIP`, or 127.0.0.1 for hostNetwork pods, reached from the host through
//! the bridge), copies bytes both ways on the data stream, writes a failure as text on the error
//! stream, and ends both streams with FIN. The SPDY fallback (a `POST` with
//! `Upgrade: SPDY/3.1`, kubectl 1.30 and older) is answered with a 400 Status.

use super::body::{self, Body};
use super::request::{ResourceRequest, Verb};
use super::spdy::{self, Decoder, Encoder, Frame, FLAG_FIN};
use super::status::ApiError;
use super::ApiServer;
use crate::resources;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
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
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The WebSocket subprotocol kubectl offers for port-forward.
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// RST_STREAM status PROTOCOL_ERROR.
const PROTOCOL_ERROR: u32 = 1;

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
    let websocket = offered(headers, http::header::CONNECTION, "upgrade")
        && offered(headers, http::header::UPGRADE, "websocket");
    if !websocket || *method != Method::GET {
        return Err(ApiError::bad_request(format!(
            "pods/portforward is served over WebSocket ({PROTOCOL}) only; this server does not accept SPDY upgrades (kubectl 1.31 and later use WebSocket unless KUBECTL_PORT_FORWARD_WEBSOCKETS=false)"
        )));
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
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let pod_desc = format!("{name}_{ns}, uid {uid}");
    tokio::spawn(async move {
        let io = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "portforward upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        run(ws, ip, pod_desc).await;
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
        HeaderValue::from_static(PROTOCOL),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(r)
}

/// What the session loop hands a forwarder: data from the client, `None` for its FIN.
/// The channel closing without `None` means the stream was reset.
type Inbound = mpsc::UnboundedReceiver<Option<Vec<u8>>>;

#[derive(Default)]
struct Pending {
    error: Option<u32>,
    data: Option<(u32, Inbound)>,
    port: u16,
}

/// Runs one port-forward connection until the client leaves. `ip` is where the pod's ports
/// are reached; `pod` names the pod in error messages.
pub async fn run<S>(ws: WebSocketStream<S>, ip: IpAddr, pod: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut wtx, mut wrx) = ws.split();
    let (ftx, mut frx) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(async move {
        let mut enc = Encoder::new();
        while let Some(f) = frx.recv().await {
            let bytes = enc.encode(&f);
            if wtx.send(Message::Binary(bytes.into())).await.is_err() {
                return;
            }
        }
        let _ = wtx.close().await;
    });
    let mut dec = Decoder::new();
    let mut inbound: HashMap<u32, mpsc::UnboundedSender<Option<Vec<u8>>>> = HashMap::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    'conn: while let Some(msg) = wrx.next().await {
        match msg {
            Ok(Message::Binary(b)) => dec.push(&b),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        }
        loop {
            let frame = match dec.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "portforward: bad SPDY stream");
                    let _ = ftx
                        .send(Frame::GoAway {
                            last_stream_id: 0,
                            status: PROTOCOL_ERROR,
                        })
                        .await;
                    break 'conn;
                }
            };
            match frame {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    let kind = spdy::header(&headers, "streamType").unwrap_or("");
                    let port = spdy::header(&headers, "port").and_then(|p| p.parse::<u16>().ok());
                    let request = spdy::header(&headers, "requestID")
                        .unwrap_or("")
                        .to_string();
                    let Some(port) = port.filter(|p| *p > 0) else {
                        let _ = ftx
                            .send(Frame::RstStream {
                                stream_id,
                                status: PROTOCOL_ERROR,
                            })
                            .await;
                        continue;
                    };
                    let _ = ftx
                        .send(Frame::SynReply {
                            stream_id,
                            flags: 0,
                            headers: Vec::new(),
                        })
                        .await;
                    let p = pending.entry(request.clone()).or_default();
                    p.port = port;
                    match kind {
                        "error" => p.error = Some(stream_id),
                        "data" => {
                            let (tx, rx) = mpsc::unbounded_channel();
                            inbound.insert(stream_id, tx);
                            p.data = Some((stream_id, rx));
                        }
                        _ => {
                            let _ = ftx
                                .send(Frame::RstStream {
                                    stream_id,
                                    status: PROTOCOL_ERROR,
                                })
                                .await;
                        }
                    }
                    if p.error.is_some() && p.data.is_some() {
                        if let Some(Pending {
                            error: Some(err_id),
                            data: Some((data_id, rx)),
                            port,
                        }) = pending.remove(&request)
                        {
                            let ftx = ftx.clone();
                            let pod = pod.clone();
                            tokio::spawn(async move {
                                forward(SocketAddr::new(ip, port), data_id, err_id, rx, ftx, &pod)
                                    .await;
                            });
                        }
                    }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    if let Some(tx) = inbound.get(&stream_id) {
                        if !data.is_empty() {
                            let _ = tx.send(Some(data));
                        }
                        if flags & FLAG_FIN != 0 {
                            let _ = tx.send(None);
                            inbound.remove(&stream_id);
                        }
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    inbound.remove(&stream_id);
                }
                Frame::Ping(id) => {
                    let _ = ftx.send(Frame::Ping(id)).await;
                }
                Frame::GoAway { .. } => break 'conn,
                _ => {}
            }
        }
    }
    drop(inbound);
    drop(ftx);
    let _ = writer.await;
}

/// One forwarded connection: the data stream `data_id` to `addr`, failures on `err_id`.
async fn forward(
    addr: SocketAddr,
    data_id: u32,
    err_id: u32,
    mut rx: Inbound,
    ftx: mpsc::Sender<Frame>,
    pod: &str,
) {
    let fin = |stream_id: u32| Frame::Data {
        stream_id,
        flags: FLAG_FIN,
        data: Vec::new(),
    };
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
            let _ = ftx
                .send(Frame::Data {
                    stream_id: err_id,
                    flags: 0,
                    data: msg.into_bytes(),
                })
                .await;
            let _ = ftx.send(fin(err_id)).await;
            let _ = ftx.send(fin(data_id)).await;
            return;
        }
    };
    let (mut r, mut w) = stream.into_split();
    // Client → pod; true when the client reset the stream (rather than finishing it).
    let up = async {
        while let Some(m) = rx.recv().await {
            match m {
                Some(b) => {
                    if w.write_all(&b).await.is_err() {
                        return false;
                    }
                    let _ = ftx
                        .send(Frame::WindowUpdate {
                            stream_id: data_id,
                            delta: b.len() as u32,
                        })
                        .await;
                }
                None => {
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
                    let f = Frame::Data {
                        stream_id: data_id,
                        flags: 0,
                        data: buf[..n].to_vec(),
                    };
                    if ftx.send(f).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = ftx.send(fin(data_id)).await;
        let _ = ftx.send(fin(err_id)).await;
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
    use tokio::net::TcpListener;

    fn syn(stream_id: u32, kind: &str, port: u16) -> Frame {
        Frame::SynStream {
            stream_id,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: vec![
                ("streamType".into(), kind.into()),
                ("port".into(), port.to_string()),
                ("requestID".into(), "0".into()),
            ],
        }
    }

    /// A fake kubectl over a WebSocket pair forwards one connection to a local echo-once
    /// server, with the SPDY bytes split across messages.
    #[tokio::test]
    async fn forwards_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut b = vec![0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(b"got ").await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            run(ws, IpAddr::V4(Ipv4Addr::LOCALHOST), "p".into()).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let mut enc = Encoder::new();
        let mut bytes = enc.encode(&syn(1, "error", port));
        bytes.extend(enc.encode(&syn(3, "data", port)));
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
}
