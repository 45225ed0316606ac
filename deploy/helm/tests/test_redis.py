"""Redis (Memorystore): rate limits, identity's one-time codes and risk's rules in force, shared by every
replica. With redis.enabled, each service with redis.enabled (identity, notifications, risk) reads
FINTECH_REDIS__URL from Secret Manager, never from values, gets
FINTECH_REDIS__KEY_PREFIX in its ConfigMap, trusts the instance's own certificate authorities
(Secret Manager too, mounted read-only as the file FINTECH_REDIS__CA_FILE names) and may reach the
instance; no other service, and no migration Job, gets any of it. On in staging and production, off
in ci and in the defaults, where nothing of it is rendered."""

import pytest
import yaml

from conftest import REDIS_URL, base_values, env_values, full, manifest, services
from render import ENVIRONMENTS, HELM_DIR, render
from test_failures import fails

ENABLED = ("--set", "redis.enabled=true")
CA_FILE = "FINTECH_REDIS__CA_FILE"
CA_DIR = "/etc/fintech/redis"
CA_KEY = "redis-ca"
ON = {"ci": False, "staging": True, "production": True}
# identity rate-limits sign-ins, OTPs and SMS and keeps its one-time codes there; notifications
# rate-limits its messages per recipient (and SMS); risk shares its rules in force.
USERS = {"identity", "notifications", "risk"}


def one(docs, kind, name):
    (obj,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return obj


def find(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found[0] if found else None


def redis_rules(policy, env):
    net = env_values(env)["networkPolicy"]["redis"]
    return [r for r in policy["spec"].get("egress", [])
            if r.get("ports") == [{"protocol": "TCP", "port": net["port"]}]]


def app_env(docs, service):
    deployment = one(docs, "Deployment", full(service))
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}


def ca_volumes(spec):
    """The pod's volumes that are Secrets (only ever the Redis CA), and the container mounts of them."""
    secrets = {v["name"]: v for v in spec.get("volumes", []) if "secret" in v}
    mounts = [m for c in spec.get("initContainers", []) + spec["containers"]
              for m in c.get("volumeMounts", []) if m["name"] in secrets]
    return secrets, mounts


def pod(docs, kind, name):
    return one(docs, kind, name)["spec"]["template"]["spec"]


def assert_trusts_the_instance_ca(docs, service, env):
    """The CA bundle: the key redis-ca of the service's own Secret, from <prefix><redis.caSecret>,
    mounted read-only (and nothing else of that Secret) where FINTECH_REDIS__CA_FILE says."""
    values = env_values(env)
    data = {d["secretKey"]: d["remoteRef"] for d in one(docs, "ExternalSecret", full(service))["spec"]["data"]}
    assert data[CA_KEY] == {"key": f"{values['externalSecrets']['secretPrefix']}{values['redis']['caSecret']}",
                            "version": str(values["redis"]["caSecretVersion"])}
    config = one(docs, "ConfigMap", full(service))["data"]
    assert config[CA_FILE] == f"{CA_DIR}/ca.pem"
    spec = pod(docs, "Deployment", full(service))
    secrets, mounts = ca_volumes(spec)
    assert secrets == {"redis-ca": {"name": "redis-ca", "secret": {
        "secretName": full(service), "items": [{"key": CA_KEY, "path": "ca.pem"}], "defaultMode": 0o440}}}
    assert mounts == [{"name": "redis-ca", "mountPath": CA_DIR, "readOnly": True}]
    (container,) = spec["containers"]
    assert mounts[0] in container["volumeMounts"], "the service's own container"
    assert config[CA_FILE] == f"{mounts[0]['mountPath']}/{secrets['redis-ca']['secret']['items'][0]['path']}"
    assert not CA_DIR.startswith("/data") and not CA_DIR.startswith("/tmp"), "a folder of its own, not writable"
    # The security rules hold with the mount: read-only root filesystem, group-readable only.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["fsGroup"] == container["securityContext"]["runAsGroup"], \
        "the file (root, group fsGroup, 0440) is readable by the service's group"
    assert CA_FILE not in app_env(docs, service), "a path, not a secret: in the ConfigMap"


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def enabled(request):
    """(env, docs) of each environment rendered with redis.enabled."""
    return request.param, render(request.param, *ENABLED)


def test_on_in_staging_and_production_only(env):
    """The services' Redis client speaks TLS and trusts the instance's CA (redis.ca_file): on where
    replicas share limits (staging, production); off in ci and in the defaults, where nothing of it
    is rendered (deploy/helm/README.md, "Redis")."""
    assert base_values()["redis"]["enabled"] is False, "values.yaml: off unless an environment turns it on"
    assert env_values(env)["redis"]["enabled"] is ON[env]
    m = manifest(env)
    for name in services(env):
        uses = ON[env] and name in USERS
        assert (REDIS_URL in app_env(m.docs, name)) == uses, name
        config = m.one("ConfigMap", full(name))["data"]
        assert ("FINTECH_REDIS__KEY_PREFIX" in config) == uses, name
        assert (CA_FILE in config) == uses, name
        assert bool(ca_volumes(pod(m.docs, "Deployment", full(name)))[0]) == uses, name
        assert bool(redis_rules(m.one("NetworkPolicy", full(name)), env)) == uses, name
    for es in m.all("ExternalSecret"):
        keys = {d["secretKey"] for d in es["spec"]["data"]}
        uses = ON[env] and es["metadata"]["name"] in {full(name) for name in USERS}
        assert (REDIS_URL in keys) == uses and (CA_KEY in keys) == uses, es["metadata"]["name"]
    if ON[env]:
        for name in USERS:
            assert_trusts_the_instance_ca(m.docs, name, env)


def test_identity_trusts_the_instance_ca(enabled):
    env, docs = enabled
    for name in USERS:
        assert_trusts_the_instance_ca(docs, name, env)


def test_identity_reads_the_url_from_secret_manager(enabled):
    env, docs = enabled
    values = env_values(env)
    for name in sorted(USERS):
        ref = app_env(docs, name)[REDIS_URL]
        assert ref == {"name": REDIS_URL, "valueFrom": {"secretKeyRef": {"name": full(name), "key": REDIS_URL}}}
        data = {d["secretKey"]: d["remoteRef"] for d in one(docs, "ExternalSecret", full(name))["spec"]["data"]}
        assert data[REDIS_URL] == {"key": f"{values['externalSecrets']['secretPrefix']}redis-url", "version": "latest"}
        config = one(docs, "ConfigMap", full(name))["data"]
        assert config["FINTECH_REDIS__KEY_PREFIX"] == "fintech:"
        assert REDIS_URL not in config, "the URL holds the AUTH string: never in a ConfigMap"


def test_only_the_services_that_use_it(enabled):
    env, docs = enabled
    declared = {name for name, svc in env_values(env)["services"].items() if ((svc or {}).get("redis") or {}).get("enabled")}
    assert declared == USERS, \
        "identity rate-limits sign-ins, OTPs and SMS and keeps its codes; notifications its messages; risk its rules"
    for name in services(env):
        uses = name in USERS
        assert (REDIS_URL in app_env(docs, name)) == uses, name
        assert ("FINTECH_REDIS__KEY_PREFIX" in one(docs, "ConfigMap", full(name))["data"]) == uses, name
        assert (CA_FILE in one(docs, "ConfigMap", full(name))["data"]) == uses, name
        assert bool(ca_volumes(pod(docs, "Deployment", full(name)))[0]) == uses, name
        assert bool(redis_rules(one(docs, "NetworkPolicy", full(name)), env)) == uses, name
        migrate = find(docs, "Job", f"{full(name)}-migrate")
        if migrate:
            names = {e["name"] for e in migrate["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            assert REDIS_URL not in names, f"{name}'s migration needs no Redis"
            assert not ca_volumes(migrate["spec"]["template"]["spec"])[0], f"{name}'s migration needs no CA"
        migrate_policy = find(docs, "NetworkPolicy", f"{full(name)}-migrate")
        if migrate_policy:
            assert not redis_rules(migrate_policy, env)


def test_the_users_may_read_the_secrets_in_terraform():
    """Each service the chart gives Redis is `redis: true` in Terraform's catalog, which lets its
    Google service account read the URL and CA secrets; no other service of the chart is (the
    catalog also lists services not built yet)."""
    catalog = yaml.safe_load((HELM_DIR.parent / "terraform" / "services.yaml").read_text())["services"]
    readers = {name for name, s in catalog.items() if (s or {}).get("redis")}
    assert readers & set(base_values()["services"]) == USERS


def test_identity_reaches_memorystore_only(enabled):
    env, docs = enabled
    net = env_values(env)["networkPolicy"]["redis"]
    for name in USERS:
        (rule,) = redis_rules(one(docs, "NetworkPolicy", full(name)), env)
        assert rule == {"to": [{"ipBlock": {"cidr": c}} for c in net["cidrs"]],
                        "ports": [{"protocol": "TCP", "port": 6378}]}, "Memorystore with TLS in transit"


def annotations(docs):
    return one(docs, "Deployment", full("identity"))["spec"]["template"]["metadata"]["annotations"]


def test_turning_it_on_rolls_identity():
    before = annotations(manifest("ci").docs)
    after = annotations(render("ci", *ENABLED))
    assert before["checksum/secret"] != after["checksum/secret"]
    assert before["checksum/config"] != after["checksum/config"]


def test_a_new_ca_version_rolls_identity():
    """The process reads the CA file at start: pinning the next version of the CA bundle rolls the pods."""
    after = render("staging", "--set", "redis.caSecretVersion=2")
    assert annotations(manifest("staging").docs)["checksum/secret"] != annotations(after)["checksum/secret"]
    data = {d["secretKey"]: d["remoteRef"] for d in one(after, "ExternalSecret", full("identity"))["spec"]["data"]}
    assert data[CA_KEY] == {"key": "fintech-stg-redis-ca", "version": "2"}


def test_another_service_opts_in_with_one_key():
    docs = render("staging", *ENABLED, "--set", "services.contact-us.redis.enabled=true",
                  "--set", "redis.keyPrefix=stg:", "--set", "redis.secretVersion=3",
                  "--set", "redis.caSecret=stg-redis-ca", "--set", "redis.caSecretVersion=4")
    assert app_env(docs, "contact-us")[REDIS_URL]["valueFrom"]["secretKeyRef"] == \
        {"name": full("contact-us"), "key": REDIS_URL}
    data = {d["secretKey"]: d["remoteRef"] for d in one(docs, "ExternalSecret", full("contact-us"))["spec"]["data"]}
    assert data[REDIS_URL] == {"key": "fintech-stg-redis-url", "version": "3"}
    assert data[CA_KEY] == {"key": "fintech-stg-stg-redis-ca", "version": "4"}
    assert one(docs, "ConfigMap", full("contact-us"))["data"]["FINTECH_REDIS__KEY_PREFIX"] == "stg:"
    assert one(docs, "ConfigMap", full("contact-us"))["data"][CA_FILE] == f"{CA_DIR}/ca.pem"
    assert ca_volumes(pod(docs, "Deployment", full("contact-us")))[0]["redis-ca"]["secret"]["secretName"] == \
        full("contact-us"), "its own Secret"


def test_an_environment_can_turn_it_off():
    docs = render("production", "--set", "redis.enabled=false")
    for name in services("production"):
        assert REDIS_URL not in app_env(docs, name)
        assert CA_FILE not in one(docs, "ConfigMap", full(name))["data"]
        assert not ca_volumes(pod(docs, "Deployment", full(name)))[0]


def test_redis_needs_its_address_range():
    err = fails(*ENABLED, "--set-json", "networkPolicy.redis.cidrs=[]")
    assert "services.identity.redis.enabled and redis.enabled are set, but networkPolicy.redis.cidrs is empty" in err


def test_the_url_is_set_by_the_chart_only():
    err = fails("--set", f"services.identity.secretEnv.{REDIS_URL}.secret=my-redis")
    assert f"services.identity.secretEnv.{REDIS_URL} is set by the chart itself" in err
    err = fails("--set", f"serviceDefaults.secretEnv.{REDIS_URL}.secret=my-redis")
    assert f"serviceDefaults.secretEnv.{REDIS_URL} is set by the chart itself" in err
    err = fails("--set", "services.identity.env.FINTECH_REDIS__KEY_PREFIX=x:")
    assert "services.identity.env.FINTECH_REDIS__KEY_PREFIX is set by the chart itself" in err
    err = fails("--set", f"services.identity.env.{CA_FILE}=/data/ca.pem")
    assert f"services.identity.env.{CA_FILE} is set by the chart itself" in err
    err = fails("--set", f"services.identity.env.{REDIS_URL}=redis://10.40.0.3:6379/0")
    assert REDIS_URL in err, "a URL in env is refused"


@pytest.mark.parametrize(("key", "value"), [("urlSecret", '"redis url"'), ("keyPrefix", '"' + "x" * 65 + '"'),
                                          ("secretVersion", '"newest"'), ("url", '"redis://10.0.0.1"'),
                                          ("caSecret", '""'), ("caSecret", '"redis/ca"'), ("caSecretVersion", "0"),
                                          ("caFile", '"/tmp/ca.pem"'),
                                          ("caCertificate", '"-----BEGIN CERTIFICATE-----"')])
def test_redis_settings_are_checked(key, value):
    err = fails("--set-json", f"redis.{key}={value}")
    assert "/redis" in err and "schema" in err
