//! Real etcd members for tests (placeholder while it is being written).
