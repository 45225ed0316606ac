"""notifications: e-mail and SMS to customers, driven by events. Public (customers and staff read
the deliveries, and the SMS providers post their signed delivery statuses under the same prefix),
its own database, its subscriptions in Terraform's catalog (the streams its code reads, nothing
published), its per-recipient limit in Redis where the release has one, no caller and no callee but
identity's keys. E-mail and SMS are off by default and in every environment (the file outboxes in
the pod); turned on, e-mail reads the SMTP server's URL from Secret Manager and may reach that
server's address ranges on 587 and 465 only, and SMS are wired as identity's, with notifications'
own secrets. Support's alerts about contact requests (notifications.support_email) are unset by
default and in every environment, and once set in its env, an address in its ConfigMap."""

import json
import re

import pytest
import yaml

from conftest import SMTP_URL, VONAGE_SIGNATURE_SECRET, env_values, full, manifest, services
from render import CHART, HELM_DIR, render
from test_failures import fails
from test_risk import (GATEWAY, admitted_services, assert_runs_several_replicas, called_services, config,
                       ingress_peers, reaches, secret_keys)

NAME = "notifications"
REPO = HELM_DIR.parent.parent
SMTP_PORTS = [{"protocol": "TCP", "port": 587}, {"protocol": "TCP", "port": 465}]
SMTP_CIDRS = ["203.0.113.25/32", "198.51.100.0/28"]
EMAIL_ON = ("--set", f"services.{NAME}.email.enabled=true",
            "--set-json", f"services.{NAME}.email.smtpCidrs={json.dumps(SMTP_CIDRS)}")
TWILIO = {"cidrs": ["198.51.100.0/24"], "accountSid": "AC" + "0123456789abcdef" * 2, "from": "+15005550006",
          "statusCallback": "https://api.staging.fintech.example/api/notifications/v1/sms/status/twilio"}
VONAGE = {"cidrs": ["203.0.113.0/24"], "apiKey": "12345678", "from": "447700900000",
          "statusCallback": "https://api.staging.fintech.example/api/notifications/v1/sms/status/vonage"}
# The routes the SMS providers call: no access token, the providers' signatures instead.
STATUS_ROUTES = ("/api/notifications/v1/sms/status/twilio", "/api/notifications/v1/sms/status/vonage")


def one(docs, kind, name):
    (obj,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return obj


def data_of(docs, service=NAME):
    return one(docs, "ConfigMap", full(service))["data"]


def external_secret(docs, service=NAME):
    found = [d for d in docs if d["kind"] == "ExternalSecret" and d["metadata"]["name"] == full(service)]
    return {d["secretKey"]: d["remoteRef"] for d in found[0]["spec"]["data"]} if found else {}


def app_env(docs, service=NAME):
    container = one(docs, "Deployment", full(service))["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container.get("env", [])}


def smtp_rules(docs, service):
    """Egress rules of a service's NetworkPolicy on an SMTP port."""
    return [r for r in one(docs, "NetworkPolicy", full(service))["spec"]["egress"]
            if any(p["port"] in (25, 465, 587) for p in r.get("ports", []))]


def code_topics():
    """The streams the code subscribes to (services/notifications/src/lib.rs, TOPICS)."""
    source = (REPO / "services" / NAME / "src" / "lib.rs").read_text()
    found = re.search(r"pub const TOPICS: &\[&str\] = &\[(.*?)\];", source, re.DOTALL)
    assert found, "TOPICS in services/notifications/src/lib.rs"
    return re.findall(r'"([^"]+)"', found.group(1))


def catalog():
    return yaml.safe_load((REPO / "deploy" / "terraform" / "services.yaml").read_text())["services"]


def test_notifications_is_public_with_its_database(env):
    m = manifest(env)
    (rule,) = m.one("HTTPRoute", full(NAME))["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api/notifications"}}]
    assert rule["backendRefs"] == [{"name": full(NAME), "port": 8080}]
    assert GATEWAY in ingress_peers(env, NAME)
    job = m.one("Job", f"{full(NAME)}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", NAME]
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    assert secret_keys(env, NAME)["database-url"] == f"{prefix}notifications-database-url"
    assert config(env, NAME)["FINTECH_DATABASE__NOTIFICATIONS__MAX_CONNECTIONS"]


def test_the_providers_reach_the_status_callbacks(env):
    """The providers' delivery statuses come in through the public gateway, under the service's
    prefix: the route covers them, and the edge admits their small forms."""
    m = manifest(env)
    route = services(env)[NAME]["route"]
    for path in STATUS_ROUTES:
        assert path.startswith(route["pathPrefix"] + "/")
    assert 1024 <= route["maxBodyBytes"] <= 65536
    gateway_out = m.one("NetworkPolicy", "fintech-gateway")["spec"]["egress"]
    assert any(r["to"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "fintech", "app.kubernetes.io/instance": "fintech",
        "app.kubernetes.io/component": NAME}}}] for r in gateway_out)


def test_its_settings(env):
    data = config(env, NAME)
    assert data["FINTECH_NOTIFICATIONS__PER_RECIPIENT_PER_HOUR"] == "30"
    assert data["FINTECH_NOTIFICATIONS__SIGN_IN_ALERTS"] == "true"
    assert data["FINTECH_EVENTS__BACKEND"] == "pubsub"
    assert data["FINTECH_EVENTS__PUBSUB_PREFIX"] == env_values(env)["events"]["pubsubPrefix"]


def test_its_subscriptions_are_terraforms():
    """Terraform creates one subscription per stream the code reads ("<prefix>-notifications.<stream>",
    the name the service subscribes under) and no topic of its own: it publishes nothing yet."""
    entry = catalog()[NAME]
    assert sorted(entry["consumes"]) == sorted(code_topics()) == sorted(
        ["accounts.events", "payments.events", "contact-us.events", "identity.events"])
    assert entry["publishes"] is False
    assert entry["database"] == NAME
    assert entry["redis"] is True, "its per-recipient limit"
    publishers = {name for name, s in catalog().items() if s.get("publishes")}
    assert {stream.removesuffix(".events") for stream in entry["consumes"]} <= publishers
    assert not [name for name, s in catalog().items() if "notifications.events" in (s.get("consumes") or [])]


def test_no_service_calls_it_and_it_calls_none(env):
    """Its only URL is identity's (the keys that verify customers' and staff's tokens)."""
    assert admitted_services(env, NAME) == set()
    for name in services(env):
        if name != NAME:
            assert not reaches(env, name, NAME), f"{name} reaches notifications"
    assert {k for k in config(env, NAME) if k.endswith("_URL")} == {"FINTECH_AUTH__IDENTITY_URL"}
    assert called_services(env, NAME) == {"identity"}
    assert "FINTECH_AUTH__SERVICE_SECRET" not in secret_keys(env, NAME)
    assert "FINTECH_IDENTITY__SERVICE_SECRETS__NOTIFICATIONS" not in secret_keys(env, "identity")


def test_runs_several_replicas(env):
    assert_runs_several_replicas(env, NAME)
    assert manifest(env).one("PodDisruptionBudget", full(NAME))


def test_its_limits_in_redis_where_the_release_has_one(env):
    uses = env_values(env)["redis"]["enabled"]
    assert ("FINTECH_REDIS__URL" in secret_keys(env, NAME)) == uses
    assert ("FINTECH_REDIS__KEY_PREFIX" in config(env, NAME)) == uses


# --- Support's alerts about contact requests ---------------------------------------------------

SUPPORT_EMAIL = "FINTECH_NOTIFICATIONS__SUPPORT_EMAIL"


def test_the_code_reads_support_email_and_alerts_no_one_by_default():
    """notifications.support_email (FINTECH_NOTIFICATIONS__SUPPORT_EMAIL) is an optional address,
    unset by default: the variable the chart leaves out is the one the code reads."""
    source = (REPO / "services" / NAME / "src" / "config.rs").read_text()
    assert re.search(r"pub support_email: Option<String>,", source)
    assert re.search(r"support_email: None", source)
    assert SUPPORT_EMAIL not in yaml.safe_load((CHART / "values.yaml").read_text())["services"][NAME]["env"]


def test_no_support_alerts_in_any_environment(env):
    """Unset everywhere (no environment file names an e-mail address yet): no alert, nothing rendered."""
    assert SUPPORT_EMAIL not in (services(env)[NAME].get("env") or {})
    m = manifest(env)
    for cm in m.all("ConfigMap"):
        assert SUPPORT_EMAIL not in cm["data"], cm["metadata"]["name"]
    assert SUPPORT_EMAIL not in app_env(m.docs)
    assert SUPPORT_EMAIL not in external_secret(m.docs)


def test_support_email_when_set():
    """Set in notifications' env: in its ConfigMap as given (an address is read as a string), for it
    alone, and its pods roll; it is an address, never a secret, and e-mail stays as it was."""
    address = "support@fintech.example"
    docs = render("staging", "--set", f"services.{NAME}.env.{SUPPORT_EMAIL}={address}")
    data = data_of(docs)
    assert data[SUPPORT_EMAIL] == address
    assert data["FINTECH_NOTIFICATIONS__PER_RECIPIENT_PER_HOUR"] == "30", "the other settings stay"
    assert not [k for k in data if k.startswith("FINTECH_EMAIL__")], "e-mail stays off: the file outbox"
    assert SUPPORT_EMAIL not in external_secret(docs)
    for name in services("staging"):
        if name != NAME:
            assert SUPPORT_EMAIL not in data_of(docs, name), name

    def annotations(rendered):
        return one(rendered, "Deployment", full(NAME))["spec"]["template"]["metadata"]["annotations"]
    assert annotations(docs)["checksum/config"] != annotations(manifest("staging").docs)["checksum/config"]


@pytest.mark.parametrize("value", ["", "support", "support team@fintech.example", "support@", "@fintech.example",
                                   "a" * 250 + "@b.example"])
def test_support_email_must_be_an_address(value):
    err = fails("--set-json", f"services.{NAME}.env.{SUPPORT_EMAIL}={json.dumps(value)}")
    assert f"/services/{NAME}/env/{SUPPORT_EMAIL}" in err


# --- E-mail -----------------------------------------------------------------------------------

def test_email_is_off_in_every_environment(env):
    """Off: no FINTECH_EMAIL__* anywhere, no SMTP secret read, no SMTP egress: the messages go to the
    file outbox in the pod."""
    assert services(env)[NAME]["email"]["enabled"] is False
    m = manifest(env)
    for cm in m.all("ConfigMap"):
        assert not [k for k in cm["data"] if k.startswith("FINTECH_EMAIL__")], cm["metadata"]["name"]
    for es in m.all("ExternalSecret"):
        assert not [d for d in es["spec"]["data"] if d["secretKey"].startswith("FINTECH_EMAIL__")]
    for name in services(env):
        assert smtp_rules(m.docs, name) == [], name


def test_email_on_reads_the_smtp_url_from_secret_manager():
    docs = render("staging", *EMAIL_ON)
    prefix = env_values("staging")["externalSecrets"]["secretPrefix"]
    assert external_secret(docs)[SMTP_URL] == {"key": f"{prefix}notifications-smtp-url", "version": "latest"}
    assert app_env(docs)[SMTP_URL] == {"name": SMTP_URL, "valueFrom": {"secretKeyRef": {
        "name": full(NAME), "key": SMTP_URL}}}
    data = data_of(docs)
    assert SMTP_URL not in data, "the URL holds the password: never in a ConfigMap"
    email = env_values("staging")["services"][NAME]["email"]
    # Quoted: the configuration reads environment values the TOML way.
    assert data["FINTECH_EMAIL__FROM"] == f'"{email["from"]}"' == '"FINTECH <no-reply@fintech.example>"'
    assert data["FINTECH_EMAIL__TIMEOUT_MS"] == "30000"
    for name in services("staging"):
        if name != NAME:
            assert not [k for k in data_of(docs, name) if k.startswith("FINTECH_EMAIL__")], name
            assert SMTP_URL not in external_secret(docs, name), name


def test_email_on_reaches_the_smtp_server_only():
    docs = render("staging", *EMAIL_ON)
    assert smtp_rules(docs, NAME) == [{"to": [{"ipBlock": {"cidr": c}} for c in SMTP_CIDRS], "ports": SMTP_PORTS}]
    for name in services("staging"):
        if name != NAME:
            assert smtp_rules(docs, name) == [], name
    assert not [r for r in smtp_rules(docs, NAME) for p in r["to"] if "0.0.0.0/0" in json.dumps(p)]


def test_email_settings_per_environment():
    docs = render("staging", *EMAIL_ON, "--set", f"services.{NAME}.email.from=FINTECH staging <no-reply@staging.fintech.example>",
                  "--set", f"services.{NAME}.email.timeoutMs=10000", "--set", f"services.{NAME}.email.smtpUrl.version=3",
                  "--set-json", f"services.{NAME}.email.smtpPorts=[587]")
    data = data_of(docs)
    assert data["FINTECH_EMAIL__FROM"] == '"FINTECH staging <no-reply@staging.fintech.example>"'
    assert data["FINTECH_EMAIL__TIMEOUT_MS"] == "10000"
    assert external_secret(docs)[SMTP_URL]["version"] == "3"
    (rule,) = smtp_rules(docs, NAME)
    assert rule["ports"] == [{"protocol": "TCP", "port": 587}]


def test_turning_email_on_rolls_notifications():
    def annotations(docs):
        return one(docs, "Deployment", full(NAME))["spec"]["template"]["metadata"]["annotations"]
    before, after = annotations(manifest("staging").docs), annotations(render("staging", *EMAIL_ON))
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] != after["checksum/secret"]


def test_email_without_address_ranges_is_refused():
    err = fails("--set", f"services.{NAME}.email.enabled=true")
    assert f"services.{NAME}.email.enabled is set, but services.{NAME}.email.smtpCidrs is empty" in err


@pytest.mark.parametrize("cidrs", [["0.0.0.0/0"], ["203.0.0.0/8"], ["::/0"]])
def test_the_smtp_server_is_not_the_internet(cidrs):
    err = fails("--set", f"services.{NAME}.email.enabled=true",
                "--set-json", f"services.{NAME}.email.smtpCidrs={json.dumps(cidrs)}")
    assert f"services.{NAME}.email.smtpCidrs holds {cidrs[0]}" in err and "not a share of the internet" in err


@pytest.mark.parametrize(("path", "value"), [
    ("from", 'no-reply'),
    ("from", 'FINTECH "ops" <no-reply@fintech.example>'),
    ("timeoutMs", 500),
    ("smtpPorts", []),
    ("smtpPorts", [70000]),
    ("smtpCidrs", ["mail.example"]),
    ("smtpUrl", {"secret": "smtp url"}),
    ("smtpUrl", {"secret": ""}),
    ("smtpUrl", {"secret": "notifications-smtp-url", "version": "newest"}),
    ("url", "smtp://mail.example:587"),
])
def test_email_settings_are_checked(path, value):
    err = fails("--set-json", f"services.{NAME}.email.{path}={json.dumps(value)}")
    assert f"/services/{NAME}/email" in err


@pytest.mark.parametrize("field", ["env", "secretEnv"])
def test_email_variables_are_the_charts(field):
    value = "x" if field == "env" else {"secret": "x"}
    name = "FINTECH_EMAIL__FROM" if field == "env" else SMTP_URL
    err = fails("--set-json", f"services.{NAME}.{field}.{name}={json.dumps(value)}")
    assert f"services.{NAME}.{field}.{name} is set by the chart itself" in err


def test_email_in_service_defaults_is_refused():
    err = fails("--set", "serviceDefaults.email.enabled=true")
    assert "serviceDefaults" in err


# --- SMS --------------------------------------------------------------------------------------

def test_sms_is_off_in_every_environment(env):
    assert services(env)[NAME]["sms"]["providers"] == []
    assert not [k for k in config(env, NAME) if k.startswith("FINTECH_SMS__")]
    assert not [k for k in secret_keys(env, NAME) if k.startswith("FINTECH_SMS__")]


def test_sms_on_reads_notifications_own_secrets():
    settings = {"providers": ["twilio", "vonage"], "twilio": TWILIO, "vonage": VONAGE}
    docs = render("staging", "--set-json", f"services.{NAME}.sms={json.dumps(settings)}")
    prefix = env_values("staging")["externalSecrets"]["secretPrefix"]
    secrets = external_secret(docs)
    assert {k: v["key"] for k, v in secrets.items() if k.startswith("FINTECH_SMS__")} == {
        "FINTECH_SMS__TWILIO__AUTH_TOKEN": f"{prefix}notifications-twilio-auth-token",
        "FINTECH_SMS__VONAGE__API_SECRET": f"{prefix}notifications-vonage-api-secret",
        VONAGE_SIGNATURE_SECRET: f"{prefix}notifications-vonage-signature-secret",
    }
    assert app_env(docs)[VONAGE_SIGNATURE_SECRET]["valueFrom"]["secretKeyRef"] == {
        "name": full(NAME), "key": VONAGE_SIGNATURE_SECRET}
    data = data_of(docs)
    assert data["FINTECH_SMS__PROVIDERS"] == "twilio,vonage"
    # The providers post their statuses to notifications' public routes.
    assert data["FINTECH_SMS__TWILIO__STATUS_CALLBACK"].endswith(STATUS_ROUTES[0])
    assert data["FINTECH_SMS__VONAGE__STATUS_CALLBACK"].endswith(STATUS_ROUTES[1])
    assert VONAGE_SIGNATURE_SECRET not in data
    # identity is untouched: its SMS stay off.
    assert not [k for k in data_of(docs, "identity") if k.startswith("FINTECH_SMS__")]
    assert not [k for k in external_secret(docs, "identity") if k.startswith("FINTECH_SMS__")]
    egress = one(docs, "NetworkPolicy", full(NAME))["spec"]["egress"]
    for provider in (TWILIO, VONAGE):
        assert {"to": [{"ipBlock": {"cidr": provider["cidrs"][0]}}], "ports": [{"protocol": "TCP", "port": 443}]} \
            in egress


def test_sms_without_its_account_is_refused():
    settings = {"providers": ["vonage"], "vonage": {**VONAGE, "apiKey": ""}}
    err = fails("--set-json", f"services.{NAME}.sms={json.dumps(settings)}")
    assert f"services.{NAME}.sms.providers lists vonage: set services.{NAME}.sms.vonage.apiKey" in err


def test_its_secrets_are_terraforms():
    """The secrets the chart may read for it are exactly the ones Terraform declares for it; identity
    verifies no delivery receipt, so it has no signature secret."""
    svc = yaml.safe_load((CHART / "values.yaml").read_text())["services"][NAME]
    named = {svc["email"]["smtpUrl"]["secret"], svc["sms"]["twilio"]["authToken"]["secret"],
             svc["sms"]["vonage"]["apiSecret"]["secret"], svc["sms"]["vonage"]["signatureSecret"]["secret"]}
    assert named == {"notifications-smtp-url", "notifications-twilio-auth-token",
                     "notifications-vonage-api-secret", "notifications-vonage-signature-secret"}
    assert set(catalog()[NAME]["secrets"]) == named
    assert not [s for s in catalog()["identity"]["secrets"] if "signature" in s]
