//! Test support shared by this crate's tests, e2e tests and benchmarks
//! (feature `testing`): the backend conformance suite and a harness that
//! runs real etcd members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
pub mod etcd_harness;
