#!/usr/bin/python3
"""Checks deploy/kubernetes against what docs/deployment.md promises: every document parses,
the Deployment runs several replicas of cloister-attestd with the shared store URL and keys
from Secrets, /healthz probes over HTTPS, a Prometheus scrape annotation, a Service in front,
and the keys never committed (the Secret documents its shape only)."""
import sys
import yaml

root = sys.argv[1]
docs = []
for name in ("namespace.yaml", "secret.yaml", "postgres.yaml", "attestd.yaml"):
    with open(f"{root}/{name}") as f:
        docs += [(name, d) for d in yaml.safe_load_all(f) if d]

def one(kind, name):
    found = [d for _, d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]

dep = one("Deployment", "cloister-attestd")
assert dep["spec"]["replicas"] >= 2, "replicas: expected at least 2"
pod = dep["spec"]["template"]
assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
(c,) = pod["spec"]["containers"]
args = c["args"]
assert "--store=$(STORE_URL)" in args, args
assert any(a.startswith("--listen=") for a in args), args
for probe in ("readinessProbe", "livenessProbe"):
    get = c[probe]["httpGet"]
    assert get["path"] == "/healthz" and get["scheme"] == "HTTPS", (probe, get)
env = {e["name"]: e for e in c["env"]}
assert env["STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "cloister-attestd-store"
(vol,) = pod["spec"]["volumes"]
assert vol["secret"]["secretName"] == "cloister-attestd-keys"
assert c["securityContext"]["readOnlyRootFilesystem"] is True
svc = one("Service", "cloister-attestd")
assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
one("StatefulSet", "cloister-postgres")
keys = one("Secret", "cloister-attestd-keys")
assert set(keys.get("stringData", {})) == {"README"}, "the keys Secret must not carry keys"
print(f"deploy/kubernetes: {len(docs)} documents, {dep['spec']['replicas']} replicas: ok")
