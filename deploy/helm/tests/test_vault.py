"""vault: public for customers' cards, charged by payments only; its keys either in a key file on a
disk of its own with exactly one replica (the local key store: values.yaml and ci), or in Cloud KMS
with no disk and several replicas (cloud_kms: staging and production); and no way out to the
internet but Google's APIs unless a real acquirer is configured."""

import json

import pytest

from conftest import env_values, full, key_store, manifest, pod_labels, services
from render import render, template
from test_failures import fails

KEK = "FINTECH_VAULT__KMS_KEY"
FINGERPRINT = "FINTECH_VAULT__KMS_FINGERPRINT_KEY"
KMS_KEYS = {KEK: {"key": "vault"}, FINGERPRINT: {"key": "vault-fingerprint", "version": 1}}
# What an environment file sets to move vault from its key file (values.yaml) to Cloud KMS.
CLOUD_KMS = ("--set", "services.vault.env.FINTECH_VAULT__KEY_STORE=cloud_kms",
             "--set-json", "services.vault.env.FINTECH_VAULT__KEY_FILE=null",
             "--set-json", "services.vault.persistentVolume=null",
             "--set-json", f"services.vault.kmsKeys={json.dumps(KMS_KEYS)}",
             "--set", "cloudKms.location=europe-west1", "--set", "cloudKms.keyRing=fintech-ci-keyring")


def fails_in(env, *args):
    """The render of `env` with `args` fails; returns its error output."""
    result = template(env, *args)
    assert result.returncode != 0, "the render should have failed"
    return result.stderr

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
            | set(net["googleApis"]["cidrs"]) | set(net["cloudSql"]["cidrs"]) | set(net["redis"]["cidrs"]))


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


def test_key_store_per_environment():
    """ci keeps the key file of values.yaml (its borrowed KMS key is shared by every build, so no
    build may rotate it); staging and production keep vault's keys in Cloud KMS."""
    assert {env: key_store(env) for env in ("ci", "staging", "production")} == \
        {"ci": "local", "staging": "cloud_kms", "production": "cloud_kms"}


def assert_key_file_on_its_own_disk(docs, volume):
    data = config(docs, "vault")
    key_file = data["FINTECH_VAULT__KEY_FILE"]
    assert key_file.startswith(volume["mountPath"] + "/") and ".." not in key_file
    assert not {k for k in data if k.startswith("FINTECH_VAULT__KMS")}
    deployment = one(docs, "Deployment", full("vault"))
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    spec = deployment["spec"]["template"]["spec"]
    (mount,) = [v for v in spec["containers"][0]["volumeMounts"] if v["mountPath"] == volume["mountPath"]]
    (claim,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert claim["persistentVolumeClaim"] == {"claimName": full("vault")}
    pvc = one(docs, "PersistentVolumeClaim", full("vault"))
    assert pvc["spec"]["accessModes"] == ["ReadWriteOncePod"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == full("vault")]
    assert one(docs, "PodDisruptionBudget", full("vault"))["spec"]["maxUnavailable"] == 1
    # No other service has a disk.
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"} == {full("vault")}


def assert_keys_in_cloud_kms(docs, values, autoscaling):
    """No key file and no disk; the KEK and the fingerprint key version of the environment's key
    ring by name; an autoscaler and rolling updates like any stateless service; and the egress to
    Google's APIs, Cloud KMS among them."""
    data = config(docs, "vault")
    ring = (f"projects/{values['gcp']['projectId']}/locations/{values['cloudKms']['location']}"
            f"/keyRings/{values['cloudKms']['keyRing']}")
    assert data["FINTECH_VAULT__KEY_STORE"] == "cloud_kms"
    assert data[KEK] == f"{ring}/cryptoKeys/vault"
    assert data[FINGERPRINT] == f"{ring}/cryptoKeys/vault-fingerprint/cryptoKeyVersions/1"
    # Workload Identity (the default credentials), Google's endpoint, no key file.
    assert not {"FINTECH_VAULT__KEY_FILE", "FINTECH_VAULT__KMS_ENDPOINT", "FINTECH_VAULT__KMS_CREDENTIALS"} & set(data)
    deployment = one(docs, "Deployment", full("vault"))
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the count"
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = deployment["spec"]["template"]["spec"]
    assert all("emptyDir" in v for v in spec["volumes"]), "no disk"
    assert {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]} == {"/data", "/tmp"}
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    hpa = one(docs, "HorizontalPodAutoscaler", full("vault"))
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == \
        (autoscaling["minReplicas"], autoscaling["maxReplicas"])
    assert hpa["spec"]["maxReplicas"] > 1
    egress = one(docs, "NetworkPolicy", full("vault"))["spec"]["egress"]
    google = {"to": [{"ipBlock": {"cidr": c}} for c in values["networkPolicy"]["googleApis"]["cidrs"]],
              "ports": [{"protocol": "TCP", "port": 443}]}
    assert google in egress, "Cloud KMS over Private Google Access"


def test_vault_key_store(env):
    docs = manifest(env).docs
    if key_store(env) == "local":
        assert_key_file_on_its_own_disk(docs, services(env)["vault"]["persistentVolume"])
    else:
        assert_keys_in_cloud_kms(docs, env_values(env), services(env)["vault"]["autoscaling"])
        pdb = one(docs, "PodDisruptionBudget", full("vault"))["spec"]
        if env == "production":
            assert pdb["minAvailable"] == 2


def test_cloud_kms_drops_the_disk_and_allows_replicas():
    """The default values (ci's) moved to Cloud KMS as an environment file does: the disk goes,
    and vault may run several replicas."""
    docs = render("ci", *CLOUD_KMS, "--set", "services.vault.autoscaling.minReplicas=2",
                  "--set", "services.vault.autoscaling.maxReplicas=5")
    values = {**env_values("ci"), "cloudKms": {"location": "europe-west1", "keyRing": "fintech-ci-keyring"}}
    assert_keys_in_cloud_kms(docs, values, {"minReplicas": 2, "maxReplicas": 5})


def test_rotation_needs_no_single_replica(env):
    """Several replicas are safe during a Cloud KMS rotation: each reads the key's primary version
    again every vault.kms_primary_refresh_ms (5 s unless set), and the rotation waits that long. The
    chart leaves the default; an environment may set FINTECH_VAULT__KMS_PRIMARY_REFRESH_MS in env."""
    data = config(env, "vault")
    assert "FINTECH_VAULT__KMS_PRIMARY_REFRESH_MS" not in data, "vault's default (5000 ms)"
    if key_store(env) == "cloud_kms":
        assert services(env)["vault"]["autoscaling"]["minReplicas"] > 1
        docs = render(env, "--set", "services.vault.env.FINTECH_VAULT__KMS_PRIMARY_REFRESH_MS=2000")
        assert config(docs, "vault")["FINTECH_VAULT__KMS_PRIMARY_REFRESH_MS"] == "2000"


def test_vault_reaches_no_third_party_by_default(env):
    m = manifest(env)
    data = config(env, "vault")
    assert not {k for k in data if k.startswith("FINTECH_VAULT__ACQUIRER")}, "the simulator"
    for name, svc in services(env).items():
        # webhooks' public egress (any public address, never the platform's: see test_webhooks.py).
        public = {"0.0.0.0/0"} if (svc.get("publicEgress") or {}).get("enabled") else set()
        assert ip_blocks(m.one("NetworkPolicy", full(name))) - public <= platform_blocks(env), name


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
def test_more_than_one_vault_replica_is_refused_with_the_local_key_store(low, high):
    err = fails_in("ci", "--set", f"services.vault.autoscaling.minReplicas={low}",
                   "--set", f"services.vault.autoscaling.maxReplicas={high}")
    assert f"services.vault.autoscaling allows {high} replicas: vault runs exactly one" in err
    assert "Google Cloud KMS key store (FINTECH_VAULT__KEY_STORE=cloud_kms" in err
    # The same in staging or production moved back to the local key store.
    err = fails_in("staging", "--set", "services.vault.env.FINTECH_VAULT__KEY_STORE=local",
                   "--set-json", "services.vault.kmsKeys={}",
                   "--set-json", 'services.vault.persistentVolume={"mountPath":"/data/keys","size":"10Gi"}',
                   "--set", "services.vault.env.FINTECH_VAULT__KEY_FILE=/data/keys/keys.json")
    assert "vault runs exactly one while its keys are in a local key file" in err


def test_vault_key_file_must_be_on_its_disk():
    err = fails_in("ci", "--set", "services.vault.env.FINTECH_VAULT__KEY_FILE=/data/vault/keys.json")
    assert "FINTECH_VAULT__KEY_FILE must name a file on services.vault.persistentVolume" in err
    err = fails_in("ci", "--set", "services.vault.env.FINTECH_VAULT__KEY_FILE=/data/keys/../vault/keys.json")
    assert "FINTECH_VAULT__KEY_FILE must name a file on services.vault.persistentVolume" in err
    err = fails_in("ci", "--set-json", "services.vault.env.FINTECH_VAULT__KEY_FILE=null")
    assert "FINTECH_VAULT__KEY_FILE must name a file on services.vault.persistentVolume" in err
    err = fails_in("ci", "--set-json", "services.vault.persistentVolume=null")
    assert "services.vault.persistentVolume is required with the local key store" in err


def test_cloud_kms_needs_both_keys_by_name():
    # (An environment file's own keys cannot be removed with null: --set-json replaces the whole map.)
    err = fails("--set-json", f"services.vault.kmsKeys={json.dumps({FINGERPRINT: KMS_KEYS[FINGERPRINT]})}")
    assert "set services.vault.kmsKeys.FINTECH_VAULT__KMS_KEY to the key-encryption key" in err
    err = fails("--set", "services.vault.kmsKeys.FINTECH_VAULT__KMS_KEY.version=3")
    assert "{key: vault} without a version" in err, "vault wraps with the primary version and rotates it"
    err = fails("--set-json", f"services.vault.kmsKeys={json.dumps({KEK: KMS_KEYS[KEK], FINGERPRINT: {'key': 'vault-fingerprint'}})}")
    assert "set services.vault.kmsKeys.FINTECH_VAULT__KMS_FINGERPRINT_KEY to the HMAC-SHA256 key version" in err
    err = fails("--set", "cloudKms.keyRing=")
    assert "services.vault.kmsKeys names Cloud KMS keys, but cloudKms.location or cloudKms.keyRing is empty" in err


def test_cloud_kms_has_no_key_file_and_no_disk():
    err = fails("--set-json", 'services.vault.persistentVolume={"mountPath":"/data/keys","size":"10Gi"}')
    assert "services.vault.persistentVolume is set, but FINTECH_VAULT__KEY_STORE is cloud_kms" in err
    err = fails("--set", "services.vault.env.FINTECH_VAULT__KEY_FILE=/data/keys/keys.json")
    assert "FINTECH_VAULT__KEY_FILE is set, but FINTECH_VAULT__KEY_STORE is cloud_kms" in err


def test_key_store_settings_that_are_refused():
    err = fails("--set", "services.vault.env.FINTECH_VAULT__KEY_STORE=hsm")
    assert 'FINTECH_VAULT__KEY_STORE is "hsm": it must be local or cloud_kms' in err
    err = fails("--set", "services.vault.env.FINTECH_VAULT__KMS_ENDPOINT=http://127.0.0.1:9000")
    assert "FINTECH_VAULT__KMS_ENDPOINT is for tests only" in err
    # Credentials are Workload Identity's (the default): the variable is refused as secret-looking.
    err = fails("--set", "services.vault.env.FINTECH_VAULT__KMS_CREDENTIALS=none")
    assert "FINTECH_VAULT__KMS_CREDENTIALS" in err
    # Key names never go through env (names ending in _KEY are refused there), only kmsKeys.
    err = fails("--set", "services.vault.env.FINTECH_VAULT__KMS_KEY=projects/p/locations/l/keyRings/r/cryptoKeys/k")
    assert "FINTECH_VAULT__KMS_KEY" in err
    err = fails_in("ci", "--set-json", f"services.vault.kmsKeys={json.dumps(KMS_KEYS)}")
    assert "services.vault.kmsKeys is set, but FINTECH_VAULT__KEY_STORE is local" in err


def test_kms_keys_are_names_per_service():
    err = fails("--set", "services.vault.kmsKeys.FINTECH_VAULT__KMS.key=vault")
    assert "FINTECH_VAULT__KMS" in err, "a kmsKeys variable ends in _KEY"
    err = fails("--set", "services.vault.kmsKeys.FINTECH_VAULT__KMS_KEY.key=projects/p/x")
    assert "/services/vault/kmsKeys" in err, "a key's name in the ring, not a path"
    err = fails("--set", "serviceDefaults.kmsKeys.FINTECH_X__Y_KEY.key=vault")
    assert "serviceDefaults" in err


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
