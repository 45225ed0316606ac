"""webhooks: merchants' HTTPS endpoints receive the events about them, signed. Public (merchants
manage their endpoints and deliveries with bearer tokens), its own database, its subscriptions in
Terraform's catalog (the streams its code reads, nothing published), no caller and no callee but
identity's keys, no secret. Its deliveries go to URLs merchants choose: its NetworkPolicy lets it
reach any public IPv4 address on 443 and none of the private, link-local, carrier-grade NAT or
loopback ranges, under the service's own SSRF guard, whose exemptions
(FINTECH_WEBHOOKS__ALLOWED_NETWORKS) stay empty in every environment."""

import ipaddress
import json
import re

import pytest
import yaml

from conftest import base_values, env_values, full, manifest, services
from render import ENVIRONMENTS, HELM_DIR, template, values_file
from test_failures import fails
from test_risk import (GATEWAY, admitted_services, assert_runs_several_replicas, called_services, config,
                       ingress_peers, reaches, secret_keys)

NAME = "webhooks"
REPO = HELM_DIR.parent.parent
EXEMPT = "FINTECH_WEBHOOKS__ALLOWED_NETWORKS"
# What the NetworkPolicy must never let it reach (values.schema.json requires these in
# networkPolicy.nonPublicCidrs), whatever a merchant's URL resolves to.
NON_PUBLIC = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8"]


def code_topics(service=NAME):
    """The streams the code subscribes to (services/<service>/src/lib.rs, TOPICS)."""
    source = (REPO / "services" / service / "src" / "lib.rs").read_text()
    found = re.search(r"pub const TOPICS: &\[&str\] = &\[(.*?)\];", source, re.DOTALL)
    assert found, f"TOPICS in services/{service}/src/lib.rs"
    return re.findall(r'"([^"]+)"', found.group(1))


def catalog():
    return yaml.safe_load((REPO / "deploy" / "terraform" / "services.yaml").read_text())["services"]


def egress_of(docs_or_env, service=NAME):
    if isinstance(docs_or_env, str):
        return manifest(docs_or_env).one("NetworkPolicy", full(service))["spec"]["egress"]
    (policy,) = [d for d in docs_or_env if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == full(service)]
    return policy["spec"]["egress"]


def public_rules(egress):
    """The egress rules to 0.0.0.0/0."""
    return [r for r in egress if any(p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for p in r["to"])]


def test_webhooks_is_public_with_its_database(env):
    m = manifest(env)
    (rule,) = m.one("HTTPRoute", full(NAME))["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/webhooks"}}]
    assert rule["backendRefs"] == [{"name": full(NAME), "port": 8080}]
    assert GATEWAY in ingress_peers(env, NAME), "merchants reach it through the entry point"
    job = m.one("Job", f"{full(NAME)}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", NAME]
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    assert secret_keys(env, NAME) == {"database-url": f"{prefix}webhooks-database-url"}, \
        "its database URL and nothing else: no Redis, no secret at identity"
    assert config(env, NAME)["FINTECH_DATABASE__WEBHOOKS__MAX_CONNECTIONS"]


def test_its_subscriptions_are_terraforms():
    """Terraform creates one subscription per stream the code reads ("<prefix>-webhooks.<stream>")
    and no topic of its own: it publishes nothing, and nobody consumes webhooks.events."""
    entry = catalog()[NAME]
    assert sorted(entry["consumes"]) == sorted(code_topics()) == ["accounts.events", "payments.events"]
    assert entry["publishes"] is False
    assert entry["database"] == NAME
    assert not entry.get("redis") and not entry.get("secrets") and not entry.get("buckets")
    assert not [name for name, s in catalog().items() if "webhooks.events" in (s.get("consumes") or [])]


def test_its_events_and_settings(env):
    """Pub/Sub with the environment's prefix; webhooks.* keep the code's defaults."""
    data = config(env, NAME)
    assert data["FINTECH_EVENTS__BACKEND"] == "pubsub"
    assert data["FINTECH_EVENTS__PUBSUB_PREFIX"] == env_values(env)["events"]["pubsubPrefix"]
    assert not [k for k in data if k.startswith("FINTECH_WEBHOOKS__")]


def test_no_service_calls_it_and_it_calls_none(env):
    """Its only URL is identity's (the keys that verify merchants' and staff's tokens)."""
    assert admitted_services(env, NAME) == set()
    for name in services(env):
        if name != NAME:
            assert not reaches(env, name, NAME), f"{name} reaches webhooks"
    assert {k for k in config(env, NAME) if k.endswith("_URL")} == {"FINTECH_AUTH__IDENTITY_URL"}
    assert called_services(env, NAME) == {"identity"}
    assert "FINTECH_IDENTITY__SERVICE_SECRETS__WEBHOOKS" not in secret_keys(env, "identity")


def test_runs_several_replicas(env):
    """Every replica runs the dispatcher; deliveries are claimed in the database first."""
    assert_runs_several_replicas(env, NAME)


# --- Egress to merchants' endpoints ---------------------------------------------------------------

def test_it_reaches_public_addresses_on_443_only(env):
    (rule,) = public_rules(egress_of(env))
    except_ = env_values(env)["networkPolicy"]["nonPublicCidrs"]
    assert rule == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": except_}}],
                    "ports": [{"protocol": "TCP", "port": 443}]}
    assert set(NON_PUBLIC) <= set(except_)
    for name in services(env):
        if name != NAME:
            assert public_rules(egress_of(env, name)) == [], f"{name} reaches the internet"
    policies = manifest(env).all("NetworkPolicy")
    assert not [p for p in policies if "::/0" in json.dumps(p)], "no IPv6 internet"


def test_the_exceptions_cover_the_platforms_own_addresses(env):
    """Everything internal the release knows of lies in an excepted range: the VPC's ranges from
    Terraform (nodes, pods, Services, Cloud SQL and Memorystore, the control plane), the
    environment's Cloud SQL and Redis ranges, the node-local DNS cache and the metadata server."""
    values = env_values(env)
    excepted = [ipaddress.ip_network(c) for c in values["networkPolicy"]["nonPublicCidrs"]]
    environment = (REPO / "deploy" / "terraform" / "modules" / "environment" / "main.tf").read_text()
    vpc = re.findall(r'^\s*(?:subnet|pods|services|private_service_access|master_ipv4)_cidr(?:_block)?\s*=\s*"([^"]+)"',
                     environment, re.MULTILINE)
    assert len(vpc) == 5, vpc
    internal = vpc + values["networkPolicy"]["cloudSql"]["cidrs"] + values["networkPolicy"]["redis"]["cidrs"] \
        + values["networkPolicy"]["dns"]["cidrs"] + [m["cidr"] for m in values["networkPolicy"]["metadataServer"]]
    for cidr in internal:
        net = ipaddress.ip_network(cidr)
        assert any(net.subnet_of(e) for e in excepted), f"{cidr} is not excepted"


def test_the_ports_are_configurable():
    docs = template("staging", "--set-json", f"services.{NAME}.publicEgress.ports=[443,8443]")
    assert docs.returncode == 0, docs.stderr
    docs = [d for d in yaml.safe_load_all(docs.stdout) if d]
    (rule,) = public_rules(egress_of(docs))
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 8443}]


def test_it_can_be_turned_off():
    result = template("staging", "--set", f"services.{NAME}.publicEgress.enabled=false")
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert public_rules(egress_of(docs)) == []


@pytest.mark.parametrize("missing", NON_PUBLIC)
def test_a_non_public_range_cannot_be_dropped(missing):
    kept = [c for c in base_values()["networkPolicy"]["nonPublicCidrs"] if c != missing]
    err = fails("--set-json", f"networkPolicy.nonPublicCidrs={json.dumps(kept)}")
    assert "/networkPolicy/nonPublicCidrs" in err


@pytest.mark.parametrize(("path", "value", "named"), [
    (f"services.{NAME}.publicEgress.ports", [], f"/services/{NAME}/publicEgress"),
    (f"services.{NAME}.publicEgress.ports", [0], f"/services/{NAME}/publicEgress"),
    (f"services.{NAME}.publicEgress.cidr", "0.0.0.0/0", f"/services/{NAME}/publicEgress"),
    ("networkPolicy.nonPublicCidrs", NON_PUBLIC + ["fc00::/7"], "/networkPolicy/nonPublicCidrs"),
    ("serviceDefaults.publicEgress", {"enabled": True, "ports": [443]}, "/serviceDefaults"),
])
def test_public_egress_settings_are_checked(path, value, named):
    """Ports are TCP ports, at least one; the exceptions are IPv4 ranges (the rule is 0.0.0.0/0);
    publicEgress is per service only."""
    err = fails("--set-json", f"{path}={json.dumps(value)}")
    assert named in err


# --- The SSRF guard's exemptions ---------------------------------------------------------------

def test_no_network_is_exempt_from_the_guard(env):
    """webhooks.allowed_networks is empty by default in the code, and no environment sets it."""
    source = (REPO / "services" / NAME / "src" / "config.rs").read_text()
    assert re.search(r"allowed_networks:\s*String::new\(\)", source), "the code's default is empty"
    for values in (base_values(), yaml.safe_load(values_file(env).read_text()) or {}):
        for name, svc in (values.get("services") or {}).items():
            assert EXEMPT not in ((svc or {}).get("env") or {}), f"{name} sets {EXEMPT}"
        assert EXEMPT not in ((values.get("serviceDefaults") or {}).get("env") or {})
    for cm in manifest(env).all("ConfigMap"):
        assert not cm["data"].get(EXEMPT), cm["metadata"]["name"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("value", ["10.0.0.0/8", "127.0.0.0/8", "0.0.0.0/0", "203.0.113.0/24"])
def test_an_exempt_network_is_refused(environment, value):
    """In every environment, production and staging included: not even a public range (the list
    also lets plain http:// through)."""
    result = template(environment, "--set", f"services.{NAME}.env.{EXEMPT}={value}")
    assert result.returncode != 0, f"{environment}: {value} was accepted"
    assert f"services.{NAME}.env.{EXEMPT} must stay empty" in result.stderr


def test_an_exempt_network_is_refused_from_anywhere():
    err = fails("--set", f"serviceDefaults.env.{EXEMPT}=10.0.0.0/8")
    assert f"env.{EXEMPT} must stay empty" in err
    err = fails("--set", f"services.{NAME}.secretEnv.{EXEMPT}.secret=webhooks-networks")
    assert f"services.{NAME}.secretEnv.{EXEMPT} must not be set" in err


def test_an_empty_value_is_the_default():
    result = template("production", "--set", f"services.{NAME}.env.{EXEMPT}=")
    assert result.returncode == 0, result.stderr
