"""Who calls whom over HTTP: one source of truth, identity's SERVICE_CALLS.

identity issues a service token only for the (caller, callee) pairs of `SERVICE_CALLS` in
services/identity/src/routes.rs (anything else is refused), and `fintech services` prints the same
pairs as its third, tab-separated column (the local stack and the image check wire their service
URLs from it). The chart states each pair three times in values.yaml: the caller's `serviceUrls`
(FINTECH_<CALLER>__<CALLEE>_URL: <callee>, the in-cluster URL in its ConfigMap), the caller's
secret at identity (FINTECH_AUTH__SERVICE_SECRET in its secretEnv, the same Secret Manager secret
as identity's FINTECH_IDENTITY__SERVICE_SECRETS__<CALLER>) and the callee's `allowedCallers` (its
NetworkPolicy admits the caller, the caller gets the egress). These tests hold all three to the
code, both ways: every pair is wired, and nothing is wired that the code would refuse.

Only services of the chart count: a pair naming a service that values.yaml does not have (one not
deployed yet) is skipped. Every service's path to identity (FINTECH_AUTH__IDENTITY_URL, identity's
allowedCallers) is the chart's own (auth.identityService) and is checked in test_identity.py.
"""

import re

import pytest

from conftest import base_values, env_values, full, identity_service, services
from render import HELM_DIR
from test_risk import admitted_services, config, reaches, secret_keys

REPO = HELM_DIR.parent.parent
ROUTES = REPO / "services" / "identity" / "src" / "routes.rs"
IDENTITY_URL = "FINTECH_AUTH__IDENTITY_URL"
SERVICE_SECRET = "FINTECH_AUTH__SERVICE_SECRET"
IDENTITY_SECRETS = "FINTECH_IDENTITY__SERVICE_SECRETS__"

# `pub const SERVICE_CALLS: <type> = &[ ... ];`, on one line or several; the body is everything up
# to the `]` that closes the outer slice (the first `]` followed by `;`).
CONSTANT = re.compile(r"\bpub\s+(?:const|static)\s+SERVICE_CALLS\s*:[^=]*=\s*&\s*\[(?P<body>.*?)\]\s*;", re.DOTALL)
# One entry: `("caller", &["callee", ...])`, with optional trailing commas.
ENTRY = re.compile(r'\(\s*"(?P<caller>[^"]+)"\s*,\s*&\s*\[(?P<callees>[^\]]*)\]\s*,?\s*\)')
CALLEE = re.compile(r'"([^"]+)"')


def strip_comments(source: str) -> str:
    """Rust source without // and /* */ comments (SERVICE_CALLS holds no string with either)."""
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL))


def parse_service_calls(source: str) -> dict[str, list[str]]:
    """SERVICE_CALLS as {caller: [callee, ...]}; fails naming what could not be read."""
    found = CONSTANT.search(strip_comments(source))
    assert found, (f"no `pub const SERVICE_CALLS: ... = &[...];` in {ROUTES.relative_to(REPO)}: "
                   "the chart's service URLs are checked against it, so update this test's parser "
                   "(deploy/helm/tests/test_service_calls.py) if the constant moved or changed shape")
    body = found.group("body")
    calls: dict[str, list[str]] = {}
    for entry in ENTRY.finditer(body):
        caller = entry.group("caller")
        assert caller not in calls, f"SERVICE_CALLS lists {caller} twice"
        leftover = CALLEE.sub("", entry.group("callees")).replace(",", "").strip()
        assert not leftover, f"SERVICE_CALLS: cannot read the callees of {caller}: {entry.group('callees')!r}"
        calls[caller] = CALLEE.findall(entry.group("callees"))
    leftover = ENTRY.sub("", body).replace(",", "").strip()
    assert not leftover, f"SERVICE_CALLS: cannot read {leftover!r} (expected (\"caller\", &[\"callee\", ...]) entries)"
    assert calls, "SERVICE_CALLS is empty (or could not be read): nothing would be checked"
    return calls


def service_calls() -> dict[str, list[str]]:
    return parse_service_calls(ROUTES.read_text())


def env_key(name: str) -> str:
    """A service's name as in variable names: contact-us -> CONTACT_US."""
    return name.replace("-", "_").upper()


def url_variable(caller: str, callee: str) -> str:
    return f"FINTECH_{env_key(caller)}__{env_key(callee)}_URL"


def chart_pairs(env: str) -> list[tuple[str, str]]:
    """The pairs of SERVICE_CALLS whose caller and callee are both services of the chart."""
    present = services(env)
    return [(caller, callee) for caller, callees in service_calls().items() if caller in present
            for callee in callees if callee in present]


def test_the_parser_reads_one_line_and_several():
    one_line = 'pub const SERVICE_CALLS: &[(&str, &[&str])] = &[("a", &["b"]), ("c-d", &["b", "e"])];'
    several = """
        /// Which service may ask for tokens to call which others.
        pub const SERVICE_CALLS: &[(&str, &[&str])] = &[
            ("a", &["b"]),
            // c-d reads b and e.
            (
                "c-d",
                &[
                    "b", // the ledger
                    "e",
                ],
            ),
        ];
        pub const OTHER: &[&str] = &["x"];
    """
    assert parse_service_calls(one_line) == parse_service_calls(several) == {"a": ["b"], "c-d": ["b", "e"]}
    with pytest.raises(AssertionError, match="no `pub const SERVICE_CALLS"):
        parse_service_calls("pub const CALLS: &[(&str, &[&str])] = &[];")
    with pytest.raises(AssertionError, match="cannot read"):
        parse_service_calls('pub const SERVICE_CALLS: &[(&str, &[&str])] = &[("a", &["b"]), ("c", CALLEES)];')


def test_service_calls_is_read_from_identitys_code():
    calls = service_calls()
    assert "identity" not in calls, "identity signs its own tokens: it calls no one with them"
    for caller, callees in calls.items():
        assert callees, f"SERVICE_CALLS lists {caller} with no callee"
        assert len(set(callees)) == len(callees), f"SERVICE_CALLS lists a callee of {caller} twice"
        assert caller not in callees, f"SERVICE_CALLS lets {caller} call itself"
        assert "identity" not in callees, "every service reaches identity already (FINTECH_AUTH__IDENTITY_URL)"
    # The pairs of today's chart are all there: the checks below are not vacuous.
    assert chart_pairs("staging"), "no pair of SERVICE_CALLS names two services of the chart"


def test_every_call_is_wired(env):
    """Each pair: the caller's URL of the callee, its secret at identity, the callee admitting it."""
    all_services = services(env)
    identity = identity_service(env)
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    missing = []
    for caller, callee in chart_pairs(env):
        variable = url_variable(caller, callee)
        pair = f"{caller} -> {callee} (identity's SERVICE_CALLS)"
        # values: serviceUrls and allowedCallers.
        if (all_services[caller].get("serviceUrls") or {}).get(variable) != callee:
            missing.append(f"{pair}: services.{caller}.serviceUrls.{variable} is not {callee}")
        if caller not in all_services[callee]["allowedCallers"]:
            missing.append(f"{pair}: services.{callee}.allowedCallers does not list {caller}")
        # The render: the URL in the caller's ConfigMap, the network path both ways.
        if config(env, caller).get(variable) != f"http://{full(callee)}:8080":
            missing.append(f"{pair}: {full(caller)}'s ConfigMap has no {variable}=http://{full(callee)}:8080")
        if caller not in admitted_services(env, callee) or not reaches(env, caller, callee):
            missing.append(f"{pair}: the network policies do not let {caller} reach {callee} on 8080")
        # Its secret at identity, the very one identity checks.
        theirs = f"{IDENTITY_SECRETS}{env_key(caller)}"
        mine, identitys = secret_keys(env, caller).get(SERVICE_SECRET), secret_keys(env, identity).get(theirs)
        if not (mine and mine == identitys == f"{prefix}{caller}-service-secret"):
            missing.append(f"{pair}: {caller} reads {SERVICE_SECRET} from {mine!r}, identity reads {theirs} "
                           f"from {identitys!r}: both must be {prefix}{caller}-service-secret")
    assert not missing, "\n".join(missing)


def test_nothing_is_wired_that_identity_would_refuse(env):
    """No service URL, allowed caller or service secret beyond SERVICE_CALLS (and identity's own)."""
    allowed = set(chart_pairs(env))
    all_services = services(env)
    identity = identity_service(env)
    urls_to = {f"http://{full(name)}:8080": name for name in all_services}
    extra = []
    for name, svc in all_services.items():
        for variable, callee in (svc.get("serviceUrls") or {}).items():
            if variable == IDENTITY_URL and callee == identity:
                continue
            if (name, callee) not in allowed:
                extra.append(f"services.{name}.serviceUrls.{variable}: {callee}, but identity's SERVICE_CALLS "
                             f"has no {name} -> {callee}")
            elif variable != url_variable(name, callee):
                extra.append(f"services.{name}.serviceUrls.{variable} names {callee}: call it "
                             f"{url_variable(name, callee)}")
        # What is rendered, whatever the values: any variable holding another service's URL.
        for variable, value in config(env, name).items():
            callee = urls_to.get(value)
            if callee is None or (variable == IDENTITY_URL and callee == identity):
                continue
            if (name, callee) not in allowed:
                extra.append(f"{full(name)}'s ConfigMap: {variable}={value}, but identity's SERVICE_CALLS has no "
                             f"{name} -> {callee}")
        if name != identity:
            for caller in svc["allowedCallers"]:
                if (caller, name) not in allowed:
                    extra.append(f"services.{name}.allowedCallers lists {caller}, but identity's SERVICE_CALLS has "
                                 f"no {caller} -> {name}")
    callers = {caller for caller, _ in allowed}
    for name in all_services:
        if SERVICE_SECRET in secret_keys(env, name) and name not in callers:
            extra.append(f"{name} reads {SERVICE_SECRET}, but identity's SERVICE_CALLS lets it call no service "
                         "of the chart")
    for variable in secret_keys(env, identity):
        if variable.startswith(IDENTITY_SECRETS) and not any(
                variable == f"{IDENTITY_SECRETS}{env_key(c)}" for c in callers):
            extra.append(f"identity reads {variable}, which is no caller's of SERVICE_CALLS in the chart")
    assert not extra, "\n".join(extra)


def test_values_yaml_alone_follows_service_calls():
    """The same, on values.yaml as written (no environment file), so the defaults hold on their own."""
    values = base_values()
    present = set(values["services"])
    calls = {(caller, callee) for caller, callees in service_calls().items() if caller in present
             for callee in callees if callee in present}
    wired = {(name, callee) for name, svc in values["services"].items()
             for callee in ((svc or {}).get("serviceUrls") or {}).values()}
    assert wired == calls, f"missing: {sorted(calls - wired)}, not in SERVICE_CALLS: {sorted(wired - calls)}"
    identity = values["services"][values["auth"]["identityService"]]
    for caller, callee in sorted(calls):
        svc = values["services"][caller]
        assert svc["serviceUrls"].get(url_variable(caller, callee)) == callee, \
            f"services.{caller}.serviceUrls.{url_variable(caller, callee)} is not {callee}"
        assert caller in ((values["services"][callee] or {}).get("allowedCallers") or []), \
            f"services.{callee}.allowedCallers does not list {caller}"
        assert ((svc.get("secretEnv") or {}).get(SERVICE_SECRET) or {}).get("secret") == f"{caller}-service-secret", \
            f"services.{caller}.secretEnv.{SERVICE_SECRET} is not {caller}-service-secret"
        theirs = f"{IDENTITY_SECRETS}{env_key(caller)}"
        assert (identity["secretEnv"].get(theirs) or {}).get("secret") == f"{caller}-service-secret", \
            f"identity's secretEnv.{theirs} is not {caller}-service-secret"
