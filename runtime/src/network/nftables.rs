//! Outbound NAT for the pod CIDR with nftables, spoken directly over a `NETLINK_NETFILTER`
//! socket (no `nft` binary, no extra crate): one table `ip <name>` holding a `nat` chain at
//! `postrouting` (priority srcnat) with the single rule
//!
//! ```text
//! ip saddr <pod-cidr> ip daddr != <pod-cidr> oifname != "<bridge>" counter masquerade
//! ```
//!
//! The table is (re)built in one atomic transaction (`add table; delete table; add table; add
//! chain; add rule`), so installing is idempotent across agent restarts and never leaves a
//! half-built table. The calling thread must be in the namespace to configure.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

use ipnet::Ipv4Net;
use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::error::NetworkError;

// linux/netlink.h
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;
// linux/netfilter/nfnetlink.h
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFPROTO_IPV4: u8 = 2;
// linux/netfilter/nf_tables.h: messages
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
// attributes
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
// values
const NFT_REG_1: u32 = 1;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_META_OIFNAME: u32 = 7;
const NF_INET_POST_ROUTING: u32 = 4;
const NF_IP_PRI_NAT_SRC: i32 = 100;
const NF_ACCEPT: u32 = 1;
const IFNAMSIZ: usize = 16;

const NAT_CHAIN: &str = "postrouting";

/// Netlink attributes being serialised (native-endian headers, 4-byte aligned).
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }

    fn string(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.put(ty, &data)
    }

    fn be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.put(ty, &v.to_be_bytes())
    }

    fn nested(&mut self, ty: u16, f: impl FnOnce(&mut Attrs)) -> &mut Self {
        let mut inner = Attrs::default();
        f(&mut inner);
        self.put(ty | NLA_F_NESTED, &inner.0)
    }

    /// One element of an `NFTA_RULE_EXPRESSIONS` list.
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Attrs)) -> &mut Self {
        self.nested(NFTA_LIST_ELEM, |e| {
            e.string(NFTA_EXPR_NAME, name);
            let mut d = Attrs::default();
            data(&mut d);
            if !d.0.is_empty() {
                e.put(NFTA_EXPR_DATA | NLA_F_NESTED, &d.0);
            }
        })
    }

    fn value(&mut self, ty: u16, bytes: &[u8]) -> &mut Self {
        self.nested(ty, |v| {
            v.put(NFTA_DATA_VALUE, bytes);
        })
    }

    /// `<ip saddr|daddr> & mask ==/!= network`: payload load, bitwise mask, compare.
    fn match_ip_prefix(&mut self, offset: u32, cidr: Ipv4Net, op: u32) -> &mut Self {
        self.expr("payload", |p| {
            p.be32(NFTA_PAYLOAD_DREG, NFT_REG_1)
                .be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER)
                .be32(NFTA_PAYLOAD_OFFSET, offset)
                .be32(NFTA_PAYLOAD_LEN, 4);
        })
        .expr("bitwise", |b| {
            b.be32(NFTA_BITWISE_SREG, NFT_REG_1)
                .be32(NFTA_BITWISE_DREG, NFT_REG_1)
                .be32(NFTA_BITWISE_LEN, 4)
                .value(NFTA_BITWISE_MASK, &cidr.netmask().octets())
                .value(NFTA_BITWISE_XOR, &[0; 4]);
        })
        .expr("cmp", |c| {
            c.be32(NFTA_CMP_SREG, NFT_REG_1)
                .be32(NFTA_CMP_OP, op)
                .value(NFTA_CMP_DATA, &cidr.network().octets());
        })
    }
}

/// A batch of nftables messages, sent as one transaction.
struct Batch {
    buf: Vec<u8>,
    next_seq: u32,
    /// Sequence numbers that will be acknowledged, with what they do (for error messages).
    acked: BTreeMap<u32, String>,
}

impl Batch {
    fn new() -> Batch {
        let mut b = Batch {
            buf: Vec::new(),
            next_seq: 1,
            acked: BTreeMap::new(),
        };
        b.push_raw(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        b
    }

    fn push_raw(&mut self, ty: u16, flags: u16, family: u8, res_id: u16, attrs: &[u8]) -> u32 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let len = u32::try_from(16 + 4 + attrs.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.buf.extend_from_slice(attrs);
        seq
    }

    fn push(&mut self, what: String, msg: u16, flags: u16, attrs: Attrs) {
        let seq = self.push_raw(
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            NFPROTO_IPV4,
            0,
            &attrs.0,
        );
        self.acked.insert(seq, what);
    }

    fn table(&mut self, msg: u16, name: &str) {
        let mut a = Attrs::default();
        a.string(NFTA_TABLE_NAME, name);
        let (what, flags) = if msg == NFT_MSG_DELTABLE {
            (format!("deleting table ip {name}"), 0)
        } else {
            a.be32(NFTA_TABLE_FLAGS, 0);
            (format!("adding table ip {name}"), NLM_F_CREATE)
        };
        self.push(what, msg, flags, a);
    }

    /// Sends the batch and waits for every acknowledgement; the first error aborts.
    fn commit(mut self) -> Result<(), NetworkError> {
        self.push_raw(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        let fail = |what: &str, e: std::io::Error| NetworkError::Nftables(format!("{what}: {e}"));
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| fail("netlink socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| fail("binding netlink socket", e))?;
        set_recv_timeout(&socket).map_err(|e| fail("netlink socket timeout", e))?;
        socket
            .send_to(&self.buf, &SocketAddr::new(0, 0), 0)
            .map_err(|e| fail("sending nftables batch", e))?;
        while !self.acked.is_empty() {
            let (data, _) = socket
                .recv_from_full()
                .map_err(|e| fail("reading nftables replies", e))?;
            for (seq, errno) in parse_acks(&data) {
                let Some(what) = self.acked.remove(&seq) else {
                    continue;
                };
                if errno != 0 {
                    return Err(NetworkError::Nftables(format!(
                        "{what}: {}",
                        std::io::Error::from_raw_os_error(errno)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A reply never comes only if the kernel is broken; do not hang the agent forever then.
fn set_recv_timeout(socket: &Socket) -> std::io::Result<()> {
    let tv = libc::timeval {
        tv_sec: 30,
        tv_usec: 0,
    };
    // SAFETY: valid socket fd, pointer and length of a timeval.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// (sequence number, positive errno or 0) of every `NLMSG_ERROR` in a datagram.
fn parse_acks(mut data: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let word = |at: usize| [data[at], data[at + 1], data[at + 2], data[at + 3]];
        let len = u32::from_ne_bytes(word(0)) as usize;
        let ty = u16::from_ne_bytes([data[4], data[5]]);
        let seq = u32::from_ne_bytes(word(8));
        if len < 16 || len > data.len() {
            break;
        }
        if ty == NLMSG_ERROR && len >= 20 {
            let code = i32::from_ne_bytes(word(16));
            out.push((seq, code.saturating_abs()));
        }
        let aligned = (len + 3) & !3;
        data = &data[aligned.min(data.len())..];
    }
    out
}

fn oifname_bytes(name: &str) -> [u8; IFNAMSIZ] {
    let mut out = [0u8; IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes().take(IFNAMSIZ - 1)) {
        *o = b;
    }
    out
}

/// Installs (or replaces) table `ip <table>` masquerading traffic from `cidr` that leaves
/// through any interface but `bridge` towards a destination outside `cidr`.
pub(crate) fn install_masquerade(
    table: &str,
    cidr: Ipv4Net,
    bridge: &str,
) -> Result<(), NetworkError> {
    let mut batch = Batch::new();
    batch.table(NFT_MSG_NEWTABLE, table);
    batch.table(NFT_MSG_DELTABLE, table);
    batch.table(NFT_MSG_NEWTABLE, table);

    let mut chain = Attrs::default();
    chain
        .string(NFTA_CHAIN_TABLE, table)
        .string(NFTA_CHAIN_NAME, NAT_CHAIN)
        .nested(NFTA_CHAIN_HOOK, |h| {
            h.be32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING)
                .be32(NFTA_HOOK_PRIORITY, NF_IP_PRI_NAT_SRC as u32);
        })
        .be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
        .string(NFTA_CHAIN_TYPE, "nat");
    batch.push(
        format!("adding chain ip {table} {NAT_CHAIN}"),
        NFT_MSG_NEWCHAIN,
        NLM_F_CREATE,
        chain,
    );

    let cidr = cidr.trunc();
    let mut rule = Attrs::default();
    rule.string(NFTA_RULE_TABLE, table)
        .string(NFTA_RULE_CHAIN, NAT_CHAIN)
        .nested(NFTA_RULE_EXPRESSIONS, |x| {
            x.match_ip_prefix(12, cidr, NFT_CMP_EQ)
                .match_ip_prefix(16, cidr, NFT_CMP_NEQ)
                .expr("meta", |m| {
                    m.be32(NFTA_META_DREG, NFT_REG_1)
                        .be32(NFTA_META_KEY, NFT_META_OIFNAME);
                })
                .expr("cmp", |c| {
                    c.be32(NFTA_CMP_SREG, NFT_REG_1)
                        .be32(NFTA_CMP_OP, NFT_CMP_NEQ)
                        .value(NFTA_CMP_DATA, &oifname_bytes(bridge));
                })
                .expr("counter", |_| {})
                .expr("masq", |_| {});
        });
    batch.push(
        format!("adding masquerade rule for {cidr} to ip {table}"),
        NFT_MSG_NEWRULE,
        NLM_F_CREATE | NLM_F_APPEND,
        rule,
    );
    batch.commit()
}

/// Deletes table `ip <table>` if it exists.
pub(crate) fn remove_table(table: &str) -> Result<(), NetworkError> {
    let mut batch = Batch::new();
    batch.table(NFT_MSG_NEWTABLE, table);
    batch.table(NFT_MSG_DELTABLE, table);
    batch.commit()
}

/// Name of the nftables table of a bridge (one per bridge, so test bridges never touch the
/// tables of a running node).
pub(crate) fn table_name(bridge: &str) -> String {
    format!("kubelite-{bridge}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_nft_attrs_are_aligned_and_acks_parse() {
        let mut a = Attrs::default();
        a.string(1, "abc"); // 4 + 4 bytes
        a.string(1, "abcd"); // 4 + 5 bytes, padded to 12
        assert_eq!(a.0.len(), 8 + 12);
        assert_eq!(oifname_bytes("kubelite0")[..10], *b"kubelite0\0");

        let mut reply = Vec::new();
        for (seq, code) in [(3u32, 0i32), (4, -libc::EEXIST)] {
            reply.extend_from_slice(&36u32.to_ne_bytes());
            reply.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            reply.extend_from_slice(&0u16.to_ne_bytes());
            reply.extend_from_slice(&seq.to_ne_bytes());
            reply.extend_from_slice(&0u32.to_ne_bytes());
            reply.extend_from_slice(&code.to_ne_bytes());
            reply.extend_from_slice(&[0u8; 16]);
        }
        assert_eq!(parse_acks(&reply), vec![(3, 0), (4, libc::EEXIST)]);
    }
}
