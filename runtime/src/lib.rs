//! kubelite-runtime: the node agent (kubelet). Empty until the node-agent issue (#3): pod workers,
//! images, overlay rootfs, pod networking, volumes, logs, exec, probes, and libcontainer in a
//! single-threaded helper process.
