//! A SPDY/3.1 server connection over any byte stream (the upgraded HTTP/1.1 connection of
//! `Upgrade: SPDY/3.1`, or the WebSocket byte tunnel of port-forward): the part of
//! `moby/spdystream` that the kubelet's streaming server relies on, and the HTTP/1.1 upgrade
//! handshake of client-go's `httpstream` (`X-Stream-Protocol-Version` negotiation, the `101`).
//!
//! The client opens streams (SYN_STREAM); each is checked by the caller's `accept` rule and
//! answered with an empty SYN_REPLY (or reset with CANCEL, as spdystream's `Reset`), then handed
//! over as a [`Stream`] whose inbound DATA arrives on a channel; a FIN ends it, a channel closed
//! without FIN means the client reset the stream or left. PINGs the client starts (odd ids) are
//! echoed; a GOAWAY from the client stops new streams (the connection stays until EOF).
//!
//! Flow control: client-go's spdystream neither sends WINDOW_UPDATE nor enforces windows (it
//! drops WINDOW_UPDATE and SETTINGS frames as unhandled), so a sender that held to the 64 KiB
//! initial window would stall forever against kubectl; the kubelet (spdystream itself) does
//! not hold to it either, and neither does this server. Inbound, the server announces what it
//! consumed (stream and session WINDOW_UPDATE once a DATA frame is handed over), so a strict
//! SPDY/3.1 client keeps sending; the per-stream channels are bounded, so a stream whose
//! consumer is slow holds the connection's reader (TCP back-pressure, as spdystream's
//! unbuffered per-stream channels do).

use super::body::{self, Body};
use super::spdy::{Decoder, Encoder, Frame, HeaderBlock, FLAG_FIN};
use super::status::ApiError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// The `Upgrade` token of a SPDY connection.
pub const UPGRADE: &str = "SPDY/3.1";
/// The header carrying the stream sub-protocols (offered, then chosen).
pub const PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// RST_STREAM / GOAWAY status PROTOCOL_ERROR.
pub const PROTOCOL_ERROR: u32 = 1;
/// RST_STREAM status REFUSED_STREAM.
pub const REFUSED_STREAM: u32 = 3;
/// RST_STREAM status CANCEL (spdystream's `Stream.Reset`).
pub const CANCEL: u32 = 5;

/// The largest DATA frame sent (spdystream writes at most 32 KiB per frame too).
const MAX_DATA: usize = 32 * 1024;
/// Inbound DATA frames queued per stream before the connection's reader waits.
const STREAM_QUEUE: usize = 16;
/// Frames queued for the writer.
const OUT_QUEUE: usize = 64;
/// How long the reader keeps draining the client after the server closed the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Whether a request asks for a SPDY/3.1 upgrade (`Connection: Upgrade`, `Upgrade: SPDY/3.1`;
/// compared as client-go's `UpgradeResponse` does: lower-cased substrings).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains(token))
        })
    };
    has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, "spdy/3.1")
}

/// `httpstream.Handshake`: the first protocol the client offers (in its order) that the server
/// supports. Offers come as repeated headers, or comma-separated in one.
pub fn negotiate(
    headers: &HeaderMap,
    supported: &[&'static str],
) -> Result<&'static str, ApiError> {
    let offered: Vec<&str> = headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Err(ApiError::bad_request(
            "unable to upgrade: X-Stream-Protocol-Version is required",
        ));
    }
    offered
        .iter()
        .find_map(|o| supported.iter().find(|s| *s == o).copied())
        .ok_or_else(|| {
            ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
                    offered.join(" "),
                    supported.join(" ")
                ),
            )
        })
}

/// The `101 Switching Protocols` answer to a SPDY upgrade with the chosen protocol.
pub fn switching_protocols(protocol: &'static str) -> Response<Body> {
    let mut r = Response::new(body::full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, HeaderValue::from_static(UPGRADE));
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(protocol));
    r
}

/// What arrives on a stream from the client. The channel closing without [`Inbound::Fin`]
/// means the stream was reset or the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Data(Vec<u8>),
    Fin,
}

/// A stream the client opened (already answered with SYN_REPLY).
#[derive(Debug)]
pub struct Stream {
    pub id: u32,
    pub headers: HeaderBlock,
    pub inbound: mpsc::Receiver<Inbound>,
}

impl Stream {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        super::spdy::header(&self.headers, name)
    }
}

enum Command {
    Frame(Frame),
    /// GOAWAY with this status, then shut down.
    Close(u32),
}

/// Sends frames on the connection; cheap to clone. Every method answers false once the
/// connection can no longer be written.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Command>,
}

impl Sender {
    async fn frame(&self, f: Frame) -> bool {
        self.tx.send(Command::Frame(f)).await.is_ok()
    }

    /// DATA on `stream_id` (in frames of at most 32 KiB).
    pub async fn data(&self, stream_id: u32, data: &[u8]) -> bool {
        for chunk in data.chunks(MAX_DATA) {
            let f = Frame::Data {
                stream_id,
                flags: 0,
                data: chunk.to_vec(),
            };
            if !self.frame(f).await {
                return false;
            }
        }
        true
    }

    /// Ends the server's half of `stream_id` (an empty DATA frame with FIN).
    pub async fn fin(&self, stream_id: u32) -> bool {
        self.frame(Frame::Data {
            stream_id,
            flags: FLAG_FIN,
            data: Vec::new(),
        })
        .await
    }

    /// Resets `stream_id` (status must not be 0).
    pub async fn reset(&self, stream_id: u32, status: u32) -> bool {
        self.frame(Frame::RstStream { stream_id, status }).await
    }

    /// Ends the connection: everything queued before is written, then GOAWAY (OK); the write
    /// side is shut down once the client closed its side (at most a few seconds later).
    pub async fn close(&self) {
        let _ = self.tx.send(Command::Close(0)).await;
    }
}

/// A served connection: the streams the client opens, a sender, and the task that reads.
pub struct Connection {
    pub streams: mpsc::Receiver<Stream>,
    pub sender: Sender,
    /// Ends when the client closed the connection (or, after [`Sender::close`], at the latest
    /// a few seconds later).
    pub reader: JoinHandle<()>,
}

/// Decides from its headers whether a new stream is taken (else it is reset with CANCEL).
pub type Accept = Box<dyn Fn(&HeaderBlock) -> bool + Send + Sync>;

/// Serves SPDY/3.1 on `io` (the server side) in tasks of its own.
pub fn serve<S>(io: S, accept: Accept) -> Connection
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    let (tx, rx) = mpsc::channel(OUT_QUEUE);
    let (streams_tx, streams) = mpsc::channel(8);
    let (closed_tx, closed_rx) = watch::channel(false);
    let (reader_done_tx, reader_done) = oneshot::channel::<()>();
    let last_stream = Arc::new(AtomicU32::new(0));
    let sender = Sender { tx };
    tokio::spawn(write_loop(
        wr,
        rx,
        closed_tx,
        reader_done,
        last_stream.clone(),
    ));
    let reader = Reader {
        _done: reader_done_tx,
        out: sender.clone(),
        accept,
        streams: Some(streams_tx),
        open: HashMap::new(),
        last_stream,
        refusing: false,
    };
    let reader = tokio::spawn(reader.run(rd, closed_rx));
    Connection {
        streams,
        sender,
        reader,
    }
}

async fn write_loop<W>(
    mut wr: W,
    mut rx: mpsc::Receiver<Command>,
    closed: watch::Sender<bool>,
    mut reader_done: oneshot::Receiver<()>,
    last_stream: Arc<AtomicU32>,
) where
    W: AsyncWrite + Unpin,
{
    let mut enc = Encoder::new();
    let mut buf = Vec::new();
    let mut ok = true;
    let mut closing = None;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Everything already queued goes out in one write.
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Frame(f) => buf.extend(enc.encode(&f)),
                Command::Close(status) => {
                    closing = Some(status);
                    break;
                }
            }
            if buf.len() >= 4 * MAX_DATA {
                break;
            }
            next = rx.try_recv().ok();
        }
        if closing.is_some() {
            break;
        }
        ok = wr.write_all(&buf).await.is_ok() && wr.flush().await.is_ok();
        buf.clear();
        if !ok {
            break;
        }
    }
    if ok {
        buf.extend(enc.encode(&Frame::GoAway {
            last_stream_id: last_stream.load(Ordering::Acquire),
            status: closing.unwrap_or(0),
        }));
        ok = wr.write_all(&buf).await.is_ok() && wr.flush().await.is_ok();
    }
    let _ = closed.send(true);
    if ok {
        // The client closes once it has read everything (kubectl exits); closing first could
        // lose what it has not handled yet (spdystream drops queued frames at EOF). The reader
        // gives up after CLOSE_WAIT; what is still sent meanwhile is dropped.
        loop {
            tokio::select! {
                cmd = rx.recv() => if cmd.is_none() { break },
                _ = &mut reader_done => break,
            }
        }
    }
    let _ = wr.shutdown().await;
}

struct Reader {
    /// Dropped when the reader ends.
    _done: oneshot::Sender<()>,
    out: Sender,
    accept: Accept,
    streams: Option<mpsc::Sender<Stream>>,
    open: HashMap<u32, mpsc::Sender<Inbound>>,
    last_stream: Arc<AtomicU32>,
    /// The client sent GOAWAY, or the server closed: no new streams.
    refusing: bool,
}

impl Reader {
    async fn run<R>(mut self, mut rd: R, mut closed: watch::Receiver<bool>)
    where
        R: AsyncRead + Unpin,
    {
        let mut dec = Decoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut deadline: Option<tokio::time::Instant> = None;
        'conn: loop {
            let n = tokio::select! {
                r = rd.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
                _ = closed.changed(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + CLOSE_WAIT);
                    self.refusing = true;
                    continue;
                }
                _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => break,
            };
            dec.push(&buf[..n]);
            loop {
                match dec.next_frame() {
                    Ok(Some(f)) => self.handle(f).await,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "bad SPDY stream");
                        let _ = self.out.tx.send(Command::Close(PROTOCOL_ERROR)).await;
                        break 'conn;
                    }
                }
            }
        }
        // Dropping the stream senders tells every consumer the connection is gone.
    }

    async fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => self.open_stream(stream_id, flags, headers).await,
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let Some(tx) = self.open.get(&stream_id) else {
                    // A stream that is gone (reset, finished, or never opened): dropped, as
                    // spdystream does.
                    return;
                };
                if !data.is_empty() {
                    let n = data.len() as u32;
                    if tx.send(Inbound::Data(data)).await.is_err() {
                        // Its consumer is done with it.
                        self.open.remove(&stream_id);
                        return;
                    }
                    for id in [stream_id, 0] {
                        let _ = self
                            .out
                            .frame(Frame::WindowUpdate {
                                stream_id: id,
                                delta: n,
                            })
                            .await;
                    }
                }
                if flags & FLAG_FIN != 0 {
                    if let Some(tx) = self.open.remove(&stream_id) {
                        let _ = tx.send(Inbound::Fin).await;
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                self.open.remove(&stream_id);
            }
            // Our own pings would have even ids; we send none.
            Frame::Ping(id) if id % 2 == 1 => {
                let _ = self.out.frame(Frame::Ping(id)).await;
            }
            Frame::GoAway { .. } => self.refusing = true,
            // SETTINGS and WINDOW_UPDATE (see the module doc), HEADERS, SYN_REPLY (we open no
            // streams), our own pings' echoes, unknown control frames.
            _ => {}
        }
    }

    async fn open_stream(&mut self, stream_id: u32, flags: u8, headers: HeaderBlock) {
        let last = self.last_stream.load(Ordering::Acquire);
        if stream_id == 0 || stream_id.is_multiple_of(2) || stream_id <= last {
            let _ = self.out.reset(stream_id, PROTOCOL_ERROR).await;
            return;
        }
        self.last_stream.store(stream_id, Ordering::Release);
        if self.refusing || self.streams.is_none() {
            let _ = self.out.reset(stream_id, REFUSED_STREAM).await;
            return;
        }
        if !(self.accept)(&headers) {
            let _ = self.out.reset(stream_id, CANCEL).await;
            return;
        }
        let _ = self
            .out
            .frame(Frame::SynReply {
                stream_id,
                flags: 0,
                headers: Vec::new(),
            })
            .await;
        let (tx, inbound) = mpsc::channel(STREAM_QUEUE);
        if flags & FLAG_FIN != 0 {
            let _ = tx.try_send(Inbound::Fin);
        } else {
            self.open.insert(stream_id, tx);
        }
        let stream = Stream {
            id: stream_id,
            headers,
            inbound,
        };
        let taken = match &self.streams {
            Some(s) => s.send(stream).await.is_ok(),
            None => false,
        };
        if !taken {
            self.streams = None;
            self.open.remove(&stream_id);
            let _ = self.out.reset(stream_id, CANCEL).await;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    /// The client's end of a served connection: frames in and out.
    pub(crate) struct FakeClient {
        io: DuplexStream,
        enc: Encoder,
        dec: Decoder,
    }

    impl FakeClient {
        pub(crate) fn new(io: DuplexStream) -> Self {
            FakeClient {
                io,
                enc: Encoder::new(),
                dec: Decoder::new(),
            }
        }

        pub(crate) async fn send(&mut self, f: Frame) {
            let b = self.enc.encode(&f);
            self.io.write_all(&b).await.unwrap();
        }

        /// Sends the bytes of several frames split into small pieces.
        pub(crate) async fn send_split(&mut self, frames: &[Frame], piece: usize) {
            let bytes: Vec<u8> = frames.iter().flat_map(|f| self.enc.encode(f)).collect();
            for chunk in bytes.chunks(piece) {
                self.io.write_all(chunk).await.unwrap();
            }
        }

        pub(crate) async fn open(&mut self, id: u32, headers: &[(&str, &str)]) {
            self.send(Frame::SynStream {
                stream_id: id,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: headers
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            })
            .await;
        }

        /// The next frame other than WINDOW_UPDATE; None at EOF.
        pub(crate) async fn next(&mut self) -> Option<Frame> {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                while let Some(f) = self.dec.next_frame().unwrap() {
                    if !matches!(f, Frame::WindowUpdate { .. }) {
                        return Some(f);
                    }
                }
                let n = self.io.read(&mut buf).await.unwrap();
                if n == 0 {
                    return None;
                }
                self.dec.push(&buf[..n]);
            }
        }
    }

    fn syn_reply(id: u32) -> Frame {
        Frame::SynReply {
            stream_id: id,
            flags: 0,
            headers: vec![],
        }
    }

    #[test]
    fn upgrade_and_negotiation_like_httpstream() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("SPDY/3.1"));
        assert!(is_upgrade(&h));
        assert_eq!(
            negotiate(&h, &["v5.channel.k8s.io"]).unwrap_err().message,
            "unable to upgrade: X-Stream-Protocol-Version is required"
        );
        // Repeated headers (client-go) and a comma-separated list; the client's order wins.
        h.append(
            PROTOCOL_HEADER,
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        h.append(
            PROTOCOL_HEADER,
            HeaderValue::from_static("v3.channel.k8s.io, channel.k8s.io"),
        );
        assert_eq!(
            negotiate(&h, &["v5.channel.k8s.io", "v4.channel.k8s.io"]).unwrap(),
            "v4.channel.k8s.io"
        );
        let e = negotiate(&h, &["portforward.k8s.io"]).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "unable to upgrade: unable to negotiate protocol: client supports [v4.channel.k8s.io v3.channel.k8s.io channel.k8s.io], server accepts [portforward.k8s.io]"
        );
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(!is_upgrade(&h));
        let r = switching_protocols("portforward.k8s.io");
        assert_eq!(r.status(), 101);
        assert_eq!(r.headers()["upgrade"], "SPDY/3.1");
        assert_eq!(r.headers()[PROTOCOL_HEADER], "portforward.k8s.io");
    }

    #[tokio::test]
    async fn streams_pings_resets_and_close() {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let accept: Accept =
            Box::new(|h: &HeaderBlock| super::super::spdy::header(h, "streamType") != Some("bad"));
        let mut conn = serve(server_io, accept);
        let mut c = FakeClient::new(client_io);

        c.open(1, &[("streamtype", "stdin")]).await;
        assert_eq!(c.next().await, Some(syn_reply(1)));
        let mut s1 = conn.streams.recv().await.unwrap();
        assert_eq!((s1.id, s1.header("streamType")), (1, Some("stdin")));

        // Data split anywhere arrives whole, in order, then the FIN.
        c.send_split(
            &[
                Frame::Data {
                    stream_id: 1,
                    flags: 0,
                    data: b"hello ".to_vec(),
                },
                Frame::Data {
                    stream_id: 1,
                    flags: FLAG_FIN,
                    data: b"world".to_vec(),
                },
            ],
            3,
        )
        .await;
        assert_eq!(
            s1.inbound.recv().await,
            Some(Inbound::Data(b"hello ".to_vec()))
        );
        assert_eq!(
            s1.inbound.recv().await,
            Some(Inbound::Data(b"world".to_vec()))
        );
        assert_eq!(s1.inbound.recv().await, Some(Inbound::Fin));
        assert_eq!(s1.inbound.recv().await, None);

        // A client ping is echoed; a refused stream is reset with CANCEL; a stream id that
        // goes backwards is a protocol error.
        c.send(Frame::Ping(7)).await;
        assert_eq!(c.next().await, Some(Frame::Ping(7)));
        c.open(3, &[("streamtype", "bad")]).await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                stream_id: 3,
                status: CANCEL
            })
        );
        c.open(1, &[("streamtype", "stdout")]).await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                stream_id: 1,
                status: PROTOCOL_ERROR
            })
        );

        // A reset stream's consumer sees its channel end without FIN.
        c.open(5, &[("streamtype", "stdout")]).await;
        assert_eq!(c.next().await, Some(syn_reply(5)));
        let mut s5 = conn.streams.recv().await.unwrap();
        c.send(Frame::RstStream {
            stream_id: 5,
            status: CANCEL,
        })
        .await;
        assert_eq!(s5.inbound.recv().await, None);

        // Server data (large data in 32 KiB frames), FIN, then close: GOAWAY naming the last
        // stream, then EOF.
        let big = vec![7u8; 70_000];
        assert!(conn.sender.data(5, &big).await);
        assert!(conn.sender.fin(5).await);
        conn.sender.close().await;
        let mut got = Vec::new();
        loop {
            match c.next().await {
                Some(Frame::Data {
                    stream_id: 5,
                    flags,
                    data,
                }) => {
                    assert!(data.len() <= MAX_DATA);
                    got.extend(data);
                    if flags & FLAG_FIN != 0 {
                        break;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, big);
        assert_eq!(
            c.next().await,
            Some(Frame::GoAway {
                last_stream_id: 5,
                status: 0
            })
        );
        // The server's side ends once the client closed its own.
        c.io.shutdown().await.unwrap();
        assert_eq!(c.next().await, None);
        conn.reader.await.unwrap();
        assert!(conn.streams.recv().await.is_none());
    }

    #[tokio::test]
    async fn window_updates_follow_consumed_data() {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let mut conn = serve(server_io, Box::new(|_: &HeaderBlock| true));
        let mut c = FakeClient::new(client_io);
        c.open(1, &[("streamtype", "data")]).await;
        let mut s = conn.streams.recv().await.unwrap();
        c.send(Frame::Data {
            stream_id: 1,
            flags: 0,
            data: vec![1; 100],
        })
        .await;
        assert_eq!(s.inbound.recv().await, Some(Inbound::Data(vec![1; 100])));
        // Read the raw frames: SYN_REPLY, then the two updates.
        let mut buf = vec![0u8; 1024];
        let mut frames = Vec::new();
        while frames.len() < 3 {
            let n = c.io.read(&mut buf).await.unwrap();
            c.dec.push(&buf[..n]);
            while let Some(f) = c.dec.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(
            &frames[1..],
            &[
                Frame::WindowUpdate {
                    stream_id: 1,
                    delta: 100
                },
                Frame::WindowUpdate {
                    stream_id: 0,
                    delta: 100
                }
            ]
        );
    }
}
