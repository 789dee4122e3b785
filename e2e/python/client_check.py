"""Drives rkube with the official Python client (`pip install kubernetes`):
lists and watches pods, creates, reads, lists and deletes a Deployment.
Usage: client_check.py KUBECONFIG. Prints "ok" and exits 0 on success."""
import sys
import threading
import time

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
apps = client.AppsV1Api()
ns = "default"

pods = core.list_namespaced_pod(ns)
assert pods.items == [], pods.items
rv = pods.metadata.resource_version
assert rv, "list has a resourceVersion"

# Watch pods from the list's resourceVersion while one is created.
seen = []


def watch_pods():
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if ev["object"].metadata.name == "py-pod":
            w.stop()


t = threading.Thread(target=watch_pods)
t.start()
time.sleep(0.5)
pod = client.V1Pod(
    metadata=client.V1ObjectMeta(name="py-pod", labels={"app": "py"}),
    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox", command=["sleep", "3600"])]),
)
core.create_namespaced_pod(ns, pod)
t.join(timeout=10)
assert ("ADDED", "py-pod") in seen, seen

labels = {"app": "py-web"}
dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py-web"),
    spec=client.V1DeploymentSpec(
        replicas=2,
        selector=client.V1LabelSelector(match_labels=labels),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=labels),
            spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx", ports=[client.V1ContainerPort(container_port=80)])]),
        ),
    ),
)
created = apps.create_namespaced_deployment(ns, dep)
assert created.metadata.uid, created
assert created.spec.strategy.type == "RollingUpdate", created.spec.strategy
got = apps.read_namespaced_deployment("py-web", ns)
assert got.spec.replicas == 2
assert got.spec.template.spec.containers[0].ports[0].container_port == 80
names = [d.metadata.name for d in apps.list_namespaced_deployment(ns).items]
assert "py-web" in names, names
assert [p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="app=py").items] == ["py-pod"]

try:
    apps.read_namespaced_deployment("missing", ns)
    raise SystemExit("expected a 404")
except client.exceptions.ApiException as e:
    assert e.status == 404, e

apps.delete_namespaced_deployment("py-web", ns)
core.delete_namespaced_pod("py-pod", ns, grace_period_seconds=0)
print("ok")
