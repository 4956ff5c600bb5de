"""Self-test of check_cluster.py, run by check_manifests.py: the real renders pass, and each of
a set of broken variants (one invariant broken each) is reported. Guards the checker against
going blind when the manifests or the checks change."""

import copy

from check_cluster import check_cluster


def _one(docs, kind):
    return next(d for d in docs if d["kind"] == kind)


def _container(docs):
    return _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _env(docs, name):
    return next(e for e in _container(docs)["env"] if e["name"] == name)


def _drop_env(docs, name):
    _container(docs)["env"].remove(_env(docs, name))


def _set(path_getter, key, value):
    def mutate(docs):
        path_getter(docs)[key] = value
    return mutate


# (name, target the variant starts from, mutation)
BROKEN = [
    ("no HPA", "base", lambda d: d.remove(_one(d, "HorizontalPodAutoscaler"))),
    ("replicas set next to the HPA", "base", _set(lambda d: _one(d, "Deployment")["spec"], "replicas", 2)),
    ("HPA minReplicas 1", "base", _set(lambda d: _one(d, "HorizontalPodAutoscaler")["spec"], "minReplicas", 1)),
    ("HPA on memory", "base", _set(lambda d: _one(d, "HorizontalPodAutoscaler")["spec"]["metrics"][0]["resource"], "name", "memory")),
    ("HPA removes 2 pods at once", "base",
     _set(lambda d: _one(d, "HorizontalPodAutoscaler")["spec"]["behavior"]["scaleDown"]["policies"][0], "value", 2)),
    ("no CPU request", "base", lambda d: _container(d)["resources"]["requests"].pop("cpu")),
    ("PDB maxUnavailable 2", "base", _set(lambda d: _one(d, "PodDisruptionBudget")["spec"], "maxUnavailable", 2)),
    ("no PDB", "base", lambda d: d.remove(_one(d, "PodDisruptionBudget"))),
    ("no Redis URL", "base", lambda d: _drop_env(d, "CHORUS_REDIS_URL")),
    ("Redis URL names no Service", "base", _set(lambda d: _env(d, "CHORUS_REDIS_URL"), "value", "redis://redis:6379/0")),
    ("Redis URL on a wrong port", "base", _set(lambda d: _env(d, "CHORUS_REDIS_URL"), "value", "redis://chorus-redis:6380/0")),
    ("Redis Service selects nothing", "base", lambda d: d.remove(_one(d, "StatefulSet"))),
    ("Secret URL with the in-cluster Redis left", "overlays/external-redis",
     lambda d: d.append({"kind": "StatefulSet", "metadata": {"name": "chorus-redis", "labels": {"app.kubernetes.io/component": "redis"}}})),
    ("no node id", "base", lambda d: _drop_env(d, "CHORUS_NODE_ID")),
    ("node URL on another port", "base", _set(lambda d: _env(d, "CHORUS_NODE_URL"), "value", "ws://$(POD_IP):9090")),
    ("node URL a fixed address", "base", _set(lambda d: _env(d, "CHORUS_NODE_URL"), "value", "ws://10.0.0.1:8080")),
    ("host network advertising the pod IP", "base",
     _set(lambda d: _env(d, "CHORUS_ADVERTISE_IPS")["valueFrom"]["fieldRef"], "fieldPath", "status.podIP")),
    ("pod network advertising the node IP", "base", _set(lambda d: _one(d, "Deployment")["spec"]["template"]["spec"], "hostNetwork", False)),
    ("single instance with an HPA", "overlays/load-balancer",
     lambda d: d.append({"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2", "metadata": {"name": "chorus"},
                         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "chorus"}}})),
]


def self_test(renders, single_instance):
    """renders: {target: docs}. Returns problems (empty when the checker sees every break)."""
    problems = []
    for name, target, mutate in BROKEN:
        docs = copy.deepcopy(renders[target])
        mutate(docs)
        if not check_cluster(target, docs, single_instance=target in single_instance):
            problems.append(f"check_cluster self-test: `{name}` ({target}) is not reported")
    return problems
