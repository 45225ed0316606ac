"""Redis (Memorystore): rate limits shared by every replica. With redis.enabled, each service with
redis.enabled (identity) reads FINTECH_REDIS__URL from Secret Manager, never from values, gets
FINTECH_REDIS__KEY_PREFIX in its ConfigMap and may reach the instance; no other service, and no
migration Job, gets either. Without it (every environment today) nothing of it is rendered."""

import json

import pytest

from conftest import REDIS_URL, env_values, full, manifest, services
from render import ENVIRONMENTS, render
from test_failures import fails

ENABLED = ("--set", "redis.enabled=true")


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


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def enabled(request):
    """(env, docs) of each environment rendered with redis.enabled."""
    return request.param, render(request.param, *ENABLED)


def test_off_in_every_environment(env):
    """Off until the services' Redis client speaks TLS (deploy/helm/README.md, "Redis")."""
    assert env_values(env)["redis"]["enabled"] is False
    m = manifest(env)
    for name in services(env):
        assert REDIS_URL not in app_env(m.docs, name)
        assert "FINTECH_REDIS__KEY_PREFIX" not in m.one("ConfigMap", full(name))["data"]
        assert not redis_rules(m.one("NetworkPolicy", full(name)), env)
    for es in m.all("ExternalSecret"):
        assert REDIS_URL not in {d["secretKey"] for d in es["spec"]["data"]}


def test_identity_reads_the_url_from_secret_manager(enabled):
    env, docs = enabled
    values = env_values(env)
    ref = app_env(docs, "identity")[REDIS_URL]
    assert ref == {"name": REDIS_URL, "valueFrom": {"secretKeyRef": {"name": full("identity"), "key": REDIS_URL}}}
    data = {d["secretKey"]: d["remoteRef"] for d in one(docs, "ExternalSecret", full("identity"))["spec"]["data"]}
    assert data[REDIS_URL] == {"key": f"{values['externalSecrets']['secretPrefix']}redis-url", "version": "latest"}
    config = one(docs, "ConfigMap", full("identity"))["data"]
    assert config["FINTECH_REDIS__KEY_PREFIX"] == "fintech:"
    assert REDIS_URL not in config, "the URL holds the AUTH string: never in a ConfigMap"


def test_only_the_services_that_use_it(enabled):
    env, docs = enabled
    declared = {name for name, svc in env_values(env)["services"].items() if ((svc or {}).get("redis") or {}).get("enabled")}
    assert declared == {"identity"}, "identity rate-limits sign-ins, OTPs and SMS"
    for name in services(env):
        uses = name == "identity"
        assert (REDIS_URL in app_env(docs, name)) == uses, name
        assert ("FINTECH_REDIS__KEY_PREFIX" in one(docs, "ConfigMap", full(name))["data"]) == uses, name
        assert bool(redis_rules(one(docs, "NetworkPolicy", full(name)), env)) == uses, name
        migrate = find(docs, "Job", f"{full(name)}-migrate")
        if migrate:
            names = {e["name"] for e in migrate["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            assert REDIS_URL not in names, f"{name}'s migration needs no Redis"
        migrate_policy = find(docs, "NetworkPolicy", f"{full(name)}-migrate")
        if migrate_policy:
            assert not redis_rules(migrate_policy, env)


def test_identity_reaches_memorystore_only(enabled):
    env, docs = enabled
    net = env_values(env)["networkPolicy"]["redis"]
    (rule,) = redis_rules(one(docs, "NetworkPolicy", full("identity")), env)
    assert rule == {"to": [{"ipBlock": {"cidr": c}} for c in net["cidrs"]],
                    "ports": [{"protocol": "TCP", "port": 6378}]}, "Memorystore with TLS in transit"


def test_turning_it_on_rolls_identity():
    before = manifest("staging").one("Deployment", full("identity"))["spec"]["template"]["metadata"]["annotations"]
    docs = render("staging", *ENABLED)
    after = one(docs, "Deployment", full("identity"))["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/secret"] != after["checksum/secret"]
    assert before["checksum/config"] != after["checksum/config"]


def test_another_service_opts_in_with_one_key():
    docs = render("staging", *ENABLED, "--set", "services.contact-us.redis.enabled=true",
                  "--set", "redis.keyPrefix=stg:", "--set", "redis.secretVersion=3")
    assert app_env(docs, "contact-us")[REDIS_URL]["valueFrom"]["secretKeyRef"] == \
        {"name": full("contact-us"), "key": REDIS_URL}
    data = {d["secretKey"]: d["remoteRef"] for d in one(docs, "ExternalSecret", full("contact-us"))["spec"]["data"]}
    assert data[REDIS_URL] == {"key": "fintech-stg-redis-url", "version": "3"}
    assert one(docs, "ConfigMap", full("contact-us"))["data"]["FINTECH_REDIS__KEY_PREFIX"] == "stg:"


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
    err = fails("--set", f"services.identity.env.{REDIS_URL}=redis://10.40.0.3:6379/0")
    assert REDIS_URL in err, "a URL in env is refused"


@pytest.mark.parametrize(("key", "value"), [("urlSecret", '"redis url"'), ("keyPrefix", '"' + "x" * 65 + '"'),
                                          ("secretVersion", '"newest"'), ("url", '"redis://10.0.0.1"')])
def test_redis_settings_are_checked(key, value):
    err = fails("--set-json", f"redis.{key}={value}")
    assert "/redis" in err and "schema" in err
