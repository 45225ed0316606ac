"""identity's SMS gateways (services.identity.sms; notifications' are wired the same way, see
test_notifications.py). Off in every environment and in the defaults: nothing of them is rendered,
the one-time codes go to the file outbox, and identity reaches no third party. Turned on, each listed provider gets its settings in the ConfigMap (identifiers quoted, so a
number stays a string), its credential from Secret Manager by reference, and an egress rule to its
own address ranges on its URL's port, and nothing else; the render refuses a provider half
configured, and SMS settings set any other way."""

import json

import pytest

from conftest import SMS_CREDENTIALS, env_values, full, manifest, services, sms_url
from render import render
from test_failures import fails

TWILIO = {"cidrs": ["198.51.100.0/24"], "accountSid": "AC" + "0123456789abcdef" * 2, "from": "+15005550006"}
VONAGE = {"cidrs": ["203.0.113.0/24"], "apiKey": "12345678", "from": "447700900000"}


def with_sms(providers=("twilio", "vonage"), twilio=None, vonage=None, *extra):
    settings = {"providers": list(providers), "twilio": twilio or TWILIO, "vonage": vonage or VONAGE}
    return ("--set-json", "services.identity.sms=" + json.dumps(settings), *extra)


def one(docs, kind, name):
    (obj,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return obj


def config(docs, service):
    return one(docs, "ConfigMap", full(service))["data"]


def ip_rules(docs, service):
    """The egress rules of a service's NetworkPolicy that name address ranges on 443, but Google's
    and, for a service with publicEgress (webhooks, see test_webhooks.py), its rule to the public
    internet."""
    google = set(env_values("staging")["networkPolicy"]["googleApis"]["cidrs"])
    public = (services("staging")[service].get("publicEgress") or {}).get("enabled")
    rules = []
    for rule in one(docs, "NetworkPolicy", full(service))["spec"]["egress"]:
        cidrs = [peer["ipBlock"]["cidr"] for peer in rule["to"] if "ipBlock" in peer]
        if public and cidrs == ["0.0.0.0/0"]:
            continue
        if cidrs and not set(cidrs) <= google and rule["ports"][0]["port"] not in (53, 80, 988, 3307, 6378):
            rules.append((cidrs, rule["ports"]))
    return rules


def test_off_in_every_environment(env):
    """No provider: no FINTECH_SMS__* anywhere, no SMS secret, no way out of the cluster for the
    services that send SMS (identity, notifications)."""
    senders = {name for name, svc in services(env).items() if svc.get("sms")}
    assert senders == {"identity", "notifications"}
    m = manifest(env)
    for name in senders:
        assert not services(env)[name]["sms"]["providers"], name
        assert ip_rules(m.docs, name) == [], name
    for cm in m.all("ConfigMap"):
        assert not [k for k in cm["data"] if k.startswith("FINTECH_SMS__")], cm["metadata"]["name"]
    for es in m.all("ExternalSecret"):
        assert not [d for d in es["spec"]["data"] if d["secretKey"].startswith("FINTECH_SMS__")]


def test_providers_in_failover_order():
    docs = render("staging", *with_sms())
    data = config(docs, "identity")
    values = env_values("staging")["services"]["identity"]["sms"]
    assert {k: v for k, v in data.items() if k.startswith("FINTECH_SMS__")} == {
        "FINTECH_SMS__PROVIDERS": "twilio,vonage",
        "FINTECH_SMS__TWILIO__BASE_URL": "https://api.twilio.com",
        # Quoted: the configuration reads environment values the TOML way, and a sender number or an
        # API key made of digits would otherwise become a number.
        "FINTECH_SMS__TWILIO__ACCOUNT_SID": f'"{TWILIO["accountSid"]}"',
        "FINTECH_SMS__TWILIO__FROM": '"+15005550006"',
        "FINTECH_SMS__VONAGE__BASE_URL": "https://rest.nexmo.com",
        "FINTECH_SMS__VONAGE__API_KEY": '"12345678"',
        "FINTECH_SMS__VONAGE__FROM": '"447700900000"',
        "FINTECH_SMS__PER_NUMBER_PER_HOUR": str(values["perNumberPerHour"]),
        "FINTECH_SMS__TIMEOUT_MS": str(values["timeoutMs"]),
        "FINTECH_SMS__BREAKER_FAILURES": str(values["breakerFailures"]),
        "FINTECH_SMS__BREAKER_COOL_DOWN_MS": str(values["breakerCoolDownMs"]),
    }
    assert values["perNumberPerHour"] == 5 and values["timeoutMs"] == 10000
    assert values["breakerFailures"] == 5 and values["breakerCoolDownMs"] == 30000
    assert config(render("staging", *with_sms(("vonage", "twilio"))), "identity")["FINTECH_SMS__PROVIDERS"] \
        == "vonage,twilio"


def test_credentials_come_from_secret_manager():
    docs = render("staging", *with_sms())
    prefix = env_values("staging")["externalSecrets"]["secretPrefix"]
    data = {d["secretKey"]: d["remoteRef"] for d in one(docs, "ExternalSecret", full("identity"))["spec"]["data"]}
    assert data["FINTECH_SMS__TWILIO__AUTH_TOKEN"] == {"key": f"{prefix}identity-twilio-auth-token", "version": "latest"}
    assert data["FINTECH_SMS__VONAGE__API_SECRET"] == {"key": f"{prefix}identity-vonage-api-secret", "version": "latest"}
    assert "FINTECH_SMS__VONAGE__SIGNATURE_SECRET" not in data, "identity receives no delivery receipts"
    container = one(docs, "Deployment", full("identity"))["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    for _, variable in SMS_CREDENTIALS.values():
        assert env[variable] == {"name": variable,
                                 "valueFrom": {"secretKeyRef": {"name": full("identity"), "key": variable}}}
        assert variable not in config(docs, "identity")


def test_identity_reaches_each_provider_only():
    docs = render("staging", *with_sms())
    assert sorted(ip_rules(docs, "identity")) == [
        (["198.51.100.0/24"], [{"protocol": "TCP", "port": 443}]),
        (["203.0.113.0/24"], [{"protocol": "TCP", "port": 443}]),
    ]
    for name in services("staging"):
        if name != "identity":
            assert ip_rules(docs, name) == [], name
            assert not [k for k in config(docs, name) if k.startswith("FINTECH_SMS__")], name


def test_one_provider_gets_only_its_own():
    docs = render("staging", *with_sms(("vonage",)))
    data = config(docs, "identity")
    assert data["FINTECH_SMS__PROVIDERS"] == "vonage"
    assert not [k for k in data if k.startswith("FINTECH_SMS__TWILIO__")]
    keys = [d["secretKey"] for d in one(docs, "ExternalSecret", full("identity"))["spec"]["data"]]
    assert "FINTECH_SMS__VONAGE__API_SECRET" in keys and "FINTECH_SMS__TWILIO__AUTH_TOKEN" not in keys
    assert ip_rules(docs, "identity") == [(["203.0.113.0/24"], [{"protocol": "TCP", "port": 443}])]


def test_a_base_url_port_and_a_status_callback():
    twilio = {**TWILIO, "baseUrl": "https://sms-proxy.example:8443", "statusCallback": "https://api.fintech.example/x"}
    docs = render("staging", *with_sms(("twilio",), twilio))
    data = config(docs, "identity")
    assert data[sms_url("twilio")] == "https://sms-proxy.example:8443"
    assert data["FINTECH_SMS__TWILIO__STATUS_CALLBACK"] == "https://api.fintech.example/x"
    assert ip_rules(docs, "identity") == [(["198.51.100.0/24"], [{"protocol": "TCP", "port": 8443}])]
    vonage = {**VONAGE, "statusCallback": "https://api.fintech.example/y"}
    data = config(render("staging", *with_sms(("vonage",), None, vonage)), "identity")
    assert data["FINTECH_SMS__VONAGE__STATUS_CALLBACK"] == "https://api.fintech.example/y"
    assert "FINTECH_SMS__TWILIO__STATUS_CALLBACK" not in data


def test_an_alphanumeric_sender():
    docs = render("staging", *with_sms(("twilio", "vonage"), {**TWILIO, "from": "Fintech"}, {**VONAGE, "from": "FINTECH"}))
    data = config(docs, "identity")
    assert data["FINTECH_SMS__TWILIO__FROM"] == '"Fintech"' and data["FINTECH_SMS__VONAGE__FROM"] == '"FINTECH"'


def test_turning_it_on_rolls_identity():
    def annotations(docs):
        return one(docs, "Deployment", full("identity"))["spec"]["template"]["metadata"]["annotations"]
    before, after = annotations(manifest("staging").docs), annotations(render("staging", *with_sms()))
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] != after["checksum/secret"]


@pytest.mark.parametrize(("provider", "key"), [("twilio", "accountSid"), ("twilio", "from"),
                                               ("vonage", "apiKey"), ("vonage", "from")])
def test_a_provider_half_configured_is_refused(provider, key):
    settings = {**(TWILIO if provider == "twilio" else VONAGE), key: ""}
    err = fails(*with_sms((provider,), **{provider: settings}))
    assert f"services.identity.sms.providers lists {provider}: set services.identity.sms.{provider}.{key}" in err


def test_a_provider_without_address_ranges_is_refused():
    err = fails(*with_sms(("twilio",), {**TWILIO, "cidrs": []}))
    assert "services.identity.sms.twilio.cidrs is empty: the NetworkPolicy would block https://api.twilio.com" in err


@pytest.mark.parametrize("cidrs", [["0.0.0.0/0"], ["198.51.0.0/8"], ["::/0"]])
def test_a_provider_is_not_the_internet(cidrs):
    err = fails(*with_sms(("vonage",), None, {**VONAGE, "cidrs": cidrs}))
    assert f"services.identity.sms.vonage.cidrs holds {cidrs[0]}" in err and "not a share of the internet" in err


@pytest.mark.parametrize(("path", "value"), [
    ("providers", ["pigeon"]),
    ("providers", ["twilio", "twilio"]),
    ("twilio", {**TWILIO, "baseUrl": "http://api.twilio.com"}),
    ("twilio", {**TWILIO, "baseUrl": "https://sid:token@api.twilio.com"}),
    ("twilio", {**TWILIO, "accountSid": "SK0123"}),
    ("twilio", {**TWILIO, "from": "15005550006"}),
    ("vonage", {**VONAGE, "from": "+447700900000"}),
    ("vonage", {**VONAGE, "from": "FINTECHSENDER"}),
    ("vonage", {**VONAGE, "apiKey": 'a"b'}),
    ("vonage", {**VONAGE, "statusCallback": "http://api.fintech.example/x"}),
    ("vonage", {**VONAGE, "signatureSecret": {"secret": "a b"}}),
    ("perNumberPerHour", 0),
    ("timeoutMs", 60000),
])
def test_sms_settings_are_checked(path, value):
    err = fails("--set-json", f"services.identity.sms.{path}={json.dumps(value)}")
    assert "/services/identity/sms" in err


@pytest.mark.parametrize("field", ["secretEnv", "externalEndpoints"])
def test_sms_variables_are_the_charts(field):
    value = {"secret": "x"} if field == "secretEnv" else {"url": "https://x.example", "cidrs": ["203.0.113.0/24"]}
    name = "FINTECH_SMS__TWILIO__AUTH_TOKEN" if field == "secretEnv" else "FINTECH_SMS__TWILIO__BASE_URL"
    err = fails("--set-json", f"services.identity.{field}.{name}={json.dumps(value)}")
    assert f"services.identity.{field}.{name} is set by the chart itself" in err
