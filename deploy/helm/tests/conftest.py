"""Shared fixtures: the rendered manifests of every environment and the expected settings.

The expectations are computed from the values files themselves (values.yaml, then the
environment's file, merged the way Helm merges them), so that adding a service adds its cases
here without touching the tests.
"""

import copy
import functools
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import yaml  # noqa: E402

from render import CHART, ENVIRONMENTS, render, values_file  # noqa: E402


def merge(base, override):
    """Helm's values merge: maps merge key by key, null deletes a key, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif key in out:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@functools.lru_cache(maxsize=None)
def base_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


@functools.lru_cache(maxsize=None)
def env_values(env: str) -> dict:
    return merge(base_values(), yaml.safe_load(values_file(env).read_text()) or {})


def identity_service(env: str) -> str:
    """The service that issues access tokens (auth.identityService)."""
    return env_values(env)["auth"]["identityService"]


def services(env: str) -> dict:
    """Each service's settings in an environment, merged over serviceDefaults, with what the chart
    derives from auth.identityService: every other service calls identity (its serviceUrls get
    FINTECH_AUTH__IDENTITY_URL) and identity admits them all (its allowedCallers); from redis:
    a service's redis.enabled holds only when the release has a Redis, and such a service reads
    FINTECH_REDIS__URL from Secret Manager (its secretEnv); from sms: each listed provider is an
    external endpoint (its base URL and address ranges) and a secretEnv entry (its credential, and
    vonage's signature secret when one is named); and from email: when enabled, FINTECH_EMAIL__SMTP_URL
    is a secretEnv entry."""
    values = env_values(env)
    out = {name: merge(values["serviceDefaults"], svc or {}) for name, svc in values["services"].items()}
    for svc in out.values():
        uses_redis = bool(values["redis"]["enabled"] and (svc.get("redis") or {}).get("enabled"))
        svc["redis"] = {"enabled": uses_redis}
        if uses_redis:
            svc["secretEnv"] = {**(svc.get("secretEnv") or {}), REDIS_URL: {
                "secret": values["redis"]["urlSecret"], "version": values["redis"]["secretVersion"]}}
        sms = svc.get("sms") or {}
        for provider in sms.get("providers") or []:
            settings = sms[provider]
            key, variable = SMS_CREDENTIALS[provider]
            svc["externalEndpoints"] = {**(svc.get("externalEndpoints") or {}), sms_url(provider): {
                "url": settings["baseUrl"], "cidrs": settings.get("cidrs") or []}}
            svc["secretEnv"] = {**(svc.get("secretEnv") or {}), variable: settings[key]}
            if provider == "vonage" and (settings.get("signatureSecret") or {}).get("secret"):
                svc["secretEnv"][VONAGE_SIGNATURE_SECRET] = settings["signatureSecret"]
        email = svc.get("email") or {}
        if email.get("enabled"):
            svc["secretEnv"] = {**(svc.get("secretEnv") or {}), SMTP_URL: email["smtpUrl"]}
    identity = identity_service(env)
    if identity in out:
        callers = list(out[identity]["allowedCallers"])
        callers += [name for name in sorted(out) if name != identity and name not in callers]
        out[identity]["allowedCallers"] = callers
        for name, svc in out.items():
            if name != identity:
                svc["serviceUrls"] = {**(svc.get("serviceUrls") or {}), "FINTECH_AUTH__IDENTITY_URL": identity}
    return out


REDIS_URL = "FINTECH_REDIS__URL"
# Each SMS provider's credential: its key under services.<name>.sms.<provider>, and its variable.
SMS_CREDENTIALS = {"twilio": ("authToken", "FINTECH_SMS__TWILIO__AUTH_TOKEN"),
                   "vonage": ("apiSecret", "FINTECH_SMS__VONAGE__API_SECRET")}
# The key Vonage-style delivery receipts are verified with (sms.vonage.signatureSecret, optional).
VONAGE_SIGNATURE_SECRET = "FINTECH_SMS__VONAGE__SIGNATURE_SECRET"
# The SMTP server's URL (email.smtpUrl, with email.enabled): it holds the password.
SMTP_URL = "FINTECH_EMAIL__SMTP_URL"


def sms_url(provider: str) -> str:
    """The variable of an SMS provider's base URL (an external endpoint of the service)."""
    return f"FINTECH_SMS__{provider.upper()}__BASE_URL"


def key_store(env: str) -> str:
    """vault's key store in an environment: local (a key file on its disk) or cloud_kms."""
    return str((services(env)["vault"].get("env") or {}).get("FINTECH_VAULT__KEY_STORE", "local"))


def single_replica(env: str, service: str) -> bool:
    """A service with a persistentVolume runs exactly one pod: no autoscaler, Recreate rollouts."""
    return bool(services(env)[service].get("persistentVolume"))


class Manifest:
    """The objects of one rendered environment, with look-ups by kind and name."""

    def __init__(self, env: str, docs: list[dict]):
        self.env = env
        self.docs = docs

    def all(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def find(self, kind: str, name: str):
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        assert len(found) <= 1, f"{len(found)} {kind} objects named {name}"
        return found[0] if found else None

    def one(self, kind: str, name: str) -> dict:
        obj = self.find(kind, name)
        assert obj is not None, f"{self.env}: no {kind} named {name}"
        return obj


@functools.lru_cache(maxsize=None)
def manifest(env: str) -> Manifest:
    return Manifest(env, render(env))


SERVICE_CASES = [(env, name) for env in ENVIRONMENTS for name in services(env)]


def full(name: str) -> str:
    """Resource name of a service (release "fintech" gives "fintech-<service>")."""
    return f"fintech-{name}"


def pod_labels(name: str) -> dict:
    return {
        "app.kubernetes.io/name": "fintech",
        "app.kubernetes.io/instance": "fintech",
        "app.kubernetes.io/component": name,
    }


def pytest_generate_tests(metafunc):
    if "env" in metafunc.fixturenames and "service" in metafunc.fixturenames:
        metafunc.parametrize(("env", "service"), SERVICE_CASES, ids=[f"{e}-{s}" for e, s in SERVICE_CASES])
    elif "env" in metafunc.fixturenames:
        metafunc.parametrize("env", ENVIRONMENTS)
