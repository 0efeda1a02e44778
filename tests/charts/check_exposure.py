#!/usr/bin/env python3
"""Every way into a default install of the chart, against an explicit allow-list.

The render is `helm template sparkernel charts/sparkernel --namespace spark` with the
default values. What it opens is written out below, port by port: the kinds of objects
(no Ingress, no Route), every container port, every Service (type, pods, ports),
every NetworkPolicy (the pods it guards, and per rule who may come in on which ports),
that every pod is guarded by one, no host ports or host network, and the Spark UIs'
kill switch. Anything the render has beyond the list fails the test, and so does
anything on the list that the render lacks.

Usage: check_exposure.py RENDERED.yaml [--tamper NAME]
  --tamper NAME: open something more in the render first (a self-test), and exit 0 only
  if the check then fails.
"""

import argparse
import sys

import yaml

COMPONENT = "app.kubernetes.io/component"
ANYWHERE = "anywhere"  # a rule without `from`: every pod of every namespace, and the outside
ALL_PORTS = "all ports"  # a rule without `ports`

# ---- the allow-list of the default values (release "sparkernel", 8 port slots) ---------

KINDS = {"ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim", "Service", "Deployment", "Pod",
         "NetworkPolicy"}

CONTAINER_PORTS = {
    "master": {"cluster": 7077, "http": 8080},
    "worker": {"http": 8081},
    "edgenode": {"jupyter": 8888,
                 "driver-0": 7078, "driver-1": 7080, "driver-2": 7082, "driver-3": 7084,
                 "driver-4": 7086, "driver-5": 7088, "driver-6": 7090, "driver-7": 7092,
                 "blockmgr-0": 7079, "blockmgr-1": 7081, "blockmgr-2": 7083, "blockmgr-3": 7085,
                 "blockmgr-4": 7087, "blockmgr-5": 7089, "blockmgr-6": 7091, "blockmgr-7": 7093,
                 "ui-0": 4040, "ui-1": 4041, "ui-2": 4042, "ui-3": 4043,
                 "ui-4": 4044, "ui-5": 4045, "ui-6": 4046, "ui-7": 4047},
    "test": {},
}

# name: (type, the pods it selects, {port name: port}). "headless" is ClusterIP None: a DNS
# name for the executors to call the drivers back, which forwards nothing itself (what
# may connect to the pod's ports is the NetworkPolicies' business).
SERVICES = {
    "spark-master": ("ClusterIP", {"master"}, {"cluster": 7077, "http": 8080}),
    "sparkernel-master-ui": ("ClusterIP", {"master"}, {"http": 8080}),
    "sparkernel-jupyter": ("NodePort", {"edgenode"}, {"jupyter": 8888}),
    "sparkernel-spark-ui": ("ClusterIP", {"edgenode"},
                            {"ui-0": 4040, "ui-1": 4041, "ui-2": 4042, "ui-3": 4043,
                             "ui-4": 4044, "ui-5": 4045, "ui-6": 4046, "ui-7": 4047}),
    "sparkernel-driver": ("headless", {"edgenode"},
                          {"driver-0": 7078, "driver-1": 7080, "driver-2": 7082, "driver-3": 7084,
                           "driver-4": 7086, "driver-5": 7088, "driver-6": 7090, "driver-7": 7092,
                           "blockmgr-0": 7079, "blockmgr-1": 7081, "blockmgr-2": 7083, "blockmgr-3": 7085,
                           "blockmgr-4": 7087, "blockmgr-5": 7089, "blockmgr-6": 7091, "blockmgr-7": 7093,
                           "ui-0": 4040, "ui-1": 4041, "ui-2": 4042, "ui-3": 4043,
                           "ui-4": 4044, "ui-5": 4045, "ui-6": 4046, "ui-7": 4047}),
}

# name: (the pods it guards, [(who may come in, on which TCP ports)]). Who: the release's
# pods of these components (in its namespace), or ANYWHERE.
POLICIES = {
    "sparkernel-master": ({"master"}, [
        ({"worker", "edgenode", "test"}, (7077,)),
        ({"edgenode", "test"}, (8080,)),
    ]),
    "sparkernel-workers": ({"worker"}, [
        ({"master", "worker", "edgenode", "test"}, ALL_PORTS),
    ]),
    "sparkernel-drivers": ({"edgenode", "test"}, [
        ({"master", "worker"}, (7078, 7080, 7082, 7084, 7086, 7088, 7090, 7092)),
        ({"worker"}, (7079, 7081, 7083, 7085, 7087, 7089, 7091, 7093)),
    ]),
    "sparkernel-jupyter": ({"edgenode"}, [
        (ANYWHERE, (8888,)),
    ]),
}

SPARK_DEFAULTS = {"spark.ui.killEnabled": "false"}

# ---- reading the render ------------------------------------------------------------------


def selector_matches(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        value, present = labels.get(e["key"]), e["key"] in labels
        if e["operator"] == "In" and value not in e["values"]:
            return False
        if e["operator"] == "NotIn" and present and value in e["values"]:
            return False
        if e["operator"] == "Exists" and not present:
            return False
        if e["operator"] == "DoesNotExist" and present:
            return False
    return True


def pods_of(docs):
    """{component: (labels, pod spec)} of every Deployment's pods and every bare Pod."""
    pods = {}
    for d in docs:
        if d["kind"] == "Deployment":
            t = d["spec"]["template"]
            pods[t["metadata"]["labels"].get(COMPONENT)] = (t["metadata"]["labels"], t["spec"])
        elif d["kind"] == "Pod":
            pods[d["metadata"]["labels"].get(COMPONENT)] = (d["metadata"]["labels"], d["spec"])
    return pods


def selected(pods, selector):
    """The components a label selector picks, or a description if it also picks pods
    that are not the release's (another app, another release)."""
    some = next(iter(pods.values()))[0]
    strangers = [{"app": "other"}, dict(some, **{"app.kubernetes.io/instance": "another-release"})]
    if any(selector_matches(selector, s) for s in strangers):
        return "pods beyond the release's (%s)" % (selector,)
    return frozenset(c for c, (labels, _) in pods.items() if selector_matches(selector, labels))


def peers(pods, rule):
    froms = rule.get("from")
    if not froms:
        return ANYWHERE
    who = set()
    for f in froms:
        if set(f) != {"podSelector"}:
            return "peers beyond the namespace's pods (%s)" % (f,)
        s = selected(pods, f["podSelector"])
        if isinstance(s, str):
            return s
        who |= s
    return frozenset(who)


def ports_of(rule):
    if not rule.get("ports"):
        return ALL_PORTS
    out = []
    for p in rule["ports"]:
        if p.get("protocol", "TCP") != "TCP" or not isinstance(p.get("port"), int):
            return "ports beyond single TCP numbers (%s)" % (p,)
        out.extend(range(p["port"], p.get("endPort", p["port"]) + 1))
    return tuple(sorted(out))


def normalize(who, ports):
    """An allow-list rule in the form peers() and ports_of() give."""
    return (who if isinstance(who, str) else frozenset(who),
            ports if isinstance(ports, str) else tuple(sorted(ports)))


def rule_key(rule):
    """A sort key for (who, ports) that does not depend on the hash seed (repr of a
    frozenset does: the same rules came out in another order from run to run)."""
    who, ports = rule
    return (who if isinstance(who, str) else ",".join(sorted(who)), repr(ports))


def check(docs):
    """The list of what differs from the allow-list (empty: nothing)."""
    problems = []
    kinds = {d["kind"] for d in docs}
    if kinds - KINDS:
        problems.append("kinds not on the list: %s" % sorted(kinds - KINDS))
    pods = pods_of(docs)
    if set(pods) != set(CONTAINER_PORTS):
        problems.append("pods %s, the list has %s" % (sorted(pods), sorted(CONTAINER_PORTS)))

    for comp, (_, spec) in sorted(pods.items()):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                problems.append("%s has %s" % (comp, field))
        got = {}
        for c in spec.get("initContainers", []) + spec["containers"]:
            for p in c.get("ports", []):
                if "hostPort" in p or "hostIP" in p:
                    problems.append("%s/%s has a host port: %s" % (comp, c["name"], p))
                if p.get("protocol", "TCP") != "TCP":
                    problems.append("%s/%s has a %s port: %s" % (comp, c["name"], p["protocol"], p))
                got[p.get("name", "(unnamed)")] = p["containerPort"]
        if got != CONTAINER_PORTS.get(comp, {}):
            problems.append("%s's container ports %s, the list has %s" % (comp, got, CONTAINER_PORTS.get(comp)))

    services = {}
    for s in (d for d in docs if d["kind"] == "Service"):
        spec = s["spec"]
        kind = "headless" if spec.get("clusterIP") == "None" else spec.get("type", "ClusterIP")
        for field in ("externalIPs", "externalName", "loadBalancerIP", "loadBalancerSourceRanges"):
            if spec.get(field):
                problems.append("Service %s sets %s" % (s["metadata"]["name"], field))
        for p in spec["ports"]:
            if "nodePort" in p:
                problems.append("Service %s fixes a nodePort: %s" % (s["metadata"]["name"], p))
        services[s["metadata"]["name"]] = (
            kind, set(selected(pods, {"matchLabels": spec.get("selector") or {}})),
            {p["name"]: p["port"] for p in spec["ports"]})
    for name in sorted(set(services) | set(SERVICES)):
        if services.get(name) != SERVICES.get(name):
            problems.append("Service %s is %s, the list has %s" % (name, services.get(name, "absent"),
                                                                   SERVICES.get(name, "nothing")))

    policies = {}
    guarded = set()
    for pol in (d for d in docs if d["kind"] == "NetworkPolicy"):
        name, spec = pol["metadata"]["name"], pol["spec"]
        if spec.get("policyTypes") != ["Ingress"]:
            problems.append("NetworkPolicy %s has policyTypes %s" % (name, spec.get("policyTypes")))
        on = selected(pods, spec.get("podSelector", {}))
        guarded |= set(on) if not isinstance(on, str) else set()
        rules = sorted(((peers(pods, r), ports_of(r)) for r in spec.get("ingress") or []),
                       key=rule_key)
        policies[name] = (on, rules)
    want_policies = {name: (frozenset(on), sorted((normalize(w, p) for w, p in rules), key=rule_key))
                     for name, (on, rules) in POLICIES.items()}
    for name in sorted(set(policies) | set(want_policies)):
        if policies.get(name) != want_policies.get(name):
            problems.append("NetworkPolicy %s is %s, the list has %s" % (name, policies.get(name, "absent"),
                                                                         want_policies.get(name, "nothing")))
    if set(pods) - guarded:
        problems.append("no NetworkPolicy guards %s: anything may reach them" % sorted(set(pods) - guarded))

    conf = {}
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        for line in cm.get("data", {}).get("spark-defaults.conf", "").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition(" ")
                conf[key] = value.strip()
    for key, want in SPARK_DEFAULTS.items():
        if conf.get(key) != want:
            problems.append("spark-defaults.conf has %s=%s, the list has %s" % (key, conf.get(key), want))
    return problems


# ---- self-test: each of these opens one thing more ---------------------------------------

def _named(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _deployment(docs, component):
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["labels"][COMPONENT] == component)


def tamper_nodeport(docs):
    _named(docs, "Service", "sparkernel-spark-ui")["spec"]["type"] = "NodePort"


def tamper_service_port(docs):
    _named(docs, "Service", "spark-master")["spec"]["ports"].append({"name": "extra", "port": 6066})


def tamper_container_port(docs):
    _deployment(docs, "worker")["spec"]["template"]["spec"]["containers"][0]["ports"].append(
        {"name": "rpc", "containerPort": 7078})


def tamper_host_port(docs):
    _deployment(docs, "master")["spec"]["template"]["spec"]["containers"][0]["ports"][1]["hostPort"] = 8080


def tamper_policy_from_anywhere(docs):
    _named(docs, "NetworkPolicy", "sparkernel-drivers")["spec"]["ingress"][1].pop("from")


def tamper_policy_port(docs):
    _named(docs, "NetworkPolicy", "sparkernel-jupyter")["spec"]["ingress"][0]["ports"].append(
        {"protocol": "TCP", "port": 4040})


def tamper_policy_namespace(docs):
    _named(docs, "NetworkPolicy", "sparkernel-master")["spec"]["ingress"][0]["from"].append(
        {"namespaceSelector": {}})


def tamper_policy_missing(docs):
    docs.remove(_named(docs, "NetworkPolicy", "sparkernel-workers"))


def tamper_ingress_object(docs):
    docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "sparkernel-ui"},
                 "spec": {"defaultBackend": {"service": {"name": "sparkernel-spark-ui", "port": {"number": 4040}}}}})


def tamper_kill_enabled(docs):
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    cm["data"]["spark-defaults.conf"] = cm["data"]["spark-defaults.conf"].replace(
        "spark.ui.killEnabled               false", "spark.ui.killEnabled               true")


TAMPERS = {name[len("tamper_"):].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("tamper_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rendered")
    ap.add_argument("--tamper", choices=sorted(TAMPERS))
    args = ap.parse_args()
    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if args.tamper:
        TAMPERS[args.tamper](docs)
    problems = check(docs)
    for p in problems:
        print("  not on the allow-list: " + p)
    if args.tamper:
        if problems:
            print("  caught: tampering '%s'" % args.tamper)
            return 0
        print("  MISSED: tampering '%s' passed the allow-list" % args.tamper)
        return 1
    if not problems:
        print("  ok: %d container ports, %d Services, %d NetworkPolicies, as listed"
              % (sum(len(p) for p in CONTAINER_PORTS.values()), len(SERVICES), len(POLICIES)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
