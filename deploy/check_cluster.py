"""Cluster invariants of a rendered Chorus manifest set (used by check_manifests.py).

Several SFU pods coordinated through Redis (README "Deploy"):
  * the pod count belongs to a HorizontalPodAutoscaler (autoscaling/v2, CPU utilisation,
    minReplicas >= 2, scale-down one pod at a time) and the Deployment sets no `replicas` of
    its own (every `kubectl apply` would reset the HPA's count and drain the pods it added);
    a single-instance target instead has `replicas: 1` and no HPA;
  * the containers request CPU (the HPA's utilisation is measured against the request);
  * a PodDisruptionBudget selecting the pods lets at most one go at a time;
  * CHORUS_REDIS_URL is either `redis://SERVICE:PORT/...` naming a Service of the render that
    selects a StatefulSet's pods on that port, or a Secret key (and then no in-cluster Redis
    is left in the render);
  * CHORUS_NODE_ID is the pod's name (downward API), and CHORUS_NODE_URL — where the other
    pods relay signaling to this one — is `ws://$(VAR):PORT` with VAR the pod's IP defined
    before it and PORT the one of CHORUS_LISTEN;
  * each pod has a media address of its own: on the host network the node's IP (with one pod
    per node: required anti-affinity), on the pod network with several pods the pod's IP.
"""

import re
from urllib.parse import urlparse

SFU_CONTAINER = "chorus"


def _env(container):
    return {e["name"]: e for e in container.get("env", [])}


def _field_ref(entry):
    return (entry or {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")


def _selects(selector, labels):
    wanted = selector or {}
    return bool(wanted) and wanted.items() <= (labels or {}).items()


def _sfu(docs):
    """(Deployment, its chorus container) pairs."""
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for c in doc["spec"]["template"]["spec"].get("containers", []):
            if c["name"] == SFU_CONTAINER:
                yield doc, c


def check_scaling(deployment, container, docs, single_instance):
    name = deployment["metadata"]["name"]
    hpas = [
        d for d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
        and d["spec"].get("scaleTargetRef", {}).get("kind") == "Deployment"
        and d["spec"]["scaleTargetRef"].get("name") == name
    ]
    replicas = deployment["spec"].get("replicas")
    if single_instance:
        problems = [] if replicas == 1 else [f"single-instance Deployment {name} must set replicas: 1"]
        if hpas:
            problems.append(f"single-instance Deployment {name} must have no HPA")
        return problems
    if len(hpas) != 1:
        return [f"Deployment {name} needs exactly one HorizontalPodAutoscaler (found {len(hpas)})"]
    hpa = hpas[0]
    spec = hpa["spec"]
    problems = []
    if hpa.get("apiVersion") != "autoscaling/v2":
        problems.append("the HPA must be autoscaling/v2")
    if replicas is not None:
        problems.append(f"Deployment {name} sets replicas ({replicas}): the HPA owns the count")
    if spec.get("minReplicas", 1) < 2:
        problems.append("HPA minReplicas must be at least 2")
    if spec.get("maxReplicas", 0) < spec.get("minReplicas", 1):
        problems.append("HPA maxReplicas is below minReplicas")
    cpu = [
        m for m in spec.get("metrics", [])
        if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"
        and m["resource"].get("target", {}).get("type") == "Utilization"
    ]
    if not cpu:
        problems.append("the HPA must scale on CPU utilisation")
    if "cpu" not in container.get("resources", {}).get("requests", {}):
        problems.append("the SFU container must request CPU (the HPA measures against it)")
    down = spec.get("behavior", {}).get("scaleDown", {}).get("policies", [])
    if not down or any(p.get("type") != "Pods" or p.get("value") != 1 for p in down):
        problems.append("HPA scale-down must remove one pod per period (each one drains)")
    return problems


def check_pdb(deployment, docs):
    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    pdbs = [
        d for d in docs
        if d["kind"] == "PodDisruptionBudget" and _selects(d["spec"].get("selector", {}).get("matchLabels"), labels)
    ]
    if len(pdbs) != 1:
        return [f"the SFU pods need exactly one PodDisruptionBudget (found {len(pdbs)})"]
    spec = pdbs[0]["spec"]
    if spec.get("maxUnavailable") != 1 or "minAvailable" in spec:
        return ["the PodDisruptionBudget must be maxUnavailable: 1 (one drain at a time)"]
    return []


def check_redis(container, docs):
    entry = _env(container).get("CHORUS_REDIS_URL")
    leftovers = [
        f"{d['kind']}/{d['metadata']['name']}" for d in docs
        if d["kind"] in ("StatefulSet", "Service") and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "redis"
    ]
    if entry is None:
        return ["CHORUS_REDIS_URL is not set"]
    secret = entry.get("valueFrom", {}).get("secretKeyRef")
    if secret:
        if not secret.get("name") or not secret.get("key") or secret.get("optional"):
            return ["CHORUS_REDIS_URL must come from a named, required Secret key"]
        return [f"Redis URL from a Secret, but the in-cluster Redis is still rendered: {leftovers}"] if leftovers else []
    url = urlparse(entry.get("value", ""))
    if url.scheme not in ("redis", "rediss") or not url.hostname:
        return [f"CHORUS_REDIS_URL {entry.get('value')!r} is not a redis:// URL"]
    host, port = url.hostname.split(".")[0], url.port or 6379
    services = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == host]
    if not services:
        return [f"CHORUS_REDIS_URL names Service {host}, which is not in the render"]
    service = services[0]["spec"]
    if port not in [p.get("port") for p in service.get("ports", [])]:
        return [f"Service {host} has no port {port}"]
    sets = [
        d for d in docs
        if d["kind"] == "StatefulSet" and _selects(service.get("selector"), d["spec"]["template"]["metadata"].get("labels"))
    ]
    if len(sets) != 1:
        return [f"Service {host} must select the pods of one Redis StatefulSet (found {len(sets)})"]
    ports = [p["containerPort"] for c in sets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
    if port not in ports:
        return [f"StatefulSet {sets[0]['metadata']['name']} exposes no port {port}"]
    if sets[0]["spec"].get("replicas", 1) != 1:
        return ["the in-cluster Redis is a single instance (replicas: 1); use external-redis for more"]
    return []


def check_node_identity(container):
    env = _env(container)
    problems = []
    if _field_ref(env.get("CHORUS_NODE_ID")) != "metadata.name":
        problems.append("CHORUS_NODE_ID must be the pod's name (fieldRef metadata.name)")
    url = env.get("CHORUS_NODE_URL", {}).get("value", "")
    match = re.fullmatch(r"wss?://\$\((\w+)\):(\d+)", url)
    listen_port = env.get("CHORUS_LISTEN", {}).get("value", "0.0.0.0:8080").rsplit(":", 1)[-1]
    names = [e["name"] for e in container.get("env", [])]
    if not match:
        problems.append(f"CHORUS_NODE_URL {url!r} must be ws://$(POD_IP):PORT (the pod's own address)")
    elif _field_ref(env.get(match.group(1))) != "status.podIP" or names.index(match.group(1)) > names.index("CHORUS_NODE_URL"):
        problems.append(f"CHORUS_NODE_URL uses $({match.group(1)}), which must be status.podIP, defined before it")
    elif match.group(2) != listen_port:
        problems.append(f"CHORUS_NODE_URL port {match.group(2)} is not the CHORUS_LISTEN port {listen_port}")
    return problems


def check_media_address(deployment, container, single_instance):
    spec = deployment["spec"]["template"]["spec"]
    advertised = _env(container).get("CHORUS_ADVERTISE_IPS", {})
    source = _field_ref(advertised)
    if spec.get("hostNetwork"):
        anti = spec.get("affinity", {}).get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
        problems = [] if source == "status.hostIP" else ["on the host network each pod must advertise status.hostIP"]
        if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in anti):
            problems.append("host-network pods need required anti-affinity per node (they own its ports)")
        return problems
    if single_instance:
        return [] if advertised.get("value") or source else ["the media address is not set"]
    if source != "status.podIP":
        return ["several pods on the pod network must each advertise their own status.podIP"]
    return []


def check_cluster(target, docs, single_instance=False):
    problems = []
    sfu = list(_sfu(docs))
    if len(sfu) != 1:
        return [f"{target}: expected one Deployment with a `{SFU_CONTAINER}` container, found {len(sfu)}"]
    deployment, container = sfu[0]
    problems += check_scaling(deployment, container, docs, single_instance)
    problems += check_pdb(deployment, docs)
    problems += check_redis(container, docs)
    problems += check_node_identity(container)
    problems += check_media_address(deployment, container, single_instance)
    return [f"{target}: {p}" for p in problems]
