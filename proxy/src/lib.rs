//! rkube's service proxy (kube-proxy, iptables mode).
//!
//! Will hold: Service and EndpointSlice reflectors and the translation of
//! them into iptables rules behind a dataplane trait. Nothing lives here yet.
