"""risk: public for staff (assessments and rules through the entry point), asked for a verdict on
each card payment by payments only, inside the cluster, with payments' own service secret; its own
database, no secret of its own at identity, its rules in force shared through Redis where the
release has one, and several replicas (it keeps no state in the pod). payments takes the client's
address from the last X-Forwarded-For entry, as identity does."""

from conftest import REDIS_URL, env_values, full, manifest, pod_labels, services, single_replica
from test_failures import fails

GATEWAY = {"podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "fintech"}}}
HTTP = [{"protocol": "TCP", "port": 8080}]


def config(env, service):
    return manifest(env).one("ConfigMap", full(service))["data"]


def secret_keys(env, service):
    """Variable -> Secret Manager id, from the service's ExternalSecret ({} without one)."""
    es = manifest(env).find("ExternalSecret", full(service))
    return {d["secretKey"]: d["remoteRef"]["key"] for d in es["spec"]["data"]} if es else {}


def peer(service):
    return {"podSelector": {"matchLabels": pod_labels(service)}}


def ingress_peers(env, service):
    return [p for r in manifest(env).one("NetworkPolicy", full(service))["spec"]["ingress"] for p in r["from"]]


def admitted_services(env, service):
    """The services of the release whose pods may call this one (not the gateway, not the collectors)."""
    return {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in ingress_peers(env, service)
            if "namespaceSelector" not in p and "app.kubernetes.io/component" in p["podSelector"]["matchLabels"]}


def called_services(env, service):
    """The services of the release this one's pods may reach (its egress peers chosen by pod, not the
    ones chosen by namespace)."""
    egress = manifest(env).one("NetworkPolicy", full(service))["spec"]["egress"]
    return {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for r in egress for p in r["to"]
            if "podSelector" in p and "namespaceSelector" not in p}


def assert_runs_several_replicas(env, service):
    """No disk of its own, an autoscaler that may add replicas, rolling updates."""
    m = manifest(env)
    assert m.find("PersistentVolumeClaim", full(service)) is None
    assert m.one("HorizontalPodAutoscaler", full(service))["spec"]["maxReplicas"] > 1
    assert m.one("Deployment", full(service))["spec"]["strategy"]["type"] == "RollingUpdate"


def reaches(env, caller, callee):
    egress = manifest(env).one("NetworkPolicy", full(caller))["spec"]["egress"]
    return any(r["to"] == [peer(callee)] and r["ports"] == HTTP for r in egress)


def test_risk_is_public_with_its_database(env):
    m = manifest(env)
    (rule,) = m.one("HTTPRoute", full("risk"))["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/risk"}}]
    assert rule["backendRefs"] == [{"name": full("risk"), "port": 8080}]
    assert GATEWAY in ingress_peers(env, "risk"), "staff reach risk through the entry point"
    assert any(r["to"] == [peer("risk")] for r in m.one("NetworkPolicy", "fintech-gateway")["spec"]["egress"])
    job = m.one("Job", f"{full('risk')}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", "risk"]
    values = env_values(env)
    prefix = values["externalSecrets"]["secretPrefix"]
    redis = {REDIS_URL: f"{prefix}{values['redis']['urlSecret']}", "redis-ca": f"{prefix}{values['redis']['caSecret']}"}
    assert secret_keys(env, "risk") == {"database-url": f"{prefix}risk-database-url",
                                        **(redis if values["redis"]["enabled"] else {})}, \
        "risk calls no service: it has no secret at identity (only Redis's, where the release has one)"


def test_payments_and_only_payments_calls_risk(env):
    assert config(env, "payments")["FINTECH_PAYMENTS__RISK_URL"] == f"http://{full('risk')}:8080"
    assert reaches(env, "payments", "risk")
    assert admitted_services(env, "risk") == {"payments"}
    for name in services(env):
        if name not in ("payments", "risk"):
            assert not reaches(env, name, "risk"), f"{name} reaches risk"
            assert not any(k.endswith("__RISK_URL") for k in config(env, name)), name
    # Besides payments, only the entry point and the metrics collectors get in.
    others = [p for p in ingress_peers(env, "risk") if p not in (GATEWAY, peer("payments"))]
    assert others and all(p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] ==
                          env_values(env)["networkPolicy"]["monitoring"]["namespace"] for p in others)


def test_payments_asks_risk_with_its_own_secret(env):
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    identity = secret_keys(env, "identity")
    assert secret_keys(env, "payments")["FINTECH_AUTH__SERVICE_SECRET"] == f"{prefix}payments-service-secret" \
        == identity["FINTECH_IDENTITY__SERVICE_SECRETS__PAYMENTS"]
    assert "FINTECH_IDENTITY__SERVICE_SECRETS__RISK" not in identity, "risk calls no service"
    assert "FINTECH_AUTH__SERVICE_SECRET" not in secret_keys(env, "risk")


def test_payments_trusts_the_forwarded_client_address_as_identity_does(env):
    """risk's velocity rules count card payments per client address: behind the gateway, the last
    X-Forwarded-For entry (the one NGINX appends) is the client."""
    assert config(env, "payments")["FINTECH_PAYMENTS__TRUST_FORWARDED_FOR"] == \
        config(env, "identity")["FINTECH_IDENTITY__TRUST_FORWARDED_FOR"] == "true"
    for name in ("payments", "identity"):
        assert manifest(env).find("HTTPRoute", full(name)), f"{name} is reached through the gateway only"


def test_its_rules_in_redis_where_the_release_has_one(env):
    """Its replicas share the rules in force through Redis (staging, production); without one (ci),
    each reads its database."""
    uses = env_values(env)["redis"]["enabled"]
    assert services(env)["risk"]["redis"]["enabled"] is uses
    assert (REDIS_URL in secret_keys(env, "risk")) == uses
    assert ("FINTECH_REDIS__KEY_PREFIX" in config(env, "risk")) == uses
    net = env_values(env)["networkPolicy"]["redis"]
    egress = manifest(env).one("NetworkPolicy", full("risk"))["spec"]["egress"]
    rules = [r for r in egress if r.get("ports") == [{"protocol": "TCP", "port": net["port"]}]]
    assert rules == ([{"to": [{"ipBlock": {"cidr": c}} for c in net["cidrs"]],
                       "ports": [{"protocol": "TCP", "port": 6378}]}] if uses else []), "Memorystore with TLS"


def test_risk_runs_several_replicas(env):
    assert not single_replica(env, "risk")
    assert_runs_several_replicas(env, "risk")


def test_payments_needs_risk_to_admit_it():
    err = fails("--set-json", "services.risk.allowedCallers=[]")
    assert "services.payments.serviceUrls.FINTECH_PAYMENTS__RISK_URL points at risk" in err
    assert "services.risk.allowedCallers does not list payments" in err


def test_payments_needs_risk_in_the_release():
    err = fails("--set-json", "services.risk=null")
    assert 'services.payments.serviceUrls.FINTECH_PAYMENTS__RISK_URL names "risk", which is not a service of this release' \
        in err
