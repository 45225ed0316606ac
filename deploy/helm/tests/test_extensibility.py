"""Adding a service is one entry in values: render with new entries and check what comes out."""

import json

from conftest import base_values, full, pod_labels
from render import render

DIGEST = "sha256:" + "c" * 64
# Services that are not built (yet): each test adds them with one entry.
NEW_SERVICES = {"market-data", "investments"}


def with_services(entries: dict) -> list[dict]:
    args = []
    for name, entry in entries.items():
        args += ["--set-json", f"services.{name}={json.dumps(entry)}",
                 "--set", f"services.{name}.image.digest={DIGEST}"]
    return render("staging", *args)


def names(docs, kind):
    return {d["metadata"]["name"] for d in docs if d["kind"] == kind}


def test_the_new_services_are_not_in_values_yaml():
    """An entry given for a service values.yaml already has would merge with it, and prove nothing."""
    assert not NEW_SERVICES & set(base_values()["services"])


def test_minimal_entry_gets_everything():
    docs = with_services({"market-data": {}})
    for kind in ("Deployment", "Service", "ServiceAccount", "ConfigMap", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget", "NetworkPolicy", "PodMonitoring"):
        assert full("market-data") in names(docs, kind), kind
    # Internal by default: no route, no database, no secrets.
    assert full("market-data") not in names(docs, "HTTPRoute")
    assert f"{full('market-data')}-migrate" not in names(docs, "Job")
    assert full("market-data") not in names(docs, "ExternalSecret")
    # It verifies access tokens with identity's keys: identity's URL, and the path to it.
    config = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert config[full("market-data")]["data"]["FINTECH_AUTH__IDENTITY_URL"] == f"http://{full('identity')}:8080"
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    market_data_out = policies[full("market-data")]["spec"]["egress"]
    assert any(r["to"] == [{"podSelector": {"matchLabels": pod_labels("identity")}}] for r in market_data_out)
    assert not any("0.0.0.0/0" in json.dumps(r) for r in market_data_out), "no public egress by default"
    identity_in = policies[full("identity")]["spec"]["ingress"]
    assert any({"podSelector": {"matchLabels": pod_labels("market-data")}} in r["from"] for r in identity_in)


def test_database_route_and_callers_from_one_entry():
    docs = with_services({
        "market-data": {"database": {"enabled": True}, "allowedCallers": ["investments"]},
        "investments": {"database": {"enabled": True},
                        "route": {"pathPrefix": "/api/investments", "maxBodyBytes": 65536, "timeoutSeconds": 15},
                        "serviceUrls": {"FINTECH_INVESTMENTS__MARKET_DATA_URL": "market-data"}},
    })
    assert {f"{full('market-data')}-migrate", f"{full('investments')}-migrate"} <= names(docs, "Job")
    assert full("investments") in names(docs, "HTTPRoute")
    assert full("market-data") not in names(docs, "HTTPRoute")
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    market_data_in = policies[full("market-data")]["spec"]["ingress"]
    assert any({"podSelector": {"matchLabels": pod_labels("investments")}} in r["from"] for r in market_data_in)
    investments_out = policies[full("investments")]["spec"]["egress"]
    assert any(r["to"] == [{"podSelector": {"matchLabels": pod_labels("market-data")}}] for r in investments_out)
    # contact-us calls nobody: it gets no egress to the new services.
    contact_out = policies[full("contact-us")]["spec"]["egress"]
    assert not any(r["to"] == [{"podSelector": {"matchLabels": pod_labels("market-data")}}] for r in contact_out)
    csp = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClientSettingsPolicy"}
    assert csp[full("investments")]["spec"]["body"]["maxSize"] == "64k"
    config = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert config[full("investments")]["data"]["FINTECH_INVESTMENTS__MARKET_DATA_URL"] == f"http://{full('market-data')}:8080"


def test_service_can_be_removed_per_environment():
    docs = render("staging", "--set-json", "services.contact-us=null",
                  "--set-json", 'services.market-data={}', "--set", f"services.market-data.image.digest={DIGEST}")
    assert full("contact-us") not in names(docs, "Deployment")
    assert full("market-data") in names(docs, "Deployment")
