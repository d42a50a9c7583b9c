//! `NetworkError`: the one error type of pod networking, with enough context in each variant to
//! tell which step (file, syscall, netlink request, firewall backend) failed.

use std::io;

use ipnet::Ipv4Net;

/// Everything that can go wrong while setting up or tearing down pod networking.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The [`super::NetworkConfig`] cannot be used (bad bridge name, CIDR too small...).
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),
    /// A caller-supplied value (pod uid, hostname...) is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A system call (unshare, setns, mount...) failed.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::errno::Errno,
    },
    /// A route-netlink request failed.
    #[error("netlink: {context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// Every address of the pod CIDR is allocated.
    #[error("no free IP address left in {0}")]
    IpamExhausted(Ipv4Net),
    /// The nftables transaction (NAT rules) failed.
    #[error("nftables: {0}")]
    Nftables(String),
    /// The iptables FORWARD compatibility rules could not be installed.
    #[error("iptables: {0}")]
    Iptables(String),
    /// A helper thread (namespace creation, work inside a namespace) died.
    #[error("namespace helper thread: {0}")]
    Helper(String),
}

impl NetworkError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        NetworkError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn sys(context: impl Into<String>, source: nix::errno::Errno) -> Self {
        NetworkError::Sys {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetworkError::Netlink {
            context: context.into(),
            source,
        }
    }
}

/// The (positive) errno carried by a netlink error reply, if any.
pub(crate) fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}
