"""vault: public for customers' cards, charged by payments only, its key file on a disk of its own
with exactly one replica (the Google Cloud KMS key store is not built yet), and no way out to the
internet unless a real acquirer is configured."""

import json

import pytest

from conftest import env_values, full, manifest, pod_labels, services
from render import render
from test_failures import fails

ACQUIRER_URL = "FINTECH_VAULT__ACQUIRER_URL"
ACQUIRER_KEY = "FINTECH_VAULT__ACQUIRER_API_KEY"
ENDPOINT = {"url": "https://api.acquirer.example:8443/v2", "cidrs": ["203.0.113.0/24"]}


def config(docs_or_env, service):
    docs = manifest(docs_or_env).docs if isinstance(docs_or_env, str) else docs_or_env
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == full(service)]
    return cm["data"]


def one(docs, kind, name):
    (obj,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return obj


def peer(service):
    return {"podSelector": {"matchLabels": pod_labels(service)}}


def platform_blocks(env):
    """The address ranges every service may reach: DNS, the metadata server, Google APIs, Cloud SQL."""
    net = env_values(env)["networkPolicy"]
    return (set(net["dns"]["cidrs"]) | {m["cidr"] for m in net["metadataServer"]}
            | set(net["googleApis"]["cidrs"]) | set(net["cloudSql"]["cidrs"]))


def ip_blocks(policy):
    return {p["ipBlock"]["cidr"] for r in policy["spec"].get("egress", []) for p in r["to"] if "ipBlock" in p}


def with_acquirer(endpoint=ENDPOINT, *extra):
    return ("--set", "services.vault.env.FINTECH_VAULT__ACQUIRER=http",
            "--set-json", f"services.vault.externalEndpoints={json.dumps({ACQUIRER_URL: endpoint})}",
            "--set", f"services.vault.secretEnv.{ACQUIRER_KEY}.secret=vault-acquirer-api-key", *extra)


def test_vault_is_public_with_its_database(env):
    m = manifest(env)
    (rule,) = m.one("HTTPRoute", full("vault"))["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/vault"}}]
    data = config(env, "vault")
    # vault's deadline outlasts the acquirer's 15 s.
    assert int(data["FINTECH_HTTP__REQUEST_TIMEOUT_MS"]) > 15_000
    job = m.one("Job", f"{full('vault')}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", "vault"]
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    data_keys = {d["secretKey"]: d["remoteRef"]["key"] for d in m.one("ExternalSecret", full("vault"))["spec"]["data"]}
    assert data_keys == {"database-url": f"{prefix}vault-database-url"}, "the simulator needs no secret"


def test_payments_and_only_payments_calls_vault(env):
    m = manifest(env)
    assert config(env, "payments")["FINTECH_PAYMENTS__VAULT_URL"] == f"http://{full('vault')}:8080"
    assert any(r["to"] == [peer("vault")] and r["ports"] == [{"protocol": "TCP", "port": 8080}]
               for r in m.one("NetworkPolicy", full("payments"))["spec"]["egress"])
    callers = {p["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
               for r in m.one("NetworkPolicy", full("vault"))["spec"]["ingress"] for p in r["from"]
               if "namespaceSelector" not in p and "app.kubernetes.io/component" in p["podSelector"]["matchLabels"]}
    assert callers == {"payments"}
    for name in services(env):
        if name not in ("payments", "vault"):
            egress = m.one("NetworkPolicy", full(name))["spec"]["egress"]
            assert not any(r["to"] == [peer("vault")] for r in egress), f"{name} reaches vault"


def test_vault_keeps_its_key_file_on_its_own_disk(env):
    m = manifest(env)
    volume = services(env)["vault"]["persistentVolume"]
    key_file = config(env, "vault")["FINTECH_VAULT__KEY_FILE"]
    assert key_file.startswith(volume["mountPath"] + "/") and ".." not in key_file
    deployment = m.one("Deployment", full("vault"))
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    spec = deployment["spec"]["template"]["spec"]
    (mount,) = [v for v in spec["containers"][0]["volumeMounts"] if v["mountPath"] == volume["mountPath"]]
    (claim,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert claim["persistentVolumeClaim"] == {"claimName": full("vault")}
    pvc = m.one("PersistentVolumeClaim", full("vault"))
    assert pvc["spec"]["accessModes"] == ["ReadWriteOncePod"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert m.find("HorizontalPodAutoscaler", full("vault")) is None
    assert m.one("PodDisruptionBudget", full("vault"))["spec"]["maxUnavailable"] == 1
    # No other service has a disk.
    assert {p["metadata"]["name"] for p in m.all("PersistentVolumeClaim")} == {full("vault")}


def test_vault_reaches_no_third_party_by_default(env):
    m = manifest(env)
    data = config(env, "vault")
    assert not {k for k in data if k.startswith("FINTECH_VAULT__ACQUIRER")}, "the simulator"
    for name in services(env):
        assert ip_blocks(m.one("NetworkPolicy", full(name))) <= platform_blocks(env), name


def test_a_real_acquirer_opens_only_its_own_egress():
    docs = render("staging", *with_acquirer())
    data = config(docs, "vault")
    assert data["FINTECH_VAULT__ACQUIRER"] == "http"
    assert data[ACQUIRER_URL] == ENDPOINT["url"]
    egress = one(docs, "NetworkPolicy", full("vault"))["spec"]["egress"]
    (rule,) = [r for r in egress if {"ipBlock": {"cidr": "203.0.113.0/24"}} in r["to"]]
    assert rule == {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 8443}]}
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] != full("vault")):
        assert "203.0.113.0/24" not in ip_blocks(policy), policy["metadata"]["name"]
    # The API key by reference only, from the Secret Manager secret Terraform declares.
    prefix = env_values("staging")["externalSecrets"]["secretPrefix"]
    es = one(docs, "ExternalSecret", full("vault"))
    assert {"secretKey": ACQUIRER_KEY, "remoteRef": {"key": f"{prefix}vault-acquirer-api-key", "version": "latest"}} \
        in es["spec"]["data"]
    container = one(docs, "Deployment", full("vault"))["spec"]["template"]["spec"]["containers"][0]
    (env_var,) = [e for e in container["env"] if e["name"] == ACQUIRER_KEY]
    assert env_var["valueFrom"]["secretKeyRef"] == {"name": full("vault"), "key": ACQUIRER_KEY}
    assert ACQUIRER_KEY not in data


def test_acquirer_port_defaults_to_443():
    docs = render("staging", *with_acquirer({"url": "https://api.acquirer.example/v2", "cidrs": ["198.51.100.0/24"]}))
    egress = one(docs, "NetworkPolicy", full("vault"))["spec"]["egress"]
    (rule,) = [r for r in egress if {"ipBlock": {"cidr": "198.51.100.0/24"}} in r["to"]]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]


@pytest.mark.parametrize(("low", "high"), [(1, 2), (2, 2), (3, 10)])
def test_more_than_one_vault_replica_is_refused(low, high):
    err = fails("--set", f"services.vault.autoscaling.minReplicas={low}",
                "--set", f"services.vault.autoscaling.maxReplicas={high}")
    assert f"services.vault.autoscaling allows {high} replicas: vault runs exactly one" in err
    assert "Google Cloud KMS key store" in err


def test_vault_key_file_must_be_on_its_disk():
    err = fails("--set", "services.vault.env.FINTECH_VAULT__KEY_FILE=/data/vault/keys.json")
    assert "FINTECH_VAULT__KEY_FILE must name a file on services.vault.persistentVolume" in err
    err = fails("--set", "services.vault.env.FINTECH_VAULT__KEY_FILE=/data/keys/../vault/keys.json")
    assert "FINTECH_VAULT__KEY_FILE must name a file on services.vault.persistentVolume" in err
    err = fails("--set-json", "services.vault.env.FINTECH_VAULT__KEY_FILE=null")
    assert "FINTECH_VAULT__KEY_FILE must name a file on services.vault.persistentVolume" in err
    err = fails("--set-json", "services.vault.persistentVolume=null")
    assert "services.vault.persistentVolume is required" in err


def test_http_acquirer_needs_its_endpoint_and_key():
    err = fails("--set", "services.vault.env.FINTECH_VAULT__ACQUIRER=http")
    assert "set services.vault.externalEndpoints.FINTECH_VAULT__ACQUIRER_URL" in err
    err = fails("--set", "services.vault.env.FINTECH_VAULT__ACQUIRER=http",
                "--set-json", f"services.vault.externalEndpoints={json.dumps({ACQUIRER_URL: ENDPOINT})}")
    assert f"set services.vault.secretEnv.{ACQUIRER_KEY}" in err


def test_no_acquirer_egress_for_the_simulator():
    err = fails("--set-json", f"services.vault.externalEndpoints={json.dumps({ACQUIRER_URL: ENDPOINT})}")
    assert "FINTECH_VAULT__ACQUIRER_URL is set, but FINTECH_VAULT__ACQUIRER is \"simulator\"" in err


@pytest.mark.parametrize("cidrs", [["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"], ["10.0.0.0/8"], ["::/0"]])
def test_external_endpoints_name_a_third_party_not_the_internet(cidrs):
    err = fails(*with_acquirer({"url": "https://api.acquirer.example", "cidrs": cidrs}))
    assert "name the third party's own address ranges" in err


@pytest.mark.parametrize("url", ["http://api.acquirer.example", "https://user:pw@api.acquirer.example",
                                 "https://api.acquirer.example/?key=1"])
def test_external_endpoints_are_https_without_credentials(url):
    err = fails(*with_acquirer({"url": url, "cidrs": ["203.0.113.0/24"]}))
    assert "externalEndpoints" in err and "url" in err


def test_persistent_volume_means_one_replica():
    err = fails("--set-json", 'services.contact-us.persistentVolume={"mountPath":"/data/uploads","size":"10Gi"}')
    assert "services.contact-us.persistentVolume can be mounted by one pod only" in err
    err = fails("--set-json", 'services.contact-us.persistentVolume={"mountPath":"/var/uploads","size":"10Gi"}',
                "--set", "services.contact-us.autoscaling.minReplicas=1",
                "--set", "services.contact-us.autoscaling.maxReplicas=1")
    assert "mountPath" in err, "inside the data dir only"


def test_disks_and_third_parties_are_per_service_only():
    err = fails("--set-json", 'serviceDefaults.persistentVolume={"mountPath":"/data/x","size":"10Gi"}')
    assert "serviceDefaults" in err
    err = fails("--set-json", f"serviceDefaults.externalEndpoints={json.dumps({'FINTECH_X__Y_URL': ENDPOINT})}")
    assert "serviceDefaults" in err
