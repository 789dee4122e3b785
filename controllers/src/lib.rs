//! rkube's controller manager (kube-controller-manager's model).
//!
//! Will hold: one reconcile loop per controller (deployment, replicaset,
//! statefulset, daemonset, job, cronjob, endpoints/endpointslices, namespace,
//! garbage collector, service accounts, node lifecycle, quota, ...), each built
//! on kube-rs reflectors and talking to the cluster only through the API, plus
//! leader election on a `coordination.k8s.io` Lease. Nothing lives here yet.
