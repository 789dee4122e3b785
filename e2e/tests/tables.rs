//! `kubectl get <kind>` and `kubectl get <kind> -o wide` for every built-in
//! kind rkube serves: the headers kubectl prints must be upstream's, from
//! the column definitions of kube-apiserver's printers
//! (`pkg/printers/internalversion`), the aggregator's APIService table and
//! the default `NAME`/`CREATED AT` table of kinds without a printer; and
//! representative rows print upstream's values.
//!
//! The expected columns below are written from upstream's printers, not
//! from rkube's, so the test fails if either drifts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use rkube_e2e::cluster::{Backend, TestCluster};

/// A column as upstream defines it: header and priority (1 = `-o wide` only).
type Column = (&'static str, u8);

const NAME_AGE: &[Column] = &[("Name", 0), ("Age", 0)];
/// Kinds without a printer: upstream's default table.
const DEFAULT: &[Column] = &[("Name", 0), ("Created At", 0)];
const WORKLOAD_WIDE: &[Column] = &[("Containers", 1), ("Images", 1), ("Selector", 1)];

/// (resource as given to kubectl, namespaced, columns).
fn expected() -> Vec<(&'static str, bool, Vec<Column>)> {
    let cat = |a: &[Column], b: &[Column]| [a, b].concat();
    vec![
        (
            "pods",
            true,
            vec![
                ("Name", 0),
                ("Ready", 0),
                ("Status", 0),
                ("Restarts", 0),
                ("Age", 0),
                ("IP", 1),
                ("Node", 1),
                ("Nominated Node", 1),
                ("Readiness Gates", 1),
            ],
        ),
        (
            "podtemplates",
            true,
            vec![("Name", 0), ("Containers", 0), ("Images", 0), ("Pod Labels", 0)],
        ),
        (
            "poddisruptionbudgets",
            true,
            vec![
                ("Name", 0),
                ("Min Available", 0),
                ("Max Unavailable", 0),
                ("Allowed Disruptions", 0),
                ("Age", 0),
            ],
        ),
        (
            "replicationcontrollers",
            true,
            cat(
                &[("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0)],
                WORKLOAD_WIDE,
            ),
        ),
        (
            "replicasets",
            true,
            cat(
                &[("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0)],
                WORKLOAD_WIDE,
            ),
        ),
        (
            "daemonsets",
            true,
            cat(
                &[
                    ("Name", 0),
                    ("Desired", 0),
                    ("Current", 0),
                    ("Ready", 0),
                    ("Up-to-date", 0),
                    ("Available", 0),
                    ("Node Selector", 0),
                    ("Age", 0),
                ],
                WORKLOAD_WIDE,
            ),
        ),
        (
            "jobs",
            true,
            cat(
                &[
                    ("Name", 0),
                    ("Status", 0),
                    ("Completions", 0),
                    ("Duration", 0),
                    ("Age", 0),
                ],
                WORKLOAD_WIDE,
            ),
        ),
        (
            "cronjobs",
            true,
            cat(
                &[
                    ("Name", 0),
                    ("Schedule", 0),
                    ("Timezone", 0),
                    ("Suspend", 0),
                    ("Active", 0),
                    ("Last Schedule", 0),
                    ("Age", 0),
                ],
                WORKLOAD_WIDE,
            ),
        ),
        (
            "services",
            true,
            vec![
                ("Name", 0),
                ("Type", 0),
                ("Cluster-IP", 0),
                ("External-IP", 0),
                ("Port(s)", 0),
                ("Age", 0),
                ("Selector", 1),
            ],
        ),
        (
            "ingresses",
            true,
            vec![
                ("Name", 0),
                ("Class", 0),
                ("Hosts", 0),
                ("Address", 0),
                ("Ports", 0),
                ("Age", 0),
            ],
        ),
        (
            "ingressclasses",
            false,
            vec![("Name", 0), ("Controller", 0), ("Parameters", 0), ("Age", 0)],
        ),
        (
            "statefulsets",
            true,
            vec![("Name", 0), ("Ready", 0), ("Age", 0), ("Containers", 1), ("Images", 1)],
        ),
        ("endpoints", true, vec![("Name", 0), ("Endpoints", 0), ("Age", 0)]),
        (
            "nodes",
            false,
            vec![
                ("Name", 0),
                ("Status", 0),
                ("Roles", 0),
                ("Age", 0),
                ("Version", 0),
                ("Internal-IP", 1),
                ("External-IP", 1),
                ("OS-Image", 1),
                ("Kernel-Version", 1),
                ("Container-Runtime", 1),
            ],
        ),
        (
            "events",
            true,
            vec![
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1),
            ],
        ),
        (
            "events.events.k8s.io",
            true,
            vec![
                ("Last Seen", 0),
                ("Type", 0),
                ("Reason", 0),
                ("Object", 0),
                ("Subobject", 1),
                ("Source", 1),
                ("Message", 0),
                ("First Seen", 1),
                ("Count", 1),
                ("Name", 1),
            ],
        ),
        ("namespaces", false, vec![("Name", 0), ("Status", 0), ("Age", 0)]),
        ("secrets", true, vec![("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]),
        ("serviceaccounts", true, vec![("Name", 0), ("Secrets", 0), ("Age", 0)]),
        (
            "persistentvolumes",
            false,
            vec![
                ("Name", 0),
                ("Capacity", 0),
                ("Access Modes", 0),
                ("Reclaim Policy", 0),
                ("Status", 0),
                ("Claim", 0),
                ("StorageClass", 0),
                ("VolumeAttributesClass", 0),
                ("Reason", 0),
                ("Age", 0),
                ("VolumeMode", 1),
            ],
        ),
        (
            "persistentvolumeclaims",
            true,
            vec![
                ("Name", 0),
                ("Status", 0),
                ("Volume", 0),
                ("Capacity", 0),
                ("Access Modes", 0),
                ("StorageClass", 0),
                ("VolumeAttributesClass", 0),
                ("Age", 0),
                ("VolumeMode", 1),
            ],
        ),
        (
            "deployments",
            true,
            cat(
                &[
                    ("Name", 0),
                    ("Ready", 0),
                    ("Up-to-date", 0),
                    ("Available", 0),
                    ("Age", 0),
                ],
                WORKLOAD_WIDE,
            ),
        ),
        (
            "horizontalpodautoscalers",
            true,
            vec![
                ("Name", 0),
                ("Reference", 0),
                ("Targets", 0),
                ("MinPods", 0),
                ("MaxPods", 0),
                ("Replicas", 0),
                ("Age", 0),
            ],
        ),
        ("configmaps", true, vec![("Name", 0), ("Data", 0), ("Age", 0)]),
        (
            "networkpolicies",
            true,
            vec![("Name", 0), ("Pod-Selector", 0), ("Age", 0)],
        ),
        (
            "rolebindings",
            true,
            vec![
                ("Name", 0),
                ("Role", 0),
                ("Age", 0),
                ("Users", 1),
                ("Groups", 1),
                ("ServiceAccounts", 1),
            ],
        ),
        (
            "clusterrolebindings",
            false,
            vec![
                ("Name", 0),
                ("Role", 0),
                ("Age", 0),
                ("Users", 1),
                ("Groups", 1),
                ("ServiceAccounts", 1),
            ],
        ),
        (
            "certificatesigningrequests",
            false,
            vec![
                ("Name", 0),
                ("Age", 0),
                ("SignerName", 0),
                ("Requestor", 0),
                ("RequestedDuration", 0),
                ("Condition", 0),
            ],
        ),
        ("leases", true, vec![("Name", 0), ("Holder", 0), ("Age", 0)]),
        (
            "storageclasses",
            false,
            vec![
                ("Name", 0),
                ("Provisioner", 0),
                ("ReclaimPolicy", 0),
                ("VolumeBindingMode", 0),
                ("AllowVolumeExpansion", 0),
                ("Age", 0),
            ],
        ),
        (
            "volumeattributesclasses",
            false,
            vec![("Name", 0), ("DriverName", 0), ("Age", 0)],
        ),
        (
            "controllerrevisions",
            true,
            vec![("Name", 0), ("Controller", 0), ("Revision", 0), ("Age", 0)],
        ),
        (
            "resourcequotas",
            true,
            vec![("Name", 0), ("Request", 0), ("Limit", 0), ("Age", 0)],
        ),
        (
            "priorityclasses",
            false,
            vec![
                ("Name", 0),
                ("Value", 0),
                ("Global-Default", 0),
                ("Age", 0),
                ("PreemptionPolicy", 0),
            ],
        ),
        ("runtimeclasses", false, vec![("Name", 0), ("Handler", 0), ("Age", 0)]),
        (
            "volumeattachments",
            false,
            vec![
                ("Name", 0),
                ("Attacher", 0),
                ("PV", 0),
                ("Node", 0),
                ("Attached", 0),
                ("Age", 0),
            ],
        ),
        (
            "endpointslices",
            true,
            vec![
                ("Name", 0),
                ("AddressType", 0),
                ("Ports", 0),
                ("Endpoints", 0),
                ("Age", 0),
            ],
        ),
        ("csinodes", false, vec![("Name", 0), ("Drivers", 0), ("Age", 0)]),
        (
            "csidrivers",
            false,
            vec![
                ("Name", 0),
                ("AttachRequired", 0),
                ("PodInfoOnMount", 0),
                ("StorageCapacity", 0),
                ("TokenRequests", 0),
                ("RequiresRepublish", 0),
                ("Modes", 0),
                ("Age", 0),
            ],
        ),
        (
            "csistoragecapacities",
            true,
            vec![("Name", 0), ("StorageClassName", 0), ("Capacity", 0)],
        ),
        (
            "mutatingwebhookconfigurations",
            false,
            vec![("Name", 0), ("Webhooks", 0), ("Age", 0)],
        ),
        (
            "validatingwebhookconfigurations",
            false,
            vec![("Name", 0), ("Webhooks", 0), ("Age", 0)],
        ),
        (
            "validatingadmissionpolicies",
            false,
            vec![("Name", 0), ("Validations", 0), ("ParamKind", 0), ("Age", 0)],
        ),
        (
            "validatingadmissionpolicybindings",
            false,
            vec![("Name", 0), ("PolicyName", 0), ("ParamRef", 0), ("Age", 0)],
        ),
        (
            "mutatingadmissionpolicies",
            false,
            vec![("Name", 0), ("Mutations", 0), ("ParamKind", 0), ("Age", 0)],
        ),
        (
            "mutatingadmissionpolicybindings",
            false,
            vec![("Name", 0), ("PolicyName", 0), ("ParamRef", 0), ("Age", 0)],
        ),
        (
            "flowschemas",
            false,
            vec![
                ("Name", 0),
                ("PriorityLevel", 0),
                ("MatchingPrecedence", 0),
                ("DistinguisherMethod", 0),
                ("Age", 0),
                ("MissingPL", 0),
            ],
        ),
        (
            "prioritylevelconfigurations",
            false,
            vec![
                ("Name", 0),
                ("Type", 0),
                ("NominalConcurrencyShares", 0),
                ("Queues", 0),
                ("HandSize", 0),
                ("QueueLengthLimit", 0),
                ("Age", 0),
            ],
        ),
        ("deviceclasses", false, NAME_AGE.to_vec()),
        ("resourceclaims", true, vec![("Name", 0), ("State", 0), ("Age", 0)]),
        ("resourceclaimtemplates", true, NAME_AGE.to_vec()),
        (
            "resourceslices",
            false,
            vec![("Name", 0), ("Node", 0), ("Driver", 0), ("Pool", 0), ("Age", 0)],
        ),
        ("servicecidrs", false, vec![("Name", 0), ("CIDRs", 0), ("Age", 0)]),
        ("ipaddresses", false, vec![("Name", 0), ("ParentRef", 0)]),
        // kube-aggregator's table.
        (
            "apiservices",
            false,
            vec![("Name", 0), ("Service", 0), ("Available", 0), ("Age", 0)],
        ),
        (
            "componentstatuses",
            false,
            vec![("Name", 0), ("Status", 0), ("Message", 0), ("Error", 0)],
        ),
        // No printer upstream: the default table.
        ("limitranges", true, DEFAULT.to_vec()),
        ("roles", true, DEFAULT.to_vec()),
        ("clusterroles", false, DEFAULT.to_vec()),
        ("customresourcedefinitions", false, DEFAULT.to_vec()),
    ]
}

/// One object of every kind that has none at start, in namespace `tables`.
const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: tables}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: tables}
data: {a: "1", b: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: tables}
stringData: {token: x}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: tables}
---
apiVersion: v1
kind: Endpoints
metadata: {name: ep, namespace: tables}
subsets:
- addresses: [{ip: 10.0.0.1}]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Event
metadata: {name: ev, namespace: tables}
involvedObject: {kind: Pod, name: web, namespace: tables}
reason: Started
message: Started container web
type: Normal
source: {component: kubelet}
firstTimestamp: "2024-01-01T00:00:00Z"
lastTimestamp: "2024-01-01T00:00:00Z"
count: 1
---
apiVersion: v1
kind: LimitRange
metadata: {name: lr, namespace: tables}
spec:
  limits: [{type: Container, default: {cpu: 500m}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim, namespace: tables}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: vol}
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/vol}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: tables}
spec:
  containers: [{name: web, image: nginx:1.25}]
---
apiVersion: v1
kind: PodTemplate
metadata: {name: tmpl, namespace: tables}
template:
  metadata: {labels: {app: tmpl}}
  spec:
    containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc, namespace: tables}
spec:
  replicas: 1
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota, namespace: tables}
spec:
  hard: {requests.cpu: "2", limits.cpu: "4"}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: tables}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
---
apiVersion: apps/v1
kind: ControllerRevision
metadata: {name: rev, namespace: tables}
revision: 3
data: {spec: {}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds, namespace: tables}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: deploy, namespace: tables}
spec:
  replicas: 2
  selector: {matchLabels: {app: deploy}}
  template:
    metadata: {labels: {app: deploy}}
    spec:
      containers: [{name: web, image: nginx:1.25}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs, namespace: tables}
spec:
  replicas: 1
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sts, namespace: tables}
spec:
  serviceName: svc
  replicas: 1
  selector: {matchLabels: {app: sts}}
  template:
    metadata: {labels: {app: sts}}
    spec:
      containers: [{name: c, image: busybox}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa, namespace: tables}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: deploy}
  minReplicas: 1
  maxReplicas: 5
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cron, namespace: tables}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: job, namespace: tables}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: example.com/ingress}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ing, namespace: tables}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: tables}
spec:
  podSelector: {matchLabels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: IPAddress
metadata: {name: 10.96.0.50}
spec:
  parentRef: {group: "", resource: services, name: svc, namespace: tables}
---
apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata: {name: extra}
spec: {cidrs: [10.100.0.0/16]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb, namespace: tables}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: tables}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readers, namespace: tables}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}
- {kind: ServiceAccount, name: robot, namespace: tables}
---
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: csi.example.com}
spec: {attachRequired: true, podInfoOnMount: false}
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata: {name: node-a}
spec:
  drivers: [{name: csi.example.com, nodeID: node-a}]
---
apiVersion: storage.k8s.io/v1
kind: CSIStorageCapacity
metadata: {name: cap, namespace: tables}
storageClassName: fast
capacity: 10Gi
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: csi.example.com
---
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {name: va}
spec:
  attacher: csi.example.com
  nodeName: node-a
  source: {persistentVolumeName: vol}
---
apiVersion: storage.k8s.io/v1
kind: VolumeAttributesClass
metadata: {name: gold}
driverName: csi.example.com
parameters: {iops: "1000"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: vap}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations: [{expression: "object.spec.replicas <= 5"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: vapb}
spec:
  policyName: vap
  validationActions: [Deny]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: map}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration: {expression: "Object{metadata: Object.metadata{labels: {'m': 'y'}}}"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: mapb}
spec: {policyName: map}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: vwh}
webhooks:
- name: check.example.com
  clientConfig: {url: "https://hooks.example.com/check"}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  rules: [{apiGroups: [example.com], apiVersions: [v1], operations: [CREATE], resources: [widgets]}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: mwh}
webhooks:
- name: fill.example.com
  clientConfig: {url: "https://hooks.example.com/fill"}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  rules: [{apiGroups: [example.com], apiVersions: [v1], operations: [CREATE], resources: [widgets]}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object}}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: lock, namespace: tables}
spec: {holderIdentity: node-a}
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: slice, namespace: tables}
addressType: IPv4
endpoints: [{addresses: [10.0.0.2]}]
ports: [{port: 80}]
---
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: gpu}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: claim, namespace: tables}
spec:
  devices:
    requests: [{name: r, exactly: {deviceClassName: gpu}}]
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: claim-tmpl, namespace: tables}
spec:
  spec:
    devices:
      requests: [{name: r, exactly: {deviceClassName: gpu}}]
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata: {name: slice-a}
spec:
  driver: gpu.example.com
  nodeName: node-a
  pool: {name: pool-a, generation: 1, resourceSliceCount: 1}
  devices: [{name: gpu-0}]
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {name: batch}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 10
    limitResponse:
      type: Queue
      queuing: {queues: 16, handSize: 4, queueLengthLimit: 50}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: batch-jobs}
spec:
  priorityLevelConfiguration: {name: batch}
  matchingPrecedence: 1000
  distinguisherMethod: {type: ByUser}
  rules:
  - subjects: [{kind: Group, group: {name: "system:authenticated"}}]
    resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"]}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1.example.com}
spec:
  group: example.com
  version: v1
  groupPriorityMinimum: 1000
  versionPriority: 15
"#;

/// A PEM certificate request, for a CertificateSigningRequest.
fn csr_manifest() -> String {
    let out = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "/dev/null",
            "-subj",
            "/CN=tables",
        ])
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD.encode(&out.stdout);
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: csr}}\nspec:\n  request: {pem}\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [client auth]\n"
    )
}

/// The header row of kubectl's table output, split into column names
/// (kubectl separates columns by at least three spaces; names may hold one).
fn header(out: &str) -> Vec<String> {
    let first = out.lines().next().unwrap_or_default();
    first
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The row starting with `name`, split like [`header`].
fn row(out: &str, name: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name}:\n{out}"));
    line.split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn get(c: &TestCluster, resource: &str, namespaced: bool, wide: bool) -> String {
    let mut args = vec!["get", resource];
    if namespaced {
        args.extend(["-n", "tables"]);
    }
    if wide {
        args.extend(["-o", "wide"]);
    }
    c.ok(&args).unwrap_or_else(|e| panic!("kubectl get {resource}: {e}"))
}

#[tokio::test]
async fn every_kind_prints_upstream_columns() {
    let c = TestCluster::start(Backend::Embedded).await.expect("cluster starts");
    let out = c.kubectl_with(&["create", "-f", "-"], Some(MANIFEST), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = c.kubectl_with(&["create", "-f", "-"], Some(&csr_manifest()), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Every kind kubectl lists is covered.
    let served = c.ok(&["api-resources", "--verbs=list", "-o", "name"]).unwrap();
    let expected = expected();
    for r in served.lines() {
        let short = r.split('.').next().unwrap();
        let covered = expected
            .iter()
            .any(|(res, _, _)| *res == r || (*res == short && !r.starts_with("events.events")));
        assert!(covered, "{r} has no expected columns here");
    }

    let mut failures = Vec::new();
    for (resource, namespaced, columns) in &expected {
        let upper = |p: u8| -> Vec<String> {
            columns
                .iter()
                .filter(|(_, prio)| *prio <= p)
                .map(|(n, _)| n.to_uppercase())
                .collect()
        };
        for (wide, want) in [(false, upper(0)), (true, upper(1))] {
            let got = header(&get(&c, resource, *namespaced, wide));
            if got != want {
                failures.push(format!("{resource} (wide: {wide}): got {got:?}, want {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Representative values.
    let cells =
        |resource: &str, namespaced: bool, wide: bool, name: &str| row(&get(&c, resource, namespaced, wide), name);
    let pod = cells("pods", true, true, "web");
    assert_eq!(&pod[1..4], ["0/1", "Pending", "0"], "{pod:?}");
    assert_eq!(&pod[5..], ["<none>", "<none>", "<none>", "<none>"], "{pod:?}");
    let deploy = cells("deployments", true, true, "deploy");
    assert_eq!(&deploy[1..4], ["0/2", "0", "0"], "{deploy:?}");
    assert_eq!(&deploy[5..], ["web", "nginx:1.25", "app=deploy"], "{deploy:?}");
    let svc = cells("services", true, true, "svc");
    assert_eq!(svc[1], "ClusterIP", "{svc:?}");
    assert_eq!(&svc[3..5], ["<none>", "80/TCP"], "{svc:?}");
    assert_eq!(svc[6], "app=web", "{svc:?}");
    assert_eq!(cells("configmaps", true, false, "cm")[1], "2");
    assert_eq!(&cells("secrets", true, false, "sec")[1..3], ["Opaque", "1"]);
    assert_eq!(cells("namespaces", false, false, "tables")[1], "Active");
    assert_eq!(cells("endpoints", true, false, "ep")[1], "10.0.0.1:80");
    assert_eq!(
        &cells("endpointslices", true, false, "slice")[1..4],
        ["IPv4", "80", "10.0.0.2"]
    );
    let job = cells("jobs", true, false, "job");
    assert_eq!(&job[1..3], ["Running", "0/1"], "{job:?}");
    let cron = cells("cronjobs", true, false, "cron");
    assert_eq!(
        &cron[1..6],
        ["*/5 * * * *", "<none>", "False", "0", "<none>"],
        "{cron:?}"
    );
    assert_eq!(&cells("pvc", true, false, "claim")[1..2], ["Pending"]);
    // Pending until the PV controller (not running here) binds or releases it.
    let pv = cells("pv", false, false, "vol");
    assert_eq!(&pv[1..5], ["5Gi", "RWO", "Retain", "Pending"], "{pv:?}");
    assert_eq!(
        &cells("storageclasses", false, false, "fast")[1..5],
        ["csi.example.com", "Delete", "Immediate", "false"]
    );
    assert_eq!(&cells("priorityclasses", false, false, "high")[1..3], ["1000", "false"]);
    assert_eq!(cells("leases", true, false, "lock")[1], "node-a");
    assert_eq!(
        &cells("ingresses", true, false, "ing")[1..3],
        ["nginx", "shop.example.com"]
    );
    // autoscaling/v2 defaults an empty metric list to 80% CPU utilization.
    assert_eq!(
        &cells("hpa", true, false, "hpa")[1..6],
        ["Deployment/deploy", "cpu: <unknown>/80%", "1", "5", "0"]
    );
    let rb = cells("rolebindings", true, true, "readers");
    assert_eq!(rb[1], "Role/reader", "{rb:?}");
    // Users, (empty) Groups, ServiceAccounts.
    assert_eq!(&rb[3..], ["alice", "tables/robot"], "{rb:?}");
    assert_eq!(cells("pdb", true, false, "pdb")[1..4], ["1", "N/A", "0"]);
    assert_eq!(cells("runtimeclasses", false, false, "gvisor")[1], "runsc");
    assert_eq!(cells("csinodes", false, false, "node-a")[1], "1");
    assert_eq!(cells("resourceclaims", true, false, "claim")[1], "pending");
    assert_eq!(
        &cells("resourceslices", false, false, "slice-a")[1..4],
        ["node-a", "gpu.example.com", "pool-a"]
    );
    assert_eq!(cells("servicecidrs", false, false, "extra")[1], "10.100.0.0/16");
    assert_eq!(
        cells("ipaddresses", false, false, "10.96.0.50")[1],
        "services/tables/svc"
    );
    assert_eq!(cells("controllerrevisions", true, false, "rev")[1..3], ["<none>", "3"]);
    assert_eq!(
        cells("ingressclasses", false, false, "nginx")[1..3],
        ["example.com/ingress", "<none>"]
    );
    assert_eq!(
        cells("validatingadmissionpolicies", false, false, "vap")[1..3],
        ["1", "<unset>"]
    );
    assert_eq!(cells("mutatingwebhookconfigurations", false, false, "mwh")[1], "1");
    assert_eq!(
        cells("prioritylevelconfigurations", false, false, "batch")[1..6],
        ["Limited", "10", "16", "4", "50"]
    );
    let fs = cells("flowschemas", false, false, "batch-jobs");
    assert_eq!(&fs[1..4], ["batch", "1000", "ByUser"], "{fs:?}");
    // MissingPL is the Dangling condition, which the APF controller (not running here) sets.
    assert_eq!(fs[5], "?", "{fs:?}");
    assert_eq!(cells("apiservices", false, false, "v1.example.com")[1], "Local");

    // What the server itself creates at start, as upstream prints it.
    assert_eq!(cells("apiservices", false, false, "v1.apps")[1..3], ["Local", "True"]);
    assert_eq!(
        cells("apiservices", false, false, "v2.autoscaling")[1..3],
        ["Local", "True"]
    );
    assert_eq!(
        cells("prioritylevelconfigurations", false, false, "workload-low")[1..6],
        ["Limited", "100", "128", "6", "50"]
    );
    assert_eq!(
        cells("prioritylevelconfigurations", false, false, "exempt")[1..6],
        ["Exempt", "<none>", "<none>", "<none>", "<none>"]
    );
    let probes = cells("flowschemas", false, false, "probes");
    assert_eq!(&probes[1..4], ["exempt", "2", "<none>"], "{probes:?}");
    let global = cells("flowschemas", false, false, "global-default");
    assert_eq!(&global[1..4], ["global-default", "9900", "ByUser"], "{global:?}");
    // componentstatuses are probed per request; the embedded store is etcd-0.
    let etcd = cells("componentstatuses", false, false, "etcd-0");
    assert_eq!(&etcd[1..], ["Healthy", "ok"], "{etcd:?}");
    let cs = get(&c, "componentstatuses", false, false);
    for name in ["scheduler", "controller-manager"] {
        assert!(cs.lines().any(|l| l.starts_with(name)), "{name} missing:\n{cs}");
    }
}
