//! rkube's scheduler (kube-scheduler's model).
//!
//! Will hold: the scheduling queue (active, back-off, unschedulable), the
//! node/pod snapshot kept by kube-rs reflectors, the filter/score plugin
//! framework with the upstream default plugins, and the binding cycle that
//! binds through `pods/binding`. It talks to the cluster only through the
//! Kubernetes API. Nothing lives here yet.
