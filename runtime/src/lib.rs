//! kubelite-runtime: the node agent (kubelet). It runs the pods bound to this node as real Linux
//! containers: images (content store, layer unpacking), overlay root filesystems, pod networking
//! (netns, bridge, veth, IPAM, NAT), volumes, the OCI runtime spec, and the container helper
//! process ("shim") that alone calls libcontainer (it forks from its caller, so it must run in
//! a single-threaded process of its own).

pub mod agent;
pub mod images;
pub mod network;
pub mod oci;
pub mod shim;
pub mod volumes;
