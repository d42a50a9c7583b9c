//! A WebSocket used as a plain byte tunnel (kubectl 1.31+ port-forward carries SPDY/3.1 that
//! way): [`WsTunnel`] is an `AsyncRead + AsyncWrite` whose reads are the payloads of the
//! binary messages received, in order and regardless of how they were split, and whose writes
//! each go out as one binary message. A close frame (or the connection's end) reads as EOF;
//! shutting the writer down sends a close frame.

use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// A byte stream over a WebSocket's binary messages.
pub struct WsTunnel<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last message received.
    pending: bytes::Bytes,
    eof: bool,
}

impl<S> WsTunnel<S> {
    pub fn new(ws: WebSocketStream<S>) -> Self {
        WsTunnel {
            ws,
            pending: bytes::Bytes::new(),
            eof: false,
        }
    }
}

fn io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<S> AsyncRead for WsTunnel<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() && !this.eof {
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => this.pending = b,
                Some(Ok(Message::Close(_)))
                | None
                | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => this.eof = true,
                // Pings are answered by tungstenite itself; nothing else carries bytes.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<S> AsyncWrite for WsTunnel<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let ws = &mut self.ws;
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(io_error)?;
        Pin::new(ws)
            .start_send(Message::Binary(bytes::Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test]
    async fn bytes_through_binary_messages() {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        let mut tunnel = WsTunnel::new(server);
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;

        // Messages split anywhere read back as one byte stream; a ping carries nothing.
        client
            .send(Message::Binary(b"hel".to_vec().into()))
            .await
            .unwrap();
        client
            .send(Message::Ping(b"x".to_vec().into()))
            .await
            .unwrap();
        client
            .send(Message::Binary(b"lo world".to_vec().into()))
            .await
            .unwrap();
        let mut got = vec![0u8; 11];
        tunnel.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"hello world");

        // Each write is one binary message; shutdown sends the close frame.
        tunnel.write_all(b"answer").await.unwrap();
        tunnel.flush().await.unwrap();
        loop {
            match client.next().await {
                Some(Ok(Message::Binary(b))) => {
                    assert_eq!(&b[..], b"answer");
                    break;
                }
                // The pong for the ping above.
                Some(Ok(Message::Pong(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        client.close(None).await.ok();
        let mut rest = Vec::new();
        assert_eq!(tunnel.read_to_end(&mut rest).await.unwrap(), 0);
        tunnel.shutdown().await.unwrap();
    }
}
