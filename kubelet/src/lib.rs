//! rkube's kubelet.
//!
//! Will hold: node registration and heartbeats (Node status and Lease), the
//! pod lifecycle state machine, and the CRI client that runs pods through
//! containerd and runc. Nothing lives here yet.
