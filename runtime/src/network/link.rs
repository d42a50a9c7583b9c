//! Route-netlink (rtnetlink) work: the node bridge with its gateway address, the veth pair of a
//! pod (host side enslaved to the bridge, `eth0` created directly inside the pod's network
//! namespace), and the pod-side configuration (loopback, address, default route) done through a
//! netlink socket opened inside the pod's namespace. No `ip` command is run.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteHeader};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::error::{netlink_errno, NetworkError};
use super::netns;

/// Name of the pod side of the veth pair.
pub(crate) const POD_IFNAME: &str = "eth0";
/// Prefix of host-side veth names ("veth" + 8 hex digits of the pod uid's SHA-256).
pub(crate) const HOST_VETH_PREFIX: &str = "veth";
const DEFAULT_MTU: u32 = 1500;

/// An rtnetlink connection whose background task stops when this is dropped.
pub(crate) struct Rtnl {
    pub handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rtnl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Rtnl {
    /// A connection in the calling thread's network namespace.
    pub(crate) fn connect() -> Result<Rtnl, NetworkError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| NetworkError::io("opening rtnetlink", e))?;
        Ok(Rtnl {
            handle,
            task: tokio::spawn(conn),
        })
    }

    /// A connection whose socket lives in the network namespace `ns`: the socket is opened on
    /// a throw-away thread that joined `ns`; the socket keeps that namespace afterwards.
    pub(crate) async fn connect_in(ns: Arc<File>) -> Result<Rtnl, NetworkError> {
        let runtime = tokio::runtime::Handle::current();
        let (conn, handle) = netns::run_in_net(ns, move || {
            let _guard = runtime.enter();
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|e| NetworkError::io("opening rtnetlink in pod netns", e))?;
            Ok((conn, handle))
        })
        .await?;
        Ok(Rtnl {
            handle,
            task: tokio::spawn(conn),
        })
    }
}

/// Host-side veth name of a pod: stable, at most 15 bytes (IFNAMSIZ - 1).
pub(crate) fn host_veth_name(pod_uid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(pod_uid.as_bytes());
    format!("{HOST_VETH_PREFIX}{}", hex::encode(&digest[..4]))
}

fn ignore(err: rtnetlink::Error, errno: i32, context: &str) -> Result<(), NetworkError> {
    if netlink_errno(&err) == Some(errno) {
        Ok(())
    } else {
        Err(NetworkError::netlink(context, err))
    }
}

/// The link called `name`, if it exists.
pub(crate) async fn get_link(h: &Handle, name: &str) -> Result<Option<LinkMessage>, NetworkError> {
    match h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
    {
        Ok(link) => Ok(link),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(NetworkError::netlink(format!("looking up link {name}"), e)),
    }
}

/// All links of the namespace.
pub(crate) async fn all_links(h: &Handle) -> Result<Vec<LinkMessage>, NetworkError> {
    h.link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| NetworkError::netlink("listing links", e))
}

pub(crate) fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

pub(crate) fn link_mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

pub(crate) fn link_controller(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(c) => Some(*c),
        _ => None,
    })
}

fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().any(|i| {
            matches!(
                i,
                netlink_packet_route::link::LinkInfo::Kind(InfoKind::Bridge)
            )
        }),
        _ => false,
    })
}

/// MTU of the interface carrying the IPv4 default route, if there is one.
async fn uplink_mtu(h: &Handle) -> Result<Option<u32>, NetworkError> {
    let routes: Vec<_> = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(|e| NetworkError::netlink("listing routes", e))?;
    let oif = routes.iter().find_map(|r| {
        let main = r.header.table == RouteHeader::RT_TABLE_MAIN
            || r.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Table(t) if *t == u32::from(RouteHeader::RT_TABLE_MAIN)));
        if r.header.destination_prefix_length != 0 || !main {
            return None;
        }
        r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        })
    });
    let Some(oif) = oif else { return Ok(None) };
    let link = h
        .link()
        .get()
        .match_index(oif)
        .execute()
        .try_next()
        .await
        .map_err(|e| NetworkError::netlink("looking up the uplink", e))?;
    Ok(link.as_ref().and_then(link_mtu))
}

/// The bridge as found or created: its index and MTU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BridgeInfo {
    pub index: u32,
    pub mtu: u32,
}

/// Ensures the bridge exists, is up, and carries `gateway/prefix` as its only IPv4 address.
/// A new bridge gets the uplink's MTU (so pod traffic fits the way out) and a fixed MAC
/// address (so it does not change as ports come and go).
pub(crate) async fn ensure_bridge(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    cidr: Ipv4Net,
) -> Result<BridgeInfo, NetworkError> {
    let link = match get_link(h, name).await? {
        Some(link) => {
            if !is_bridge(&link) {
                return Err(NetworkError::InvalidConfig(format!(
                    "link {name} exists and is not a bridge"
                )));
            }
            link
        }
        None => {
            let mtu = uplink_mtu(h).await?.unwrap_or(DEFAULT_MTU);
            let msg = LinkBridge::new(name)
                .mtu(mtu)
                .address(bridge_mac(name).to_vec())
                .build();
            if let Err(e) = h.link().add(msg).execute().await {
                ignore(e, libc::EEXIST, &format!("creating bridge {name}"))?;
            }
            get_link(h, name).await?.ok_or_else(|| {
                NetworkError::InvalidConfig(format!("bridge {name} vanished after creation"))
            })?
        }
    };
    let index = link.header.index;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("setting {name} up"), e))?;
    set_only_address(h, index, gateway, cidr.prefix_len(), name).await?;
    Ok(BridgeInfo {
        index,
        mtu: link_mtu(&link).unwrap_or(DEFAULT_MTU),
    })
}

/// Locally administered, unicast MAC derived from the bridge name.
fn bridge_mac(name: &str) -> [u8; 6] {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    [0x02, 0x6b, d[0], d[1], d[2], d[3]]
}

async fn set_only_address(
    h: &Handle,
    index: u32,
    ip: Ipv4Addr,
    prefix: u8,
    name: &str,
) -> Result<(), NetworkError> {
    let mut req = h.address().get().set_link_index_filter(index).execute();
    let mut present = false;
    let mut stale = Vec::new();
    while let Some(msg) = req
        .try_next()
        .await
        .map_err(|e| NetworkError::netlink(format!("listing addresses of {name}"), e))?
    {
        if msg.header.index != index
            || msg.header.family != netlink_packet_route::AddressFamily::Inet
        {
            continue;
        }
        let addr = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(v4)) | AddressAttribute::Address(IpAddr::V4(v4)) => {
                Some(*v4)
            }
            _ => None,
        });
        if addr == Some(ip) && msg.header.prefix_len == prefix {
            present = true;
        } else {
            stale.push(msg);
        }
    }
    for msg in stale {
        if let Err(e) = h.address().del(msg).execute().await {
            ignore(
                e,
                libc::EADDRNOTAVAIL,
                &format!("removing old address of {name}"),
            )?;
        }
    }
    if !present {
        if let Err(e) = h
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
        {
            ignore(e, libc::EEXIST, &format!("adding {ip}/{prefix} to {name}"))?;
        }
    }
    Ok(())
}

/// Creates the veth pair of a pod: `host_name` on the host, enslaved to the bridge and up;
/// [`POD_IFNAME`] created directly inside the namespace `pod_ns` (down, configured later).
pub(crate) async fn create_veth(
    h: &Handle,
    host_name: &str,
    bridge: BridgeInfo,
    pod_ns: &File,
) -> Result<(), NetworkError> {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(POD_IFNAME)
        .mtu(bridge.mtu)
        .setns_by_fd(pod_ns.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_name)
        .mtu(bridge.mtu)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    h.link()
        .add(msg)
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("creating veth {host_name}"), e))?;
    let link = get_link(h, host_name)
        .await?
        .ok_or_else(|| NetworkError::Helper(format!("veth {host_name} vanished after creation")))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(link.header.index)
                .controller(bridge.index)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("attaching {host_name} to the bridge"), e))
}

/// Deletes a link by name; a missing link is fine. Returns whether it existed.
pub(crate) async fn delete_link(h: &Handle, name: &str) -> Result<bool, NetworkError> {
    let Some(link) = get_link(h, name).await? else {
        return Ok(false);
    };
    match h.link().del(link.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) => ignore(e, libc::ENODEV, &format!("deleting {name}")).map(|()| false),
    }
}

/// Inside the pod namespace (through `pod` opened there): loopback up, `eth0` up with
/// `ip/prefix`, default route via the gateway.
pub(crate) async fn configure_pod_side(
    pod: &Handle,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetworkError> {
    let lo = get_link(pod, "lo")
        .await?
        .ok_or_else(|| NetworkError::Helper("no loopback in the pod netns".into()))?;
    pod.link()
        .set(LinkUnspec::new_with_index(lo.header.index).up().build())
        .execute()
        .await
        .map_err(|e| NetworkError::netlink("setting lo up", e))?;
    let eth = get_link(pod, POD_IFNAME)
        .await?
        .ok_or_else(|| NetworkError::Helper(format!("no {POD_IFNAME} in the pod netns")))?;
    let index = eth.header.index;
    if let Err(e) = pod
        .address()
        .add(index, IpAddr::V4(ip), prefix)
        .execute()
        .await
    {
        ignore(
            e,
            libc::EEXIST,
            &format!("adding {ip}/{prefix} to {POD_IFNAME}"),
        )?;
    }
    pod.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("setting {POD_IFNAME} up"), e))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .build();
    if let Err(e) = pod.route().add(route).execute().await {
        ignore(e, libc::EEXIST, "adding the default route")?;
    }
    Ok(())
}
