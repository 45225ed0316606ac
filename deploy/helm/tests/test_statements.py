"""statements: each account's monthly statement, as CSV and PDF in its bucket, downloadable by its
owner through a short-lived signed link. Public (owners and staff, with bearer tokens), its own
database, its subscription in Terraform's catalog (accounts.events, nothing published), its bucket
with its own account as the signer (as contact-us), and the ledger read over HTTP with service
tokens traded for its own secret, which identity checks; nothing calls it."""

import re

import yaml

from conftest import env_values, full, manifest, services
from render import CHART, HELM_DIR
from test_failures import fails
from test_risk import (GATEWAY, admitted_services, assert_runs_several_replicas, called_services, config,
                       ingress_peers, reaches, secret_keys)
from test_service_calls import service_calls
from test_webhooks import catalog, code_topics, egress_of, public_rules

NAME = "statements"
REPO = HELM_DIR.parent.parent
LEDGER_URL = "FINTECH_STATEMENTS__LEDGER_URL"
SERVICE_SECRET = "FINTECH_AUTH__SERVICE_SECRET"


def rust_list(source, const):
    found = re.search(r"pub const %s: &\[&str\] = &\[(.*?)\];" % const, source, re.DOTALL)
    assert found, const
    return set(re.findall(r'"([^"]+)"', found.group(1)))


def test_statements_is_public_with_its_database(env):
    m = manifest(env)
    (rule,) = m.one("HTTPRoute", full(NAME))["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/statements"}}]
    assert rule["backendRefs"] == [{"name": full(NAME), "port": 8080}]
    assert rule["timeouts"] == {"request": "30s"}, "a statement is made within the request"
    assert GATEWAY in ingress_peers(env, NAME), "owners reach it through the entry point"
    job = m.one("Job", f"{full(NAME)}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", NAME]
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    assert secret_keys(env, NAME) == {"database-url": f"{prefix}statements-database-url",
                                      SERVICE_SECRET: f"{prefix}statements-service-secret"}
    assert config(env, NAME)["FINTECH_DATABASE__STATEMENTS__MAX_CONNECTIONS"]


def test_its_bucket_and_signer_are_wired_like_contact_us(env):
    """FINTECH_STORAGE__* from `bucket`: the bucket "<prefix>statements", and its own Google service
    account (the one its pods run as) signing the V4 download links through IAM signBlob."""
    values = env_values(env)
    m = manifest(env)
    for name, key in ((NAME, "statements"), ("contact-us", "attachments")):
        data = config(env, name)
        gsa = m.one("ServiceAccount", full(name))["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        assert gsa == f"{values['workloadIdentity']['gsaPrefix']}{name}@{values['gcp']['projectId']}.iam.gserviceaccount.com"
        assert {k: v for k, v in data.items() if k.startswith("FINTECH_STORAGE__")} == {
            "FINTECH_STORAGE__BACKEND": "gcs",
            "FINTECH_STORAGE__BUCKET": f"{values['storage']['bucketPrefix']}{key}",
            "FINTECH_STORAGE__SIGNER_SERVICE_ACCOUNT": gsa,
        }, name
    assert services(env)[NAME]["bucket"] == "statements"
    assert catalog()[NAME]["buckets"] == ["statements"]


def test_it_reads_the_ledger_with_its_own_secret(env):
    """The ledger's in-cluster URL, the network path both ways, and its secret at identity: the same
    Secret Manager secret identity checks."""
    assert config(env, NAME)[LEDGER_URL] == f"http://{full('ledger')}:8080"
    assert reaches(env, NAME, "ledger")
    assert NAME in admitted_services(env, "ledger")
    assert reaches(env, NAME, "identity"), "its service tokens come from identity"
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    assert secret_keys(env, NAME)[SERVICE_SECRET] == f"{prefix}statements-service-secret" \
        == secret_keys(env, "identity")["FINTECH_IDENTITY__SERVICE_SECRETS__STATEMENTS"]


def test_the_code_lets_statements_read_the_ledger():
    """identity issues statements tokens for the ledger only (SERVICE_CALLS), and the ledger lets
    statements read but not write (the chart's wiring of every call: test_service_calls.py)."""
    assert service_calls()[NAME] == ["ledger"]
    ledger = (REPO / "services" / "ledger" / "src" / "routes.rs").read_text()
    assert NAME in rust_list(ledger, "READERS")
    assert NAME not in rust_list(ledger, "CALLERS"), "statements only reads the ledger"
    base = yaml.safe_load((CHART / "values.yaml").read_text())["services"]
    assert set(base["ledger"]["allowedCallers"]) == rust_list(ledger, "READERS")


def test_its_subscription_and_secret_are_terraforms():
    """One subscription ("<prefix>-statements.accounts.events"), no stream of its own, its secret
    read by itself and by identity."""
    entry = catalog()[NAME]
    assert entry["consumes"] == code_topics(NAME) == ["accounts.events"]
    assert entry["publishes"] is False
    assert entry["database"] == NAME
    assert entry["secrets"] == ["statements-service-secret"]
    assert "statements-service-secret" in catalog()["identity"]["secrets"]
    assert not entry.get("redis")
    assert not [name for name, s in catalog().items() if "statements.events" in (s.get("consumes") or [])]


def test_nothing_calls_it_and_it_calls_the_ledger_only(env):
    assert admitted_services(env, NAME) == set()
    for name in services(env):
        if name != NAME:
            assert not reaches(env, name, NAME), f"{name} reaches statements"
    assert {k for k in config(env, NAME) if k.endswith("_URL")} == {"FINTECH_AUTH__IDENTITY_URL", LEDGER_URL}
    assert called_services(env, NAME) == {"identity", "ledger"}
    assert public_rules(egress_of(env, NAME)) == [], "Cloud Storage is a Google API, not the internet"


def test_its_settings_keep_the_codes_defaults(env):
    """statements.monthly, monthly_check_ms and link_ttl_s are not set: the code's defaults."""
    data = config(env, NAME)
    assert {k for k in data if k.startswith("FINTECH_STATEMENTS__")} == {LEDGER_URL}
    assert data["FINTECH_EVENTS__BACKEND"] == "pubsub"
    assert data["FINTECH_EVENTS__PUBSUB_PREFIX"] == env_values(env)["events"]["pubsubPrefix"]


def test_runs_several_replicas(env):
    assert_runs_several_replicas(env, NAME)


def test_statements_needs_the_ledger_to_admit_it():
    err = fails("--set-json", 'services.ledger.allowedCallers=["accounts","payments"]')
    assert f"services.statements.serviceUrls.{LEDGER_URL} points at ledger" in err
    assert "services.ledger.allowedCallers does not list statements" in err


def test_statements_needs_its_secret_at_identity():
    err = fails("--set-json", "services.identity.secretEnv.FINTECH_IDENTITY__SERVICE_SECRETS__STATEMENTS=null")
    assert "services.statements.secretEnv.FINTECH_AUTH__SERVICE_SECRET reads" in err
    assert "identity would refuse the service's token requests" in err


def test_its_bucket_needs_the_prefix():
    err = fails("--set", "storage.bucketPrefix=")
    assert "storage.bucketPrefix is empty" in err
