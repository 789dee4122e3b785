//! rkube's pod networking: a CNI plugin binary and a flannel-style VXLAN agent.
//!
//! Will hold: the CNI ADD/DEL/CHECK plugin (veth pairs, bridge, host-local
//! IPAM from the node's podCIDR) and the agent that programs VXLAN FDB/ARP
//! entries and routes for other nodes' subnets. Nothing lives here yet.
