//! Test support shared by this crate's tests, e2e tests and benchmarks
//! (feature `testing`): the backend conformance suite and a harness that
//! runs real etcd members.

pub mod conformance;
pub mod etcd_harness;
