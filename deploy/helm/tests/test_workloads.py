"""Per service and per environment: the workload, its identity, scaling, disruption budget,
network policy, migration hook, monitoring and route."""

import hashlib
import re

from conftest import env_values, full, manifest, pod_labels, services, single_replica
from render import render

DIGEST_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[a-f0-9]{64}$")
UID = 65532


def deployment(env, service):
    return manifest(env).one("Deployment", full(service))


def pod_spec(env, service):
    return deployment(env, service)["spec"]["template"]["spec"]


def app_container(env, service):
    containers = pod_spec(env, service)["containers"]
    assert [c["name"] for c in containers] == [service]
    return containers[0]


def all_containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def assert_restricted(spec, what):
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True, what
    assert pod["runAsUser"] == UID, what
    assert pod["seccompProfile"]["type"] == "RuntimeDefault", what
    for c in all_containers(spec):
        sc = c["securityContext"]
        where = f"{what}, container {c['name']}"
        assert sc["runAsNonRoot"] is True, where
        assert sc["runAsUser"] == UID, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["privileged"] is False, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert "add" not in sc["capabilities"], where
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
    assert spec["automountServiceAccountToken"] is False, what
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), what


def assert_resources(spec, what):
    for c in all_containers(spec):
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                assert c["resources"][kind][res], f"{what}: {c['name']} has no {kind}.{res}"


def test_probes(env, service):
    c = app_container(env, service)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] == "http"
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in c["ports"]
    # Liveness must never depend on the database: the proxy sidecar's probes are its own.
    assert c["livenessProbe"]["httpGet"]["path"] != c["readinessProbe"]["httpGet"]["path"]


def test_resources(env, service):
    spec = pod_spec(env, service)
    assert_resources(spec, f"{env}/{service}")
    expected = services(env)[service]["resources"]
    c = app_container(env, service)
    assert c["resources"] == {k: {r: str(v) for r, v in expected[k].items()} for k in ("requests", "limits")}


def test_restricted_security_context(env, service):
    assert_restricted(pod_spec(env, service), f"{env}/{service}")
    c = app_container(env, service)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(env, service)["volumes"]}
    # The only writable paths are emptyDirs, with a size limit, and a service's own persistent
    # volume (its claim, inside the data dir). The one other mount is read-only: the Redis server's
    # CA certificates, the CA key of the service's own Secret only (services with Redis).
    persistent = services(env)[service].get("persistentVolume")
    read_only = {m["mountPath"] for m in c["volumeMounts"] if m.get("readOnly")}
    for path, volume in mounts.items():
        if persistent and path == persistent["mountPath"]:
            assert volumes[volume] == {"name": volume, "persistentVolumeClaim": {"claimName": full(service)}}
            assert path.startswith("/data/"), "inside the data dir"
            continue
        if "secret" in volumes[volume]:
            assert services(env)[service]["redis"]["enabled"], f"{path}: only the Redis CA is mounted from a Secret"
            assert path in read_only, path
            assert volumes[volume]["secret"]["secretName"] == full(service)
            assert [i["key"] for i in volumes[volume]["secret"]["items"]] == ["redis-ca"], "no other key as a file"
            continue
        assert "emptyDir" in volumes[volume], path
        assert volumes[volume]["emptyDir"]["sizeLimit"], path


def test_images_pinned_by_digest(env, service):
    spec = pod_spec(env, service)
    for c in all_containers(spec):
        assert DIGEST_IMAGE.match(c["image"]), c["image"]
        assert c["imagePullPolicy"] in ("IfNotPresent", "Always")
    assert app_container(env, service)["image"].split("@")[0].endswith(f"/{service}")


def test_command_and_environment(env, service):
    c = app_container(env, service)
    assert c["args"][:2] == ["serve", service]
    # The data dir is a flag; the chart never sets FINTECH_DATA_DIR as well.
    assert c["args"][2:] == ["--data-dir", "/data"]
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    cm = manifest(env).one("ConfigMap", full(service))
    assert c["envFrom"] == [{"configMapRef": {"name": cm["metadata"]["name"]}}]
    data = cm["data"]
    assert data["FINTECH_HTTP__BIND"] == "0.0.0.0"
    assert data["FINTECH_HTTP__PORT"] == "8080"
    assert data["FINTECH_MIGRATIONS__ON_START"] == "false"
    assert data["FINTECH_GCP__PROJECT_ID"] == manifest_project(env)
    # Events go over Pub/Sub, under the names Terraform gives this environment ("<prefix>-...").
    assert data["FINTECH_EVENTS__BACKEND"] == "pubsub"
    assert data["FINTECH_EVENTS__PUBSUB_PREFIX"] == m_values(env)["events"]["pubsubPrefix"]
    assert data["FINTECH_EVENTS__PUBSUB_PREFIX"].endswith("-")
    assert "FINTECH_EVENTS__PUBSUB_EMULATOR" not in data, "the emulator is for tests only"
    assert "FINTECH_DATA_DIR" not in data
    assert all(isinstance(v, str) for v in data.values())
    svc = services(env)[service]
    # A service with a bucket keeps its objects in Cloud Storage, in the bucket Terraform names
    # "<prefix>-<key>", and signs its download links as its own Google service account.
    storage = {k: v for k, v in data.items() if k.startswith("FINTECH_STORAGE__")}
    if svc.get("bucket"):
        assert storage == {
            "FINTECH_STORAGE__BACKEND": "gcs",
            "FINTECH_STORAGE__BUCKET": m_values(env)["storage"]["bucketPrefix"] + svc["bucket"],
            "FINTECH_STORAGE__SIGNER_SERVICE_ACCOUNT": gsa(env, service),
        }, "no emulator and no signing key file in a cluster"
        assert storage["FINTECH_STORAGE__SIGNER_SERVICE_ACCOUNT"] == manifest(env).one(
            "ServiceAccount", full(service))["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    else:
        assert storage == {}, "no bucket: the local folder <data>/bucket"
    grace = int(data["FINTECH_HTTP__SHUTDOWN_GRACE_MS"]) // 1000
    if svc.get("route"):
        assert int(data["FINTECH_HTTP__REQUEST_TIMEOUT_MS"]) == (svc["route"]["timeoutSeconds"] - 1) * 1000
        assert grace >= svc["route"]["timeoutSeconds"]
    # SIGTERM comes after the preStop sleep; the process then has its grace period, plus a margin.
    spec = pod_spec(env, service)
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] == svc["preStopSleepSeconds"]
    assert spec["terminationGracePeriodSeconds"] > svc["preStopSleepSeconds"] + grace


def test_service_urls(env, service):
    """serviceUrls become the callee's in-cluster URL, and the network policies allow the calls."""
    m = manifest(env)
    all_services = services(env)
    data = m.one("ConfigMap", full(service))["data"]
    urls = all_services[service].get("serviceUrls") or {}
    for env_name, callee in urls.items():
        assert data[env_name] == f"http://{full(callee)}:8080"
        assert m.one("Service", full(callee))["spec"]["ports"][0]["port"] == 8080
        assert service in all_services[callee]["allowedCallers"], f"{callee} does not allow {service}"
    external = all_services[service].get("externalEndpoints") or {}
    for env_name, endpoint in external.items():
        assert data[env_name] == endpoint["url"] and endpoint["url"].startswith("https://")
    assert not {k for k in data if k.endswith("_URL")} - set(urls) - set(external), \
        "every URL in the ConfigMap is a service URL or an external endpoint"


def manifest_project(env):
    return env_values(env)["gcp"]["projectId"]


def test_secrets_only_by_reference(env, service):
    c = app_container(env, service)
    svc = services(env)[service]
    env_vars = {e["name"]: e for e in c.get("env", [])}
    for e in env_vars.values():
        assert "value" not in e, f"{e['name']} has a literal value"
        assert e["valueFrom"]["secretKeyRef"]["name"] == full(service)
    key = service.replace("-", "_").upper()
    if svc["database"]["enabled"]:
        ref = env_vars[f"FINTECH_DATABASE__{key}__URL"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == "database-url"
    else:
        assert f"FINTECH_DATABASE__{key}__URL" not in env_vars
    for name in svc.get("secretEnv", {}):
        assert env_vars[name]["valueFrom"]["secretKeyRef"]["key"] == name


def test_external_secret(env, service):
    m = manifest(env)
    svc = services(env)[service]
    needs = svc["database"]["enabled"] or bool(svc.get("secretEnv"))
    es = m.find("ExternalSecret", full(service))
    if not needs:
        assert es is None
        return
    prefix = m_values(env)["externalSecrets"]["secretPrefix"]
    spec = es["spec"]
    assert spec["target"]["name"] == full(service)
    assert spec["secretStoreRef"] == {"kind": "SecretStore", "name": full(service)}
    keys = {d["secretKey"]: d["remoteRef"]["key"] for d in spec["data"]}
    if svc["database"]["enabled"]:
        assert keys["database-url"] == f"{prefix}{service}-database-url"
    for name, ref in svc.get("secretEnv", {}).items():
        assert keys[name] == prefix + ref["secret"]
    store = m.one("SecretStore", full(service))
    gcpsm = store["spec"]["provider"]["gcpsm"]
    assert gcpsm["projectID"] == manifest_project(env)
    sa_name = gcpsm["auth"]["workloadIdentity"]["serviceAccountRef"]["name"]
    hooks_sa = m.one("ServiceAccount", sa_name)
    assert hooks_sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == gsa(env, service)


def m_values(env):
    return env_values(env)


def gsa(env, service):
    return services(env)[service].get("gcpServiceAccount") or (
        f"{m_values(env)['workloadIdentity']['gsaPrefix']}{service}@{manifest_project(env)}.iam.gserviceaccount.com"
    )


def test_service_account_workload_identity(env, service):
    sa = manifest(env).one("ServiceAccount", full(service))
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == gsa(env, service)
    assert sa["automountServiceAccountToken"] is False
    assert pod_spec(env, service)["serviceAccountName"] == full(service)


def test_service(env, service):
    svc = manifest(env).one("Service", full(service))
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == pod_labels(service)
    assert svc["spec"]["ports"][0]["port"] == 8080
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


def test_selectors_match_pods(env, service):
    d = deployment(env, service)
    assert d["spec"]["selector"]["matchLabels"] == pod_labels(service)
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert pod_labels(service).items() <= labels.items()
    if single_replica(env, service):
        # One pod with its volume: never two at once, not even during a rollout.
        assert d["spec"]["replicas"] == 1
        assert d["spec"]["strategy"] == {"type": "Recreate"}
    else:
        assert "replicas" not in d["spec"], "the HorizontalPodAutoscaler owns the replica count"
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_hpa(env, service):
    if single_replica(env, service):
        assert manifest(env).find("HorizontalPodAutoscaler", full(service)) is None, "one replica: no autoscaler"
        return
    hpa = manifest(env).one("HorizontalPodAutoscaler", full(service))
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": full(service)}
    expected = services(env)[service]["autoscaling"]
    assert hpa["spec"]["minReplicas"] == expected["minReplicas"]
    assert hpa["spec"]["maxReplicas"] == expected["maxReplicas"]
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    if env == "production":
        assert hpa["spec"]["minReplicas"] >= 3


def test_pdb(env, service):
    pdb = manifest(env).one("PodDisruptionBudget", full(service))
    assert pdb["spec"]["selector"]["matchLabels"] == pod_labels(service)
    spec = pdb["spec"]
    assert ("minAvailable" in spec) != ("maxUnavailable" in spec)
    if single_replica(env, service):
        # Its one pod may be evicted: a budget that kept it would block every node drain.
        assert spec["maxUnavailable"] == 1
        return
    hpa = manifest(env).one("HorizontalPodAutoscaler", full(service))
    if env == "production":
        assert spec["minAvailable"] >= 2
    if "minAvailable" in spec:
        # A budget that equals the minimum replica count would block every node drain.
        assert spec["minAvailable"] < hpa["spec"]["minReplicas"]


def test_persistent_volume_claim(env, service):
    """A claim exactly for the services with a persistentVolume: one pod's (ReadWriteOncePod), kept
    by helm uninstall."""
    persistent = services(env)[service].get("persistentVolume")
    pvc = manifest(env).find("PersistentVolumeClaim", full(service))
    if not persistent:
        assert pvc is None
        return
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOncePod"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == persistent["size"]
    if persistent.get("storageClassName"):
        assert pvc["spec"]["storageClassName"] == persistent["storageClassName"]
    else:
        assert "storageClassName" not in pvc["spec"], "absent, not empty: the cluster's default class"


def test_topology_spread(env, service):
    constraints = pod_spec(env, service)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for c in constraints:
        assert c["labelSelector"]["matchLabels"] == pod_labels(service)


def test_checksum_annotations(env, service):
    annotations = deployment(env, service)["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[a-f0-9]{64}", annotations["checksum/config"])
    svc = services(env)[service]
    if svc["database"]["enabled"] or svc.get("secretEnv"):
        assert re.fullmatch(r"[a-f0-9]{64}", annotations["checksum/secret"])
    for key, value in annotations.items():
        assert not re.search(r"\d{4}-\d{2}-\d{2}", str(value)), f"{key} looks like a timestamp"


def test_config_change_rolls_pods(env, service):
    """checksum/config follows the ConfigMap's content: a changed setting changes the hash."""
    before = deployment(env, service)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    changed = [d for d in render(env, "--set", "logLevel=debug") if d["kind"] == "Deployment"
               and d["metadata"]["name"] == full(service)][0]
    after = changed["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert before != after
    assert hashlib.sha256(b"").hexdigest() not in (before, after)


def test_migration_job(env, service):
    m = manifest(env)
    svc = services(env)[service]
    job = m.find("Job", f"{full(service)}-migrate")
    if not svc["database"]["enabled"]:
        assert job is None
        return
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert job["spec"]["activeDeadlineSeconds"] > 120, "migrate waits up to 120 s for its lock"
    (migrate,) = spec["containers"]
    assert migrate["args"][:2] == ["migrate", service]
    assert migrate["image"] == app_container(env, service)["image"]
    key = service.replace("-", "_").upper()
    env_vars = {e["name"]: e for e in migrate["env"]}
    ref = env_vars[f"FINTECH_DATABASE__{key}__URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": full(service), "key": "database-url"}
    assert_restricted(spec, f"{env}/{service} migration")
    assert_resources(spec, f"{env}/{service} migration")
    assert_native_proxy(spec)
    # The hook runs after its secret plumbing (lower weights first).
    weight = int(annotations["helm.sh/hook-weight"])
    sa = m.one("ServiceAccount", spec["serviceAccountName"])
    assert int(sa["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight
    es = m.one("ExternalSecret", full(service))
    assert int(es["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight
    store = m.one("SecretStore", full(service))
    assert int(sa["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        store["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        es["metadata"]["annotations"]["helm.sh/hook-weight"])


def assert_native_proxy(spec):
    (proxy,) = [c for c in spec.get("initContainers", []) if c["name"] == "cloud-sql-proxy"]
    assert proxy["restartPolicy"] == "Always", "the proxy is a native sidecar"
    assert "--address=127.0.0.1" in proxy["args"]
    assert "--port=3306" in proxy["args"]
    assert proxy["startupProbe"]["httpGet"]["path"] == "/startup"


def test_cloud_sql_proxy(env, service):
    spec = pod_spec(env, service)
    if services(env)[service]["database"]["enabled"]:
        assert_native_proxy(spec)
        assert any(rule_ports(r) == {("TCP", 3307)} for r in manifest(env).one(
            "NetworkPolicy", full(service))["spec"]["egress"]), "the proxy can reach Cloud SQL"
    else:
        assert not spec.get("initContainers")


def test_pod_monitoring(env, service):
    pm = manifest(env).one("PodMonitoring", full(service))
    assert pm["apiVersion"] == "monitoring.googleapis.com/v1"
    assert pm["spec"]["selector"]["matchLabels"] == pod_labels(service)
    (endpoint,) = pm["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"\d+(ms|s|m)", endpoint["interval"])


# The ranges a public egress rule must always leave out (values.schema.json requires them too).
NON_PUBLIC = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8")


def rule_ports(rule):
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def test_network_policy(env, service):
    m = manifest(env)
    svc = services(env)[service]
    all_services = services(env)
    np = m.one("NetworkPolicy", full(service))
    spec = np["spec"]
    assert spec["podSelector"]["matchLabels"] == pod_labels(service)
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    sources = [(peer, rule_ports(rule)) for rule in spec["ingress"] for peer in rule["from"]]
    gateway_peer = {"podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "fintech"}}}
    if svc.get("route"):
        assert (gateway_peer, {("TCP", 8080)}) in sources
    else:
        assert all(peer != gateway_peer for peer, _ in sources), "not public: no ingress from the gateway"
    for caller in svc["allowedCallers"]:
        assert ({"podSelector": {"matchLabels": pod_labels(caller)}}, {("TCP", 8080)}) in sources
    for peer, ports in sources:
        assert ports == {("TCP", 8080)}, "ingress only ever reaches the HTTP port"
        assert "ipBlock" not in peer, "no ingress from address ranges"
    egress = spec["egress"]
    (dns,) = [r for r in egress if rule_ports(r) == {("UDP", 53), ("TCP", 53)}]
    # NodeLocal DNSCache's address is not a pod: only an ipBlock lets pods reach it.
    assert {"ipBlock": {"cidr": "169.254.20.10/32"}} in dns["to"]
    assert any("podSelector" in peer for peer in dns["to"]), "kube-dns itself"
    cloud_sql = [r for r in egress if rule_ports(r) == {("TCP", 3307)}]
    assert bool(cloud_sql) == bool(svc["database"]["enabled"])
    callees = {n for n, other in all_services.items() if service in other["allowedCallers"]}
    for callee in callees:
        assert any(r["to"] == [{"podSelector": {"matchLabels": pod_labels(callee)}}] for r in egress), callee
    # The internet only for a service with publicEgress (webhooks), on its ports, never the
    # non-public ranges; and never IPv6's.
    public = svc.get("publicEgress") or {}
    for rule in egress:
        for peer in rule["to"]:
            cidr = peer.get("ipBlock", {}).get("cidr")
            assert cidr != "::/0", "no egress to the IPv6 internet"
            if cidr == "0.0.0.0/0":
                assert public.get("enabled"), f"{service}: no egress to the internet"
                assert set(NON_PUBLIC) <= set(peer["ipBlock"]["except"])
                assert rule_ports(rule) == {("TCP", p) for p in public["ports"]}
    migrate = m.find("NetworkPolicy", f"{full(service)}-migrate")
    if svc["database"]["enabled"]:
        assert migrate["spec"]["podSelector"]["matchLabels"] == pod_labels(f"{service}-migrate")
        assert any(rule_ports(r) == {("TCP", 3307)} for r in migrate["spec"]["egress"])
        job = m.one("Job", f"{full(service)}-migrate")
        assert pod_labels(f"{service}-migrate").items() <= job["spec"]["template"]["metadata"]["labels"].items()
    else:
        assert migrate is None


def test_route_matches_route_table(env, service):
    """One HTTPRoute and one ClientSettingsPolicy per entry of the route table, and none else."""
    m = manifest(env)
    route = services(env)[service].get("route")
    r = m.find("HTTPRoute", full(service))
    csp = m.find("ClientSettingsPolicy", full(service))
    if not route:
        assert r is None and csp is None
        return
    assert r["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert r["spec"]["parentRefs"] == [{"name": "fintech", "sectionName": "https"}]
    assert r["spec"]["hostnames"] == [m_values(env)["gateway"]["hostname"]]
    (rule,) = r["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": route["pathPrefix"]}}]
    assert rule["backendRefs"] == [{"name": full(service), "port": 8080}]
    assert rule["timeouts"] == {"request": f"{route['timeoutSeconds']}s"}
    assert csp["apiVersion"] == "gateway.nginx.org/v1alpha1"
    assert csp["spec"]["targetRef"] == {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                        "name": full(service)}
    size = csp["spec"]["body"]["maxSize"]
    assert re.fullmatch(r"\d{1,4}(k|m|g)?", size), "NGINX Gateway Fabric's size pattern"
    limit = int(size[:-1]) * {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[size[-1]]
    assert route["maxBodyBytes"] <= limit < route["maxBodyBytes"] + 1024 ** 2
