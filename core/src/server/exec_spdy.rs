//! `pods/exec` and `pods/attach` over SPDY/3.1: what kubectl 1.27–1.29 speak, and later ones
//! when the WebSocket upgrade fails or with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`. This is
//! the kubelet's `remotecommand` server (`createHTTPStreamStreams` and the v4 protocol
//! handler) for `v5.channel.k8s.io` and `v4.channel.k8s.io` (identical over SPDY).
//!
//! The request (`POST`, `Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version` offers) is answered
//! `101` with the client's first protocol we serve. The container is looked up and the
//! session started before that, as the kubelet does: its failure (`container not found`) is a
//! plain-text `500`, which kubectl prints as `error: unable to upgrade connection: …`. Then the
//! client opens one stream per role, header `streamType`: `error`, and `stdin`, `stdout`,
//! `stderr` (never with a tty) and `resize` (only with a tty) as the query asked. Once all are
//! there (at most 30 s), the shared [`super::exec`] pump runs: stdin DATA goes to the process
//! and its FIN closes the process's input, `resize` carries a sequence of JSON
//! `{"Width":W,"Height":H}` objects, output goes out as DATA on `stdout`/`stderr`. At the end
//! the output streams get FIN, the `metav1.Status` (the WebSocket error channel's JSON) is
//! written on `error` with FIN, and the connection is closed with GOAWAY.

use super::body::{self, Body};
use super::exec::{self, ExecSession, Input, NodeExec, Output, Streams, Target, TerminalSize};
use super::spdy_session::{self, Connection, Inbound, Sender, Stream};
use super::status::ApiError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the client has to open its streams (the kubelet's default
/// `StreamCreationTimeout`).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves an exec/attach request that asked for a SPDY upgrade; `target` is checked already.
pub(super) async fn connect(
    target: Target,
    headers: &HeaderMap,
    upgrade: Option<OnUpgrade>,
    node: impl FnOnce() -> Result<Arc<dyn NodeExec>, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let protocol = spdy_session::negotiate(headers, &exec::PROTOCOLS)?;
    let upgrade = upgrade
        .ok_or_else(|| ApiError::bad_request("unable to upgrade: not an HTTP/1.1 upgrade"))?;
    let node = node()?;
    let session = match target.start(&node).await {
        Ok(s) => s,
        Err(e) => return Ok(plain_text(StatusCode::INTERNAL_SERVER_ERROR, e)),
    };
    tokio::spawn(async move {
        let io = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "exec upgrade failed");
                return;
            }
        };
        let conn = spdy_session::serve(io, Box::new(|_: &_| true));
        run(conn, session, target.streams, &target.command).await;
    });
    Ok(spdy_session::switching_protocols(protocol))
}

fn plain_text(code: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(body::full(Bytes::from(text)));
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Waits for the client's streams, then pumps `session` over them until its outcome is sent
/// or the client left. Dropping the session (client gone, streams never came) closes the
/// process's stdin; as with containerd, the process itself runs to its end.
pub(super) async fn run(
    conn: Connection,
    session: ExecSession,
    streams: Streams,
    command: &[String],
) {
    match SpdyTransport::collect(conn, streams).await {
        Ok(t) => exec::serve(t, Ok(session), command).await,
        Err(why) => tracing::debug!(why, "exec over SPDY: streams not created"),
    }
}

/// The client's streams of one session.
struct SpdyTransport {
    out: Sender,
    /// Further streams (ignored), and the connection's end (the channel closes).
    incoming: mpsc::Receiver<Stream>,
    reader: JoinHandle<()>,
    error: u32,
    stdout: Option<u32>,
    stderr: Option<u32>,
    stdin: Option<Stream>,
    stdin_id: Option<u32>,
    resize: Option<Stream>,
    resize_id: Option<u32>,
    resize_buf: Vec<u8>,
    sizes: VecDeque<TerminalSize>,
}

impl SpdyTransport {
    /// `waitForStreams`: the error stream plus one per requested role.
    async fn collect(conn: Connection, streams: Streams) -> Result<Self, &'static str> {
        let Connection {
            streams: mut incoming,
            sender: out,
            reader,
        } = conn;
        let expected = 1
            + usize::from(streams.stdin)
            + usize::from(streams.stdout)
            + usize::from(streams.stderr && !streams.tty)
            + usize::from(streams.tty);
        let (mut error, mut stdout, mut stderr, mut stdin, mut resize) =
            (None, None, None, None::<Stream>, None::<Stream>);
        let mut got = 0;
        let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
        tokio::pin!(deadline);
        while got < expected {
            let s = tokio::select! {
                s = incoming.recv() => s,
                _ = &mut deadline => None,
            };
            let Some(s) = s else {
                out.close().await;
                return Err("the client left or did not open its streams in time");
            };
            let slot_free = match s.header("streamType") {
                Some("error") => error.is_none(),
                Some("stdout") => stdout.is_none(),
                Some("stderr") => stderr.is_none(),
                Some("stdin") => stdin.is_none(),
                Some("resize") => resize.is_none(),
                _ => false,
            };
            if !slot_free {
                // The kubelet logs an unexpected stream type and goes on waiting.
                let _ = out.reset(s.id, spdy_session::CANCEL).await;
                continue;
            }
            got += 1;
            match s.header("streamType") {
                Some("error") => error = Some(s.id),
                Some("stdout") => stdout = Some(s.id),
                Some("stderr") => stderr = Some(s.id),
                Some("stdin") => stdin = Some(s),
                _ => resize = Some(s),
            }
        }
        let Some(error) = error else {
            out.close().await;
            return Err("no error stream");
        };
        Ok(SpdyTransport {
            out,
            incoming,
            reader,
            error,
            stdout,
            stderr,
            stdin_id: stdin.as_ref().map(|s| s.id),
            stdin,
            resize_id: resize.as_ref().map(|s| s.id),
            resize,
            resize_buf: Vec::new(),
            sizes: VecDeque::new(),
        })
    }
}

async fn next_inbound(s: &mut Option<Stream>) -> Option<Inbound> {
    match s {
        Some(s) => s.inbound.recv().await,
        None => std::future::pending().await,
    }
}

/// The complete JSON values at the start of `buf` (taken out of it) as terminal sizes, as
/// the kubelet's `json.Decoder` on the resize stream reads them; an incomplete value stays.
fn decode_sizes(buf: &mut Vec<u8>) -> Vec<TerminalSize> {
    let mut sizes = Vec::new();
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let used = loop {
        match it.next() {
            Some(Ok(v)) => sizes.extend(exec::size_from(&v)),
            Some(Err(e)) if e.is_eof() => break it.byte_offset(),
            // Not JSON: what came so far is dropped.
            Some(Err(_)) | None => break buf.len(),
        }
    };
    buf.drain(..used);
    sizes
}

impl exec::Transport for SpdyTransport {
    async fn input(&mut self) -> Input {
        loop {
            if let Some(size) = self.sizes.pop_front() {
                return Input::Resize(size);
            }
            tokio::select! {
                m = next_inbound(&mut self.stdin) => match m {
                    Some(Inbound::Data(b)) => return Input::Stdin(b),
                    // FIN, or a reset: the end of the input either way.
                    Some(Inbound::Fin) | None => {
                        self.stdin = None;
                        return Input::StdinEnd;
                    }
                },
                m = next_inbound(&mut self.resize) => match m {
                    Some(Inbound::Data(b)) => {
                        self.resize_buf.extend(b);
                        let sizes = decode_sizes(&mut self.resize_buf);
                        self.sizes.extend(sizes);
                    }
                    Some(Inbound::Fin) | None => self.resize = None,
                },
                s = self.incoming.recv() => match s {
                    // A stream nobody asked for: its data is dropped.
                    Some(_) => {}
                    None => return Input::Gone,
                },
            }
        }
    }

    async fn output(&mut self, to: Output, data: Vec<u8>) -> bool {
        let id = match to {
            Output::Stdout => self.stdout,
            Output::Stderr => self.stderr,
        };
        match id {
            Some(id) => self.out.data(id, &data).await,
            None => true,
        }
    }

    async fn finish(self, status: Option<Value>) {
        let SpdyTransport {
            out,
            incoming,
            reader,
            error,
            stdout,
            stderr,
            stdin,
            stdin_id,
            resize,
            resize_id,
            ..
        } = self;
        // From now on the reader never waits for us.
        drop((incoming, stdin, resize));
        if let Some(status) = status {
            for id in [stdout, stderr].into_iter().flatten() {
                let _ = out.fin(id).await;
            }
            let payload = serde_json::to_vec(&status).unwrap_or_default();
            let _ = out.data(error, &payload).await;
            let _ = out.fin(error).await;
            for id in [stdin_id, resize_id].into_iter().flatten() {
                let _ = out.fin(id).await;
            }
        }
        out.close().await;
        drop(out);
        let _ = reader.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::exec::ExecEvent;
    use crate::server::spdy::{Frame, FLAG_FIN};
    use crate::server::spdy_session::tests::FakeClient;

    #[test]
    fn resize_stream_is_a_json_sequence() {
        let mut buf = br#"{"Width":80,"Height":24}
{"Width":1"#
            .to_vec();
        assert_eq!(
            decode_sizes(&mut buf),
            vec![TerminalSize {
                width: 80,
                height: 24
            }]
        );
        assert_eq!(buf, br#"{"Width":1"#);
        buf.extend_from_slice(b"20,\"Height\":40}\n");
        assert_eq!(
            decode_sizes(&mut buf),
            vec![TerminalSize {
                width: 120,
                height: 40
            }]
        );
        assert!(buf.is_empty());
        buf.extend_from_slice(b"nonsense");
        assert!(decode_sizes(&mut buf).is_empty());
        assert!(buf.is_empty());
    }

    /// A fake agent session driven by a fake client: streams opened one by one as client-go
    /// does, stdin echoed until its FIN, then the process "exits" 3.
    #[tokio::test]
    async fn v4_session_end_to_end() {
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
        let streams = Streams {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let server = tokio::spawn(async move {
            let conn = spdy_session::serve(server_io, Box::new(|_: &_| true));
            run(conn, session, streams, &["cat".to_string()]).await;
        });
        let mut c = FakeClient::new(client_io);
        for (id, kind) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")] {
            c.open(id, &[("streamtype", kind)]).await;
            assert!(
                matches!(c.next().await, Some(Frame::SynReply { stream_id, .. }) if stream_id == id)
            );
        }
        for (flags, data) in [(0, &b"hello "[..]), (FLAG_FIN, &b"world"[..])] {
            c.send(Frame::Data {
                stream_id: 3,
                flags,
                data: data.to_vec(),
            })
            .await;
        }
        let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), Vec::new());
        let mut fins = Vec::new();
        while let Some(f) = c.next().await {
            match f {
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    match stream_id {
                        5 => out.extend(data),
                        7 => err.extend(data),
                        1 => status.extend(data),
                        _ => assert!(data.is_empty()),
                    }
                    if flags & FLAG_FIN != 0 {
                        fins.push(stream_id);
                    }
                }
                Frame::GoAway { status, .. } => {
                    assert_eq!(status, 0);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        drop(c);
        server.await.unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(err, b"ready\n");
        let status: Value = serde_json::from_slice(&status).unwrap();
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        // Output streams end before the status; every stream gets the server's FIN.
        assert_eq!(fins, vec![5, 7, 1, 3]);
        assert_eq!(resize_rx.try_recv().ok(), None);
    }

    /// With a tty: no stderr stream, a resize stream whose sizes reach the session.
    #[tokio::test]
    async fn tty_session_takes_resizes() {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let (ev_tx, ev_rx) = mpsc::channel(4);
        let (resize_tx, mut resize_rx) = mpsc::unbounded_channel();
        let session = ExecSession {
            stdin: None,
            resize: Some(resize_tx),
            events: ev_rx,
        };
        let streams = Streams {
            stdin: false,
            stdout: true,
            stderr: false,
            tty: true,
        };
        let server = tokio::spawn(async move {
            let conn = spdy_session::serve(server_io, Box::new(|_: &_| true));
            run(conn, session, streams, &["sh".to_string()]).await;
        });
        let mut c = FakeClient::new(client_io);
        for (id, kind) in [(1, "error"), (3, "stdout"), (5, "resize")] {
            c.open(id, &[("streamtype", kind)]).await;
            assert!(matches!(c.next().await, Some(Frame::SynReply { .. })));
        }
        c.send(Frame::Data {
            stream_id: 5,
            flags: 0,
            data: b"{\"Width\":100,\"Height\":30}\n{\"Width\":101,".to_vec(),
        })
        .await;
        c.send(Frame::Data {
            stream_id: 5,
            flags: 0,
            data: b"\"Height\":31}\n".to_vec(),
        })
        .await;
        assert_eq!(
            resize_rx.recv().await,
            Some(TerminalSize {
                width: 100,
                height: 30
            })
        );
        assert_eq!(
            resize_rx.recv().await,
            Some(TerminalSize {
                width: 101,
                height: 31
            })
        );
        ev_tx.send(ExecEvent::Stdout(b"$ ".to_vec())).await.unwrap();
        ev_tx.send(ExecEvent::Exited(0)).await.unwrap();
        let mut status = Vec::new();
        loop {
            match c.next().await {
                Some(Frame::Data {
                    stream_id: 1, data, ..
                }) => status.extend(data),
                Some(Frame::GoAway { .. }) | None => break,
                Some(_) => {}
            }
        }
        drop(c);
        server.await.unwrap();
        assert_eq!(status, br#"{"metadata":{},"status":"Success"}"#);
    }

    /// A client that leaves before opening its streams ends the session (the agent sees its
    /// events receiver dropped).
    #[tokio::test]
    async fn client_leaving_early_drops_the_session() {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let (ev_tx, ev_rx) = mpsc::channel::<ExecEvent>(4);
        let session = ExecSession {
            stdin: None,
            resize: None,
            events: ev_rx,
        };
        let streams = Streams {
            stdout: true,
            ..Streams::default()
        };
        let server = tokio::spawn(async move {
            let conn = spdy_session::serve(server_io, Box::new(|_: &_| true));
            run(conn, session, streams, &["true".to_string()]).await;
        });
        let mut c = FakeClient::new(client_io);
        c.open(1, &[("streamtype", "error")]).await;
        assert!(matches!(c.next().await, Some(Frame::SynReply { .. })));
        drop(c);
        server.await.unwrap();
        ev_tx.closed().await;
    }
}
