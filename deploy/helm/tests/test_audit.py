"""audit: internal (operators read the log from inside the cluster, no route), its own database,
called by no service and calling none (it only fetches identity's keys to verify operators'
tokens), no secret at identity, and several replicas (appends serialize in the database)."""

from conftest import env_values, full, manifest, services, single_replica
from test_risk import (GATEWAY, admitted_services, assert_runs_several_replicas, called_services, config,
                       ingress_peers, peer, reaches, secret_keys)


def test_audit_is_internal_with_its_database(env):
    m = manifest(env)
    assert m.find("HTTPRoute", full("audit")) is None
    assert m.find("ClientSettingsPolicy", full("audit")) is None
    assert GATEWAY not in ingress_peers(env, "audit")
    assert not any(r["to"] == [peer("audit")] for r in m.one("NetworkPolicy", "fintech-gateway")["spec"]["egress"])
    assert "FINTECH_HTTP__REQUEST_TIMEOUT_MS" not in config(env, "audit"), "no route, no route timeout"
    job = m.one("Job", f"{full('audit')}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", "audit"]
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    assert secret_keys(env, "audit") == {"database-url": f"{prefix}audit-database-url"}, \
        "audit calls no service: it has no secret at identity"


def test_no_service_calls_audit(env):
    assert admitted_services(env, "audit") == set()
    for name in services(env):
        if name != "audit":
            assert not reaches(env, name, "audit"), f"{name} reaches audit"
    # Only the metrics collectors get in.
    monitoring = env_values(env)["networkPolicy"]["monitoring"]["namespace"]
    assert all(p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == monitoring
               for p in ingress_peers(env, "audit"))


def test_audit_calls_no_service(env):
    """Its only URL is identity's, for the keys that verify operators' tokens."""
    data = config(env, "audit")
    assert {k for k in data if k.endswith("_URL")} == {"FINTECH_AUTH__IDENTITY_URL"}
    assert called_services(env, "audit") == {"identity"}
    assert "FINTECH_AUTH__SERVICE_SECRET" not in secret_keys(env, "audit")
    assert "FINTECH_IDENTITY__SERVICE_SECRETS__AUDIT" not in secret_keys(env, "identity")


def test_audit_runs_several_replicas(env):
    assert not single_replica(env, "audit")
    assert_runs_several_replicas(env, "audit")
