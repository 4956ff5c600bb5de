#!/usr/bin/env python3
"""Renders the Kubernetes manifests under deploy/kubernetes and checks them.

For the base, every overlay, and the base with each component (rendered through a temporary
overlay, so every component is checked even if no overlay uses it):
  1. render it: `kubectl kustomize` when kubectl is installed, else the small kustomize subset
     below (resources, components, namespace, labels, images, strategic-merge patches including
     `$patch: delete`: exactly what these manifests use). With kubectl present, the subset's
     output is rendered too and must equal kubectl's, so the fallback stays honest;
  2. validate every built-in object with `kubernetes-validate --strict` against the oldest
     Kubernetes these manifests support (1.30: the preStop `sleep` action) and the newest the
     validator knows;
  3. custom resources (the optional Prometheus Operator ServiceMonitor) are excluded from
     kubernetes-validate on purpose — it has no schema for CRDs and would only warn — and get
     the structural checks in `check_servicemonitor` instead;
  4. check that the pieces agree: one UDP port per media shard, probes on /readyz and /healthz,
     a grace period longer than preStop + drain timeout, non-root, no CPU limit;
  5. check the cluster (check_cluster.py; check_cluster_test.py makes sure it still reports each
     of a set of deliberately broken variants): an HPA (CPU, minReplicas >= 2, one pod removed at a
     time) owning the pod count, or exactly one replica where a target is single-instance; a
     PDB letting one pod go at a time; CHORUS_REDIS_URL wired to the in-cluster Redis Service
     or to a Secret (and then no in-cluster Redis left over); the node id from the pod name;
     a media address of each pod's own.

Usage: deploy/check_manifests.py [--fallback] [--out DIR]   (needs PyYAML and kubernetes-validate)
  --fallback   render with the built-in subset even when kubectl is installed
  --out DIR    also write the rendered manifests there
Exit status 0 when everything passes.
"""

import copy
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

from check_cluster import check_cluster
from check_cluster_test import self_test

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kubernetes")
TARGETS = ["base", "overlays/example", "overlays/external-redis", "overlays/load-balancer"]
# Targets that run one SFU pod on purpose (one load-balancer address per pod): no HPA.
SINGLE_INSTANCE = {"overlays/load-balancer"}
K8S_VERSIONS = ["1.30.0", None]  # None: kubernetes-validate's newest
CUSTOM_KINDS = {"ServiceMonitor"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


# --- the kustomize subset -------------------------------------------------------------------


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def merge(original, patch):
    """Strategic merge as kustomize does it for these manifests: maps merge, `null` deletes a
    key, lists of named maps merge by `name` (patch items first, then the untouched rest),
    other lists are replaced."""
    if isinstance(original, dict) and isinstance(patch, dict):
        out = dict(original)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(original, list) and isinstance(patch, list) and named(original) and named(patch):
        by_name = {item["name"]: item for item in original}
        patched = [merge(by_name[p["name"]], p) if p["name"] in by_name else copy.deepcopy(p) for p in patch]
        names = {p["name"] for p in patch}
        return patched + [copy.deepcopy(o) for o in original if o["name"] not in names]
    return copy.deepcopy(patch)


def named(items):
    return all(isinstance(i, dict) and "name" in i for i in items)


def same_object(a, b):
    return (a.get("kind"), a["metadata"].get("name")) == (b.get("kind"), b["metadata"].get("name"))


def pod_specs(doc):
    spec = doc.get("spec", {})
    if "template" in spec:
        yield spec["template"].get("spec", {})


def build(directory):
    """Renders the kustomization in `directory`."""
    with open(os.path.join(directory, "kustomization.yaml"), encoding="utf-8") as f:
        k = yaml.safe_load(f)
    known = {"apiVersion", "kind", "resources", "components", "namespace", "labels", "images", "patches"}
    unknown = set(k) - known
    if unknown:
        raise SystemExit(f"{directory}: the fallback renderer does not support {sorted(unknown)}")
    docs = []
    for entry in k.get("resources", []):
        path = os.path.join(directory, entry)
        docs.extend(build(path) if os.path.isdir(path) else load_docs(path))
    for label in k.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise SystemExit(f"{directory}: labels into selectors/templates are not supported")
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    for entry in k.get("components", []):
        component = os.path.join(directory, entry)
        docs = apply_component(component, docs)
    for patch in k.get("patches", []):
        docs = apply_patch(os.path.join(directory, patch["path"]), docs)
    for image in k.get("images", []):
        for doc in docs:
            for spec in pod_specs(doc):
                for c in spec.get("containers", []) + spec.get("initContainers", []):
                    name = c["image"].split("@")[0].rsplit(":", 1)[0] if ":" in c["image"].split("/")[-1] else c["image"]
                    if name == image["name"]:
                        c["image"] = f"{image.get('newName', name)}:{image['newTag']}" if "newTag" in image else image.get("newName", name)
    if "namespace" in k:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = k["namespace"]
    return docs


def apply_component(directory, docs):
    with open(os.path.join(directory, "kustomization.yaml"), encoding="utf-8") as f:
        c = yaml.safe_load(f)
    if c.get("kind") != "Component" or set(c) - {"apiVersion", "kind", "resources", "patches"}:
        raise SystemExit(f"{directory}: unsupported component")
    docs = docs + [d for r in c.get("resources", []) for d in load_docs(os.path.join(directory, r))]
    for patch in c.get("patches", []):
        docs = apply_patch(os.path.join(directory, patch["path"]), docs)
    return docs


def apply_patch(path, docs):
    out = list(docs)
    for patch in load_docs(path):
        matches = [i for i, d in enumerate(out) if same_object(d, patch)]
        if len(matches) != 1:
            raise SystemExit(f"{path}: patch target {patch['kind']}/{patch['metadata']['name']} not found once")
        if patch.get("$patch") == "delete":
            del out[matches[0]]
        else:
            out[matches[0]] = merge(out[matches[0]], patch)
    return out


# --- rendering and validation ---------------------------------------------------------------


def component_overlays(parent):
    """A temporary overlay `base + component` for every component, inside the kubernetes
    directory (kustomize refuses absolute paths). Yields (target name, directory)."""
    components = sorted(os.listdir(os.path.join(ROOT, "components")))
    for name in components:
        directory = os.path.join(parent, name)
        os.makedirs(directory)
        rel = os.path.relpath(ROOT, directory)
        with open(os.path.join(directory, "kustomization.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [f"{rel}/base"],
                "components": [f"{rel}/components/{name}"],
            }, f)
        yield f"base+components/{name}", directory


def kubectl_render(directory):
    result = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"kubectl kustomize {directory}: {result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def keyed(docs):
    return sorted(docs, key=lambda d: (d["kind"], d["metadata"]["name"]))


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def seconds(text):
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = str(text).strip()
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def check_consistency(target, docs):
    problems = []
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        spec = doc["spec"]["template"]["spec"]
        pod_security = spec.get("securityContext", {})
        if not pod_security.get("runAsNonRoot"):
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: the pod must run as non-root")
        if doc["kind"] != "Deployment":
            continue
        for c in spec["containers"]:
            env = env_of(c)
            shards = int(env.get("CHORUS_UDP_THREADS", {}).get("value", "0"))
            first = int(env.get("CHORUS_UDP_PORT", {}).get("value", "40000"))
            udp = sorted(p["containerPort"] for p in c.get("ports", []) if p.get("protocol") == "UDP")
            if shards < 1 or udp != list(range(first, first + shards)):
                problems.append(f"{c['name']}: UDP ports {udp} do not match {shards} shards from {first}")
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                if c.get(probe, {}).get("httpGet", {}).get("path") != path:
                    problems.append(f"{c['name']}: {probe} must GET {path}")
            pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            drain = seconds(env.get("CHORUS_DRAIN_TIMEOUT", {}).get("value", "300s"))
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if grace < pre_stop + drain + 10:
                problems.append(f"grace period {grace}s < preStop {pre_stop}s + drain {drain}s + 10s")
            if "cpu" in c.get("resources", {}).get("limits", {}):
                problems.append(f"{c['name']}: no CPU limit (throttling stalls media shards)")
            for name in ("CHORUS_AUTH_SECRET", "CHORUS_ADVERTISE_IPS"):
                if name not in env:
                    problems.append(f"{c['name']}: {name} is not set")
    return [f"{target}: {p}" for p in problems]


def check_servicemonitor(target, doc, docs):
    """What kubernetes-validate cannot check for this CRD: the fields the operator needs, and
    that it selects a Service of this render by label and names one of its ports."""
    problems = []
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        problems.append("ServiceMonitor apiVersion must be monitoring.coreos.com/v1")
    spec = doc.get("spec", {})
    wanted = spec.get("selector", {}).get("matchLabels", {})
    services = [
        d for d in docs
        if d["kind"] == "Service" and wanted and wanted.items() <= d["metadata"].get("labels", {}).items()
    ]
    if not services:
        problems.append(f"ServiceMonitor selector {wanted} matches no Service")
    ports = {p.get("name") for s in services for p in s["spec"].get("ports", [])}
    for endpoint in spec.get("endpoints", []) or [{}]:
        if endpoint.get("port") not in ports or endpoint.get("path") != "/metrics":
            problems.append(f"ServiceMonitor endpoint {endpoint} is not a /metrics port of the Service")
    unknown = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
    if unknown:
        problems.append(f"ServiceMonitor has unexpected fields {sorted(unknown)}")
    return [f"{target}: {p}" for p in problems]


def main():
    args = sys.argv[1:]
    out_dir = None
    if "--out" in args:
        index = args.index("--out")
        out_dir = args[index + 1] if index + 1 < len(args) else None
        if not out_dir:
            raise SystemExit("--out needs a directory")
        os.makedirs(out_dir, exist_ok=True)
    have_kubectl = "--fallback" not in args and shutil.which("kubectl") is not None
    problems = []
    renders = {}
    work = tempfile.mkdtemp(prefix="chorus-manifests-")
    scratch = tempfile.mkdtemp(prefix=".check-", dir=ROOT)
    try:
        targets = [(t, os.path.join(ROOT, t)) for t in TARGETS] + list(component_overlays(scratch))
        for target, directory in targets:
            fallback = build(directory)
            docs = kubectl_render(directory) if have_kubectl else fallback
            if have_kubectl and keyed(docs) != keyed(fallback):
                problems.append(f"{target}: the fallback renderer disagrees with kubectl kustomize")
            builtin = [d for d in docs if d["kind"] not in CUSTOM_KINDS]
            for doc in docs:
                if doc["kind"] == "ServiceMonitor":
                    problems.extend(check_servicemonitor(target, doc, docs))
            problems.extend(check_consistency(target, docs))
            problems.extend(check_cluster(target, docs, single_instance=target in SINGLE_INSTANCE))
            renders[target] = docs
            name = target.replace("/", "-").replace("+", "-")
            path = os.path.join(out_dir or work, f"{name}.yaml")
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump_all(builtin, f, sort_keys=False)
            if out_dir:
                with open(os.path.join(out_dir, f"{name}.full.yaml"), "w", encoding="utf-8") as f:
                    yaml.safe_dump_all(docs, f, sort_keys=False)
            for version in K8S_VERSIONS:
                command = ["kubernetes-validate", "--strict", "--quiet"]
                if version:
                    command += ["-k", version]
                result = subprocess.run(command + [path], capture_output=True, text=True)
                said = (result.stdout + result.stderr).strip()
                if result.returncode != 0 or said:
                    problems.append(f"{target}: kubernetes-validate {version or 'latest'}: {said}")
            renderer = "kubectl kustomize (fallback agrees)" if have_kubectl else "fallback renderer"
            kinds = ", ".join(sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs))
            print(f"manifests: {target}: {len(docs)} objects via {renderer}: {kinds}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    broken = self_test(renders, SINGLE_INSTANCE)
    problems.extend(broken)
    if not broken:
        print("manifests: check_cluster reports every deliberately broken variant (check_cluster_test.py)")
    for p in problems:
        print(f"manifests: {p}", file=sys.stderr)
    if not problems:
        print("manifests: every rendered object passes kubernetes-validate --strict and the checks")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
