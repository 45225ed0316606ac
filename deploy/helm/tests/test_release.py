"""Per environment: what holds for the whole release (namespace policies, the entry point,
secrets, custom resources, determinism)."""

import re

from conftest import env_values, manifest, services
from render import CUSTOM_KINDS, split_kinds, template

# userinfo with a password in a URL: scheme://user:password@host
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_URL$|CREDENTIAL|PRIVATE_KEY)", re.IGNORECASE)
# The only URLs a ConfigMap may hold: another service of the release (serviceUrls), or a third
# party over HTTPS (externalEndpoints), never with credentials.
SERVICE_URL = re.compile(r"^http://fintech-[a-z0-9-]+:8080$")
EXTERNAL_URL = re.compile(r"^https://[a-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DURATION = re.compile(r"^\d+(\.\d+)?(h|m|s|ms)$")


def strings(value, path=""):
    """Every string in an object, with its path."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def pod_specs(m):
    for d in m.docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


def test_every_kind_is_known(env):
    builtin, custom = split_kinds(manifest(env).docs)
    assert builtin and custom
    assert {(d["apiVersion"], d["kind"]) for d in custom} == CUSTOM_KINDS


def test_names_and_namespace(env):
    for d in manifest(env).docs:
        assert DNS_LABEL.match(d["metadata"]["name"]), d["metadata"]["name"]
        assert d["metadata"]["namespace"] == "fintech", d["metadata"]["name"]
        assert d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_no_secret_values(env):
    m = manifest(env)
    assert not m.all("Secret"), "the chart never renders a Secret: secrets come from Secret Manager"
    for d in m.docs:
        for path, value in strings(d):
            assert not URL_WITH_PASSWORD.search(value), f"{d['kind']}/{d['metadata']['name']}{path}"
    for name, spec in pod_specs(m):
        for c in spec.get("initContainers", []) + spec["containers"]:
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]):
                    assert "value" not in e, f"{name}/{c['name']}: {e['name']} is a literal"
                    assert "secretKeyRef" in e["valueFrom"], f"{name}/{c['name']}: {e['name']}"
    all_services = services(env)
    for cm in m.all("ConfigMap"):
        service = cm["metadata"]["labels"]["app.kubernetes.io/component"]
        service_urls = (all_services.get(service) or {}).get("serviceUrls") or {}
        external = (all_services.get(service) or {}).get("externalEndpoints") or {}
        for key, value in cm["data"].items():
            if key in service_urls:
                assert SERVICE_URL.match(value), f"ConfigMap {cm['metadata']['name']}: {key}={value}"
                continue
            if key in external:
                assert EXTERNAL_URL.match(value), f"ConfigMap {cm['metadata']['name']}: {key}={value}"
                continue
            assert not SECRET_NAME.search(key), f"ConfigMap {cm['metadata']['name']} holds {key}"


def test_secrets_come_from_secret_manager(env):
    """Every Secret a pod reads is written by an ExternalSecret of the release."""
    m = manifest(env)
    targets = {es["spec"]["target"]["name"] for es in m.all("ExternalSecret")}
    keys = {es["spec"]["target"]["name"]: {d["secretKey"] for d in es["spec"]["data"]} for es in m.all("ExternalSecret")}
    for name, spec in pod_specs(m):
        for c in spec.get("initContainers", []) + spec["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in targets, f"{name}: {ref['name']} has no ExternalSecret"
                    assert ref["key"] in keys[ref["name"]], f"{name}: {ref['key']} is not written"
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secret = volume["secret"]["secretName"]
                assert secret in targets, f"{name}: volume {volume['name']} reads {secret}, which has no ExternalSecret"
                assert {i["key"] for i in volume["secret"]["items"]} <= keys[secret], f"{name}: {volume['name']}"
    prefix = env_values(env)["externalSecrets"]["secretPrefix"]
    for es in m.all("ExternalSecret"):
        assert es["apiVersion"] == "external-secrets.io/v1"
        assert es["spec"]["target"]["creationPolicy"] == "Owner"
        assert DURATION.match(es["spec"]["refreshInterval"])
        for item in es["spec"]["data"]:
            assert item["remoteRef"]["key"].startswith(prefix)
            assert set(item["remoteRef"]) <= {"key", "version"}


def test_default_deny(env):
    policies = manifest(env).all("NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1, "one namespace-wide policy"
    spec = deny[0]["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert not spec.get("ingress") and not spec.get("egress"), "it allows nothing"


def test_gateway(env):
    m = manifest(env)
    values = env_values(env)
    (gw,) = m.all("Gateway")
    assert gw["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gw["metadata"]["name"] == "fintech"
    assert gw["spec"]["gatewayClassName"] == "nginx"
    listeners = {l["name"]: l for l in gw["spec"]["listeners"]}
    assert set(listeners) == {"http", "https"}
    assert (listeners["http"]["protocol"], listeners["http"]["port"]) == ("HTTP", 80)
    https = listeners["https"]
    assert (https["protocol"], https["port"]) == ("HTTPS", 443)
    assert https["tls"]["mode"] == "Terminate"
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "group": "", "name": values["gateway"]["tls"]["secretName"]}]
    for listener in listeners.values():
        assert listener["hostname"] == values["gateway"]["hostname"]
        assert listener["allowedRoutes"] == {"namespaces": {"from": "Same"}}


def test_https_redirect(env):
    m = manifest(env)
    redirect = m.one("HTTPRoute", "fintech-https-redirect")
    assert redirect["spec"]["parentRefs"] == [{"name": "fintech", "sectionName": "http"}]
    (rule,) = redirect["spec"]["rules"]
    assert "backendRefs" not in rule
    assert rule["filters"] == [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]
    # Only the redirect listens on plain HTTP.
    for route in m.all("HTTPRoute"):
        if route is not redirect:
            assert all(p["sectionName"] == "https" for p in route["spec"]["parentRefs"])


def test_routes_are_exactly_the_route_table(env):
    m = manifest(env)
    public = {f"fintech-{n}" for n, s in services(env).items() if s.get("route")}
    routes = {r["metadata"]["name"] for r in m.all("HTTPRoute")} - {"fintech-https-redirect"}
    assert routes == public
    assert {p["metadata"]["name"] for p in m.all("ClientSettingsPolicy")} == public
    prefixes = [r["spec"]["rules"][0]["matches"][0]["path"]["value"] for r in m.all("HTTPRoute") if r["metadata"]["name"] in public]
    assert len(prefixes) == len(set(prefixes)), "each path prefix belongs to one service"


def test_gateway_network_policy(env):
    m = manifest(env)
    np = m.one("NetworkPolicy", "fintech-gateway")
    spec = np["spec"]
    assert spec["podSelector"] == {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "fintech"}}
    (ingress,) = spec["ingress"]
    assert {p["port"] for p in ingress["ports"]} == {80, 443}
    public = {n for n, s in services(env).items() if s.get("route")}
    backends = set()
    for rule in spec["egress"]:
        for peer in rule["to"]:
            component = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            if component and "namespaceSelector" not in peer:
                assert {p["port"] for p in rule["ports"]} == {8080}
                backends.add(component)
    assert backends == public, "the gateway reaches the public services only"
    control = [r for r in spec["egress"] if any(
        p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "nginx-gateway"
        for p in r["to"])]
    assert control, "the data plane's agent reaches the NGF control plane"


def test_custom_resources_are_well_formed(env):
    """Structural checks of the custom resources that kubernetes-validate has no schema for."""
    m = manifest(env)
    for r in m.all("HTTPRoute"):
        for rule in r["spec"]["rules"]:
            assert len(r["spec"]["rules"]) == 1, "one rule per route (one ClientSettingsPolicy each)"
            for match in rule.get("matches", []):
                assert match["path"]["type"] in ("PathPrefix", "Exact")
                assert match["path"]["value"].startswith("/")
            if "timeouts" in rule:
                assert set(rule["timeouts"]) <= {"request", "backendRequest"}
                assert all(DURATION.match(v) for v in rule["timeouts"].values())
            for ref in rule.get("backendRefs", []):
                assert m.one("Service", ref["name"])["spec"]["ports"][0]["port"] == ref["port"]
        for parent in r["spec"]["parentRefs"]:
            assert m.one("Gateway", parent["name"])
    for p in m.all("ClientSettingsPolicy"):
        target = p["spec"]["targetRef"]
        assert target["group"] == "gateway.networking.k8s.io" and target["kind"] == "HTTPRoute"
        assert m.one("HTTPRoute", target["name"])
        assert set(p["spec"]) == {"targetRef", "body"}
    for pm in m.all("PodMonitoring"):
        assert set(pm["spec"]) == {"selector", "endpoints"}
        for endpoint in pm["spec"]["endpoints"]:
            assert set(endpoint) <= {"port", "path", "scheme", "interval", "timeout"}
            assert DURATION.match(endpoint["timeout"]) and DURATION.match(endpoint["interval"])
    for store in m.all("SecretStore"):
        assert list(store["spec"]["provider"]) == ["gcpsm"]
        auth = store["spec"]["provider"]["gcpsm"]["auth"]
        assert list(auth) == ["workloadIdentity"], "no static keys"
        assert m.one("ServiceAccount", auth["workloadIdentity"]["serviceAccountRef"]["name"])
    for es in m.all("ExternalSecret"):
        assert m.one("SecretStore", es["spec"]["secretStoreRef"]["name"])


def test_hooks_only_where_needed(env):
    """Hooks are the migration Jobs and the secret plumbing they need; nothing else."""
    m = manifest(env)
    for d in m.docs:
        hook = d["metadata"].get("annotations", {}).get("helm.sh/hook")
        if hook:
            assert d["kind"] in ("Job", "ExternalSecret", "SecretStore", "ServiceAccount"), d["kind"]
            assert set(hook.split(",")) == {"pre-install", "pre-upgrade"}
            assert re.fullmatch(r"-?\d+", d["metadata"]["annotations"]["helm.sh/hook-weight"])


def test_render_is_deterministic(env):
    first = template(env)
    second = template(env)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


def test_environment_sizes():
    """Production is the largest environment, ci the smallest."""
    order = {"ci": 0, "staging": 1, "production": 2}
    sizes = {}
    for env in order:
        for name, svc in services(env).items():
            sizes.setdefault(name, {})[env] = (svc["autoscaling"]["minReplicas"], svc["autoscaling"]["maxReplicas"])
    for name, by_env in sizes.items():
        assert by_env["ci"] <= by_env["staging"] <= by_env["production"], name
    for env in order:
        assert env_values(env)["environment"] == env
