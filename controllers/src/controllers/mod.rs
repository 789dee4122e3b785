//! The controllers, one module each, named like upstream's
//! `pkg/controller/<name>`.

pub mod controller_ref;
pub mod cronjob;
pub mod deployment;
pub mod garbage_collector;
pub mod job;
pub mod namespace;
pub mod pod_status;
pub mod replicaset;
pub mod root_ca_publisher;
pub mod serviceaccount;
pub mod ttl_after_finished;
pub mod endpoints;
pub mod events;
pub mod history;
pub mod statefulset;
pub mod daemonset;
pub mod endpointslice;
pub mod endpointslice_mirroring;
pub mod podgc;
pub mod node_lifecycle;
pub mod node_ipam;
pub mod resourcequota;
pub mod disruption;
pub mod bootstrap;
pub mod serviceaccount_token;
pub mod hpa;
pub mod persistentvolume;
pub mod hostpath_provisioner;
