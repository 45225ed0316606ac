"""identity and the services around it: every service verifies access tokens with identity's keys
(FINTECH_AUTH__IDENTITY_URL and a network path to it), the services that call others over HTTP
trade their own secret at identity for service tokens, and the placeholder tokens are gone."""

import re

from conftest import env_values, full, identity_service, manifest, pod_labels, services

IDENTITY_URL = "FINTECH_AUTH__IDENTITY_URL"
SERVICE_SECRET = "FINTECH_AUTH__SERVICE_SECRET"

# Settings the binary no longer knows: a process given one of them refuses to start.
RETIRED_VARIABLES = {
    "FINTECH_CONTACT_US__SUPPORT__PLACEHOLDER_STAFF_TOKEN",
    "FINTECH_LEDGER__PLACEHOLDER_SERVICE_TOKEN",
    "FINTECH_ACCOUNTS__LEDGER_TOKEN",
    "FINTECH_ACCOUNTS__PLACEHOLDER_STAFF_TOKEN",
    "FINTECH_PAYMENTS__LEDGER_TOKEN",
    "FINTECH_PAYMENTS__PLACEHOLDER_API_TOKEN",
}
RETIRED_SECRETS = {"contact-us-staff-token", "ledger-service-token", "accounts-staff-token", "payments-api-token"}


def config(env, service):
    return manifest(env).one("ConfigMap", full(service))["data"]


def secret_keys(env, service):
    """Variable -> Secret Manager id, from the service's ExternalSecret ({} without one)."""
    es = manifest(env).find("ExternalSecret", full(service))
    return {d["secretKey"]: d["remoteRef"]["key"] for d in es["spec"]["data"]} if es else {}


def callee_peer(callee):
    return [{"podSelector": {"matchLabels": pod_labels(callee)}}]


def test_identity_is_a_service_of_every_environment(env):
    assert identity_service(env) == "identity"
    assert "identity" in services(env)


def test_every_service_reaches_identity(env, service):
    """Every service but identity gets identity's URL and may reach it on 8080 (its JWKS)."""
    m = manifest(env)
    identity = identity_service(env)
    data = config(env, service)
    if service == identity:
        assert IDENTITY_URL not in data, "identity verifies with its own keys"
        return
    assert data[IDENTITY_URL] == f"http://{full(identity)}:8080"
    egress = m.one("NetworkPolicy", full(service))["spec"]["egress"]
    (rule,) = [r for r in egress if r["to"] == callee_peer(identity)]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    ingress = m.one("NetworkPolicy", full(identity))["spec"]["ingress"]
    assert any({"podSelector": {"matchLabels": pod_labels(service)}} in r["from"] for r in ingress), \
        f"identity does not admit {service}"


def test_identity_is_public_and_has_its_database(env):
    m = manifest(env)
    route = m.one("HTTPRoute", full("identity"))
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/identity"}}]
    ingress = m.one("NetworkPolicy", full("identity"))["spec"]["ingress"]
    gateway = {"podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "fintech"}}}
    assert any(gateway in r["from"] for r in ingress), "the gateway reaches identity"
    job = m.one("Job", f"{full('identity')}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", "identity"]
    assert secret_keys(env, "identity")["database-url"] == \
        f"{env_values(env)['externalSecrets']['secretPrefix']}identity-database-url"


def test_identity_settings(env):
    data = config(env, "identity")
    # Behind the gateway, whose NGINX appends the client's address to X-Forwarded-For.
    assert data["FINTECH_IDENTITY__TRUST_FORWARDED_FOR"] == "true"
    assert re.fullmatch(r"[^@\s]+@[^@\s]+", data["FINTECH_IDENTITY__BOOTSTRAP_ADMIN_EMAIL"])
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    keys = secret_keys(env, "identity")
    assert keys["FINTECH_IDENTITY__BOOTSTRAP_ADMIN_PASSWORD"] == f"{prefix}identity-bootstrap-admin-password"
    assert SERVICE_SECRET not in keys, "identity signs its own service tokens"


def test_callers_have_a_service_secret_identity_knows(env, service):
    """A service that calls another over HTTP has its secret at identity, from the same Secret
    Manager secret identity checks it against."""
    identity = identity_service(env)
    urls = set(services(env)[service].get("serviceUrls") or {}) - {IDENTITY_URL}
    keys = secret_keys(env, service)
    if not urls:
        assert SERVICE_SECRET not in keys, f"{service} calls no service: it needs no secret at identity"
        return
    theirs = f"FINTECH_IDENTITY__SERVICE_SECRETS__{service.replace('-', '_').upper()}"
    assert keys[SERVICE_SECRET] == secret_keys(env, identity)[theirs]
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    assert keys[SERVICE_SECRET] == f"{prefix}{service}-service-secret"


def test_payments_asks_accounts(env):
    m = manifest(env)
    assert config(env, "payments")["FINTECH_PAYMENTS__ACCOUNTS_URL"] == f"http://{full('accounts')}:8080"
    assert config(env, "payments")["FINTECH_PAYMENTS__LEDGER_URL"] == f"http://{full('ledger')}:8080"
    assert config(env, "accounts")["FINTECH_ACCOUNTS__LEDGER_URL"] == f"http://{full('ledger')}:8080"
    ingress = m.one("NetworkPolicy", full("accounts"))["spec"]["ingress"]
    assert any({"podSelector": {"matchLabels": pod_labels("payments")}} in r["from"] for r in ingress)
    egress = m.one("NetworkPolicy", full("payments"))["spec"]["egress"]
    assert any(r["to"] == callee_peer("accounts") for r in egress)


def test_no_retired_setting_or_secret(env):
    m = manifest(env)
    for cm in m.all("ConfigMap"):
        assert not RETIRED_VARIABLES & set(cm["data"]), cm["metadata"]["name"]
    for d in m.docs:
        if d["kind"] in ("Deployment", "Job"):
            spec = d["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                names = {e["name"] for e in c.get("env", [])}
                assert not RETIRED_VARIABLES & names, f"{d['metadata']['name']}/{c['name']}"
                assert not any("PLACEHOLDER" in n for n in names)
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    retired = {prefix + s for s in RETIRED_SECRETS}
    for es in m.all("ExternalSecret"):
        for item in es["spec"]["data"]:
            assert item["secretKey"] not in RETIRED_VARIABLES
            assert item["remoteRef"]["key"] not in retired, es["metadata"]["name"]
