//! The controllers, one module each, named like upstream's
//! `pkg/controller/<name>`.

pub mod bootstrap;
pub mod certificates;
pub mod controller_ref;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslice_mirroring;
pub mod events;
pub mod garbage_collector;
pub mod history;
pub mod hostpath_provisioner;
pub mod hpa;
pub mod job;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod owner_index;
pub mod persistentvolume;
pub mod pod_status;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod root_ca_publisher;
pub mod serviceaccount;
pub mod serviceaccount_token;
pub mod statefulset;
pub mod ttl_after_finished;
