//! SPDY/3.1 framing, as much as `kubectl exec`/`attach`/`port-forward` need (client-go's
//! `httpstream/spdy` over `moby/spdystream` over `golang.org/x/net/spdy`; the connection
//! around it is [`super::spdy_session`]): control frames (SYN_STREAM,
//! SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE) and DATA frames, with
//! the zlib-compressed name/value header blocks (SPDY/3 dictionary; one compression context
//! per connection and direction, flushed with SYNC_FLUSH after every block).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::sync::OnceLock;

pub const FLAG_FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// The largest frame accepted (the length field has 24 bits).
const MAX_FRAME: usize = 1 << 24;

/// Name/value pairs of a header block (names lower case).
pub type HeaderBlock = Vec<(String, String)>;

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: HeaderBlock,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: HeaderBlock,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping(u32),
    GoAway {
        last_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: HeaderBlock,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Vec<u8>,
    },
    /// A control frame of a type not known here (ignored, as the spec says).
    Unknown(u16),
}

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1).
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: [&str; 65] = [
            "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
            "accept-encoding", "accept-language", "accept-ranges", "age", "allow",
            "authorization", "cache-control", "connection", "content-base", "content-encoding",
            "content-language", "content-length", "content-location", "content-md5",
            "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
            "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
            "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate",
            "proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer",
            "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
            "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1",
            "url", "public", "set-cookie", "keep-alive", "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
            "501 Not Implemented503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
            "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

/// Encodes frames; owns the connection's outbound header compression context.
pub struct Encoder {
    z: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        let mut z = Compress::new(Compression::default(), true);
        // A fresh zlib stream accepts the dictionary before any input.
        let _ = z.set_dictionary(dictionary());
        Encoder { z }
    }

    fn header_block(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (n, v) in headers {
            raw.extend_from_slice(&(n.len() as u32).to_be_bytes());
            raw.extend_from_slice(n.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            out.reserve(256);
            let before_in = self.z.total_in();
            let _ = self.z.compress_vec(input, &mut out, FlushCompress::Sync);
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            // Done once all input is consumed and the flush fit (room left over).
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }

    /// The bytes of one frame.
    pub fn encode(&mut self, frame: &Frame) -> Vec<u8> {
        match frame {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let mut b = Vec::with_capacity(8 + data.len());
                b.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                push_flags_len(&mut b, *flags, data.len());
                b.extend_from_slice(data);
                b
            }
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                p.extend_from_slice(&(associated & 0x7fff_ffff).to_be_bytes());
                p.push((priority & 0x7) << 5);
                p.push(0);
                p.extend(self.header_block(headers));
                control(SYN_STREAM, *flags, &p)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend(self.header_block(headers));
                control(SYN_REPLY, *flags, &p)
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                p.extend(self.header_block(headers));
                control(HEADERS, *flags, &p)
            }
            Frame::RstStream { stream_id, status } => {
                control(RST_STREAM, 0, &two(*stream_id & 0x7fff_ffff, *status))
            }
            Frame::Settings { flags, entries } => {
                let mut p = (entries.len() as u32).to_be_bytes().to_vec();
                for (f, id, v) in entries {
                    p.push(*f);
                    p.extend_from_slice(&id.to_be_bytes()[1..]);
                    p.extend_from_slice(&v.to_be_bytes());
                }
                control(SETTINGS, *flags, &p)
            }
            Frame::Ping(id) => control(PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_stream_id,
                status,
            } => control(GOAWAY, 0, &two(*last_stream_id & 0x7fff_ffff, *status)),
            Frame::WindowUpdate { stream_id, delta } => control(
                WINDOW_UPDATE,
                0,
                &two(*stream_id & 0x7fff_ffff, *delta & 0x7fff_ffff),
            ),
            Frame::Unknown(t) => control(*t, 0, &[]),
        }
    }
}

fn two(a: u32, b: u32) -> Vec<u8> {
    let mut p = a.to_be_bytes().to_vec();
    p.extend_from_slice(&b.to_be_bytes());
    p
}

fn push_flags_len(b: &mut Vec<u8>, flags: u8, len: usize) {
    b.push(flags);
    b.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + payload.len());
    b.extend_from_slice(&(0x8000u16 | 3).to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    push_flags_len(&mut b, flags, payload.len());
    b.extend_from_slice(payload);
    b
}

/// Decodes frames from a byte stream that arrives in arbitrary pieces; owns the connection's
/// inbound header decompression context.
pub struct Decoder {
    buf: Vec<u8>,
    z: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            buf: Vec::new(),
            z: Decompress::new(true),
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed. An error is fatal for
    /// the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = (be32(&self.buf[4..8]) & 0x00ff_ffff) as usize;
        if len >= MAX_FRAME {
            return Err("frame too large".into());
        }
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let head: [u8; 8] = self.buf[..8].try_into().unwrap_or_default();
        let payload: Vec<u8> = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: be32(&head[..4]) & 0x7fff_ffff,
                flags,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != 3 {
            return Err(format!("unsupported SPDY version {version}"));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize| {
            if payload.len() < n {
                Err(format!("short control frame of type {kind}"))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(10)?;
                Frame::SynStream {
                    stream_id: be32(&payload[0..4]) & 0x7fff_ffff,
                    associated: be32(&payload[4..8]) & 0x7fff_ffff,
                    priority: payload[8] >> 5,
                    flags,
                    headers: self.header_block(&payload[10..])?,
                }
            }
            SYN_REPLY | HEADERS => {
                need(4)?;
                let stream_id = be32(&payload[0..4]) & 0x7fff_ffff;
                let headers = self.header_block(&payload[4..])?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            RST_STREAM => {
                need(8)?;
                Frame::RstStream {
                    stream_id: be32(&payload[0..4]) & 0x7fff_ffff,
                    status: be32(&payload[4..8]),
                }
            }
            SETTINGS => {
                need(4)?;
                let n = be32(&payload[0..4]) as usize;
                need(4 + n.saturating_mul(8))?;
                let entries = (0..n)
                    .map(|i| {
                        let e = &payload[4 + 8 * i..12 + 8 * i];
                        (e[0], be32(e) & 0x00ff_ffff, be32(&e[4..]))
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            PING => {
                need(4)?;
                Frame::Ping(be32(&payload[0..4]))
            }
            GOAWAY => {
                need(4)?;
                Frame::GoAway {
                    last_stream_id: be32(&payload[0..4]) & 0x7fff_ffff,
                    status: if payload.len() >= 8 {
                        be32(&payload[4..8])
                    } else {
                        0
                    },
                }
            }
            WINDOW_UPDATE => {
                need(8)?;
                Frame::WindowUpdate {
                    stream_id: be32(&payload[0..4]) & 0x7fff_ffff,
                    delta: be32(&payload[4..8]) & 0x7fff_ffff,
                }
            }
            other => Frame::Unknown(other),
        };
        Ok(Some(frame))
    }

    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            out.reserve(1024);
            let before = self.z.total_in();
            match self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => {
                    return Err("header compression stream ended".into());
                }
                Ok(_) => {}
                Err(e) => {
                    if e.needs_dictionary().is_some() {
                        self.z
                            .set_dictionary(dictionary())
                            .map_err(|e| format!("header dictionary: {e}"))?;
                    } else {
                        return Err(format!("header block: {e}"));
                    }
                }
            }
            let used = (self.z.total_in() - before) as usize;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            if out.len() > MAX_FRAME {
                return Err("header block too large".into());
            }
        }
    }

    fn header_block(&mut self, block: &[u8]) -> Result<HeaderBlock, String> {
        let raw = self.inflate(block)?;
        let mut p = &raw[..];
        let mut take = |n: usize| -> Result<&[u8], String> {
            if p.len() < n {
                return Err("truncated header block".into());
            }
            let (a, b) = p.split_at(n);
            p = b;
            Ok(a)
        };
        let count = be32(take(4)?);
        let mut headers = Vec::new();
        for _ in 0..count {
            let n = be32(take(4)?) as usize;
            let name = String::from_utf8_lossy(take(n)?).to_lowercase();
            let n = be32(take(4)?) as usize;
            let value = String::from_utf8_lossy(take(n)?).into_owned();
            headers.push((name, value));
        }
        Ok(headers)
    }
}

/// The first value of header `name` in a block.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        // Multiple values are NUL-separated in SPDY/3.
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_spdy3() {
        assert_eq!(dictionary().len(), 1423);
        let mut z = Compress::new(Compression::default(), true);
        // The dictionary id every SPDY/3 header stream announces (0x38 0xea 0xe3 0xc6 0xa7 0xc2).
        assert_eq!(z.set_dictionary(dictionary()).unwrap(), 0xe3c6_a7c2);
    }

    fn hb(pairs: &[(&str, &str)]) -> HeaderBlock {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn frames_round_trip_split_anywhere() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: hb(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: hb(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 3,
                flags: 0,
                headers: vec![],
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            },
            Frame::Ping(7),
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 100,
            },
            Frame::RstStream {
                stream_id: 1,
                status: 5,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536)],
            },
            Frame::GoAway {
                last_stream_id: 3,
                status: 0,
            },
        ];
        let mut enc = Encoder::new();
        let bytes: Vec<u8> = frames.iter().flat_map(|f| enc.encode(f)).collect();
        // The observed first bytes of kubectl's stream.
        assert_eq!(&bytes[..4], &[0x80, 0x03, 0x00, 0x01]);
        for split in [1usize, 3, 7, 1000] {
            let mut dec = Decoder::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(split) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "split {split}");
        }
    }

    #[test]
    fn header_lookup() {
        let h = hb(&[("streamtype", "data"), ("port", "80")]);
        assert_eq!(header(&h, "streamType"), Some("data"));
        assert_eq!(header(&h, "requestID"), None);
    }
}
