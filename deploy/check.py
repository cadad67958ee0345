# SPDX-License-Identifier: Apache-2.0
"""deploy/check.py: the checks of deploy/check over a directory of Kubernetes manifests.

1. Every document of a built-in kind passes kubernetes-validate in strict mode against the
   oldest Kubernetes release the manifests support (KUBERNETES_VERSION).
2. A ScaledObject passes KEDA's CRD schema (deploy/schemas, from KEDA's Go module), and,
   as the API server would prune them silently, every field it sets is one the schema
   declares.
3. The manifests agree: the Service selects the StatefulSet's pods and names container ports
   that exist; the ScaledObject scales that StatefulSet, reads the ConfigMap's group and topic,
   and caps the copies at the topic's partitions (annotation evpipe.io/topic-partitions);
   the StatefulSet's replicas are within that cap.
"""

import glob
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30.0"
PARTITIONS = "evpipe.io/topic-partitions"


def undeclared(doc, schema, path):
    """Paths in doc that schema does not declare (where it does not keep unknown fields)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out = []
    if isinstance(doc, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, val in doc.items():
            if props is not None and key in props:
                out += undeclared(val, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += undeclared(val, extra, f"{path}.{key}")
            elif props is not None or extra is False:
                out.append(f"{path}.{key}")
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for i, val in enumerate(doc):
            out += undeclared(val, schema["items"], f"{path}[{i}]")
    return out


def main(directory, schemas):
    problems = []
    docs = []
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
    if not files:
        problems.append(f"{directory}: no manifests")
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for doc in yaml.safe_load_all(fh):
                if doc:
                    docs.append((os.path.basename(f), doc))
    with open(os.path.join(schemas, "keda.sh_scaledobject_v1alpha1.json"), encoding="utf-8") as fh:
        keda = json.load(fh)

    by_kind = {}
    for name, doc in docs:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        by_kind.setdefault(kind, []).append(doc)
        where = f"{name}: {kind} {doc.get('metadata', {}).get('name')}"
        if api == "keda.sh/v1alpha1" and kind == "ScaledObject":
            try:
                jsonschema.validate(doc, keda)
            except jsonschema.ValidationError as e:
                problems.append(f"{where}: {e.message} at /{'/'.join(map(str, e.absolute_path))}")
            for p in undeclared(doc, keda, ""):
                problems.append(f"{where}: field {p[1:]} is not in KEDA's schema (pruned)")
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError:
            problems.append(f"{where}: no schema for {api} {kind}")
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{where}: {e.message} at /{'/'.join(map(str, e.path))}")

    def one(kind):
        found = by_kind.get(kind, [])
        if len(found) != 1:
            problems.append(f"{directory}: {len(found)} {kind} manifests, 1 expected")
            return None
        return found[0]

    sts, svc, cm = one("StatefulSet"), one("Service"), one("ConfigMap")
    so = (by_kind.get("ScaledObject") or [None])[0]
    if sts and svc:
        pod = sts["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in svc["spec"].get("selector", {}).items()):
            problems.append("Service: its selector does not select the StatefulSet's pods")
        names = {p.get("name") for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"].get("ports", []):
            if p.get("targetPort") not in names:
                problems.append(f"Service: port {p.get('name')} targets no container port")
        if sts["spec"].get("serviceName") != svc["metadata"]["name"]:
            problems.append("StatefulSet: serviceName is not the Service's name")
    if so and sts and cm:
        ref = so["spec"]["scaleTargetRef"]
        if ref.get("kind") != "StatefulSet" or ref.get("name") != sts["metadata"]["name"]:
            problems.append("ScaledObject: scaleTargetRef is not the StatefulSet")
        try:
            parts = int(so["metadata"].get("annotations", {})[PARTITIONS])
        except (KeyError, ValueError):
            parts = None
            problems.append(f"ScaledObject: no annotation {PARTITIONS} (the topic's partitions)")
        if parts is not None:
            if so["spec"].get("maxReplicaCount", 100) > parts:
                problems.append(f"ScaledObject: maxReplicaCount is over the topic's {parts} "
                                "partitions (a copy beyond them owns none)")
            if sts["spec"].get("replicas", 1) > parts:
                problems.append(f"StatefulSet: replicas over the topic's {parts} partitions")
        for t in so["spec"].get("triggers", []):
            if t.get("type") != "kafka":
                continue
            meta = t.get("metadata", {})
            if meta.get("consumerGroup") != cm["data"].get("EVPIPE_GROUP"):
                problems.append("ScaledObject: consumerGroup is not the ConfigMap's EVPIPE_GROUP")
            if meta.get("topic") != cm["data"].get("EVPIPE_TOPIC"):
                problems.append("ScaledObject: topic is not the ConfigMap's EVPIPE_TOPIC")

    for p in problems:
        print(f"deploy/check: {p}", file=sys.stderr)
    if not problems:
        print(f"deploy/check: {len(docs)} manifests valid (Kubernetes {KUBERNETES_VERSION}, "
              f"KEDA {keda.get('x-evpipe-source', '?').split('/config')[0]})", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
