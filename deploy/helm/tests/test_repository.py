"""Facts about the files themselves: the route table's single home, the pinned versions, and the
documented reasons of every skipped scanner check."""

import re

import yaml

from render import CHART, ENVIRONMENTS, HELM_DIR, values_file


def test_route_table_lives_in_values_yaml_only():
    """Environment files never change routes: every environment exposes the same paths and limits."""
    for env in ENVIRONMENTS:
        values = yaml.safe_load(values_file(env).read_text()) or {}
        for name, svc in (values.get("services") or {}).items():
            assert "route" not in (svc or {}), f"values-{env}.yaml sets services.{name}.route"
        assert "route" not in (values.get("serviceDefaults") or {})
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    public = {n: s["route"] for n, s in base["services"].items() if s and s.get("route")}
    assert public, "at least one public service"
    assert public["contact-us"] == {"pathPrefix": "/api/contact-us", "maxBodyBytes": 5 * 1024 * 1024 + 64 * 1024,
                                    "timeoutSeconds": 30}
    assert public["payments"] == {"pathPrefix": "/api/payments", "maxBodyBytes": 64 * 1024, "timeoutSeconds": 10}
    assert public["identity"] == {"pathPrefix": "/api/identity", "maxBodyBytes": 64 * 1024, "timeoutSeconds": 10}
    # vault's deadline (the timeout minus 1 s) outlasts the acquirer's 15 s.
    assert public["vault"] == {"pathPrefix": "/api/vault", "maxBodyBytes": 64 * 1024, "timeoutSeconds": 20}
    assert public["risk"] == {"pathPrefix": "/api/risk", "maxBodyBytes": 64 * 1024, "timeoutSeconds": 10}
    # Customers and staff read deliveries; the SMS providers post their signed delivery statuses.
    assert public["notifications"] == {"pathPrefix": "/api/notifications", "maxBodyBytes": 64 * 1024,
                                       "timeoutSeconds": 10}
    # Merchants manage their endpoints and deliveries; owners ask for and read their statements
    # (making one reads the ledger and writes two files within the request).
    assert public["webhooks"] == {"pathPrefix": "/api/webhooks", "maxBodyBytes": 64 * 1024, "timeoutSeconds": 10}
    assert public["statements"] == {"pathPrefix": "/api/statements", "maxBodyBytes": 64 * 1024,
                                    "timeoutSeconds": 30}
    # Customers register themselves, open accounts and read balances.
    assert public["accounts"] == {"pathPrefix": "/api/accounts", "maxBodyBytes": 64 * 1024, "timeoutSeconds": 10}
    assert not {"ledger", "audit"} & set(public), "internal services have no route"


def test_every_service_of_the_binary_is_deployed():
    """Each service under services/ (what the pipeline builds an image of, and what the release plan
    gives a digest) has its entry in values.yaml, and its Google resources in Terraform's catalog."""
    repo = HELM_DIR.parent.parent
    built = {path.parent.name for path in (repo / "services").glob("*/Cargo.toml")}
    assert {"risk", "audit"} <= built
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(base["services"]) == built
    catalog = yaml.safe_load((repo / "deploy" / "terraform" / "services.yaml").read_text())["services"]
    assert built <= set(catalog), "deploy/terraform/services.yaml"
    for name in built:
        if (base["services"][name] or {}).get("database", {}).get("enabled"):
            assert catalog[name].get("database") == name.replace("-", "_"), f"{name}: its database in Terraform"


def test_chart_names_what_terraform_creates():
    """The Cloud KMS keys and the Redis secrets the values files name are the ones deploy/terraform
    creates: in an environment with keys of its own, the key ring "<prefix>-keyring" in its region
    holding vault (the key-encryption key) and vault-fingerprint (a MAC key, whose version 1 is the
    one created with it), and the secrets "<prefix>-redis-url" and "<prefix>-redis-ca" that the redis
    module writes from the instance (the URL, and the server CA certificates as one PEM bundle)."""
    from conftest import env_values

    terraform = HELM_DIR.parent / "terraform"
    environment = (terraform / "modules" / "environment" / "main.tf").read_text()
    kms = (terraform / "modules" / "kms" / "main.tf").read_text()
    assert 'name     = "${var.prefix}-keyring"' in kms
    assert '"${id}/cryptoKeyVersions/1"' in (terraform / "modules" / "kms" / "outputs.tf").read_text()
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    assert re.search(r'\{\s*"%s"\s*=\s*\{\s*accessors' % re.escape(base["redis"]["urlSecret"]), environment)
    assert "url_secret_id       = module.secrets.ids[\"redis-url\"]" in environment
    assert re.search(r'\{\s*"%s"\s*=\s*\{\s*accessors' % re.escape(base["redis"]["caSecret"]), environment)
    assert "ca_secret_id        = module.secrets.ids[\"%s\"]" % base["redis"]["caSecret"] in environment
    redis = (terraform / "modules" / "redis" / "main.tf").read_text()
    assert re.search(r"ca_certificates\s*=.*google_redis_instance\.this\.server_ca_certs", redis), \
        "the bundle is the instance's server CA certificates"
    assert re.search(r'resource "google_secret_manager_secret_version" "ca" \{[^}]*secret\s*=\s*var\.ca_secret_id'
                     r'[^}]*secret_data_wo\s*=\s*local\.ca_certificates', redis), "written to ca_secret_id"
    for env in ENVIRONMENTS:
        values = env_values(env)
        vault = values["services"]["vault"]
        if (vault.get("env") or {}).get("FINTECH_VAULT__KEY_STORE") != "cloud_kms":
            continue
        env_main = (terraform / "envs" / env / "main.tf").read_text()
        assert re.search(r"^\s*customer_managed_encryption\s*=\s*true\s*$", env_main, re.MULTILINE), \
            f"{env}: vault's keys exist only with keys of the environment's own"
        prefix = values["workloadIdentity"]["gsaPrefix"]  # "<Terraform prefix>-"
        assert values["cloudKms"] == {"location": values["gcp"]["cluster"]["location"], "keyRing": f"{prefix}keyring"}, env
        keys = vault["kmsKeys"]
        kek = re.search(r"^\s*%s\s*=\s*\{(.*)\}\s*$" % re.escape(keys["FINTECH_VAULT__KMS_KEY"]["key"]), environment, re.MULTILINE)
        mac = re.search(r"^\s*%s\s*=\s*\{(.*)\}\s*$" % re.escape(keys["FINTECH_VAULT__KMS_FINGERPRINT_KEY"]["key"]),
                        environment, re.MULTILINE)
        assert kek and "rotators" in kek.group(1), env
        assert mac and 'purpose = "MAC"' in mac.group(1) and "signer_verifiers" in mac.group(1), env
        assert keys["FINTECH_VAULT__KMS_FINGERPRINT_KEY"]["version"] == 1, env


def test_pubsub_names_are_terraforms():
    """events.pubsubPrefix is the environment's Terraform prefix followed by "-": the same as the
    prefix of its service accounts and secrets, and in staging and production the prefix of
    envs/<env>/terraform.tfvars.example (each ci build passes its own). modules/pubsub names what
    the services use with that prefix: topics and subscriptions "<prefix>-<name>", and one
    dead-letter topic per consumer, which the consumer itself may publish to (the bus dead-letters
    on the last attempt); every subscription keeps a dead-letter policy (Pub/Sub reports delivery
    attempts only there)."""
    from conftest import env_values

    terraform = HELM_DIR.parent / "terraform"
    environment = (terraform / "modules" / "environment" / "main.tf").read_text()
    pubsub_call = re.search(r'^module "pubsub" \{(.*?)^\}', environment, re.MULTILINE | re.DOTALL)
    assert pubsub_call and re.search(r"^\s*prefix\s*=\s*var\.prefix\s*$", pubsub_call.group(1), re.MULTILINE)
    pubsub = (terraform / "modules" / "pubsub" / "main.tf").read_text()
    for resource, name in (('google_pubsub_topic" "stream', '"${var.prefix}-${each.key}"'),
                           ('google_pubsub_topic" "dead_letter', '"${var.prefix}-${each.key}.dead-letter"'),
                           ('google_pubsub_subscription" "consumer', '"${var.prefix}-${each.key}"')):
        body = re.search(r'^resource "%s" \{(.*?)^\}' % re.escape(resource), pubsub, re.MULTILINE | re.DOTALL)
        assert body and re.search(r"^\s*name\s*=\s*%s\s*$" % re.escape(name), body.group(1), re.MULTILINE), resource
        if resource.endswith("consumer"):
            assert "dead_letter_policy {" in body.group(1), "the bus reads delivery_attempt"
    grant = re.search(r'^resource "google_pubsub_topic_iam_member" "dead_letter_publisher" \{(.*?)^\}', pubsub,
                      re.MULTILINE | re.DOTALL)
    assert grant, "each consumer publishes its own dead letters"
    assert re.search(r"^\s*for_each\s*=\s*local\.consumers\s*$", grant.group(1), re.MULTILINE)
    assert re.search(r"^\s*topic\s*=\s*google_pubsub_topic\.dead_letter\[each\.key\]\.name\s*$", grant.group(1),
                     re.MULTILINE)
    assert re.search(r'^\s*role\s*=\s*"roles/pubsub\.publisher"\s*$', grant.group(1), re.MULTILINE)
    assert re.search(r"^\s*member\s*=\s*var\.service_members\[each\.key\]\s*$", grant.group(1), re.MULTILINE)
    for env in ENVIRONMENTS:
        values = env_values(env)
        prefix = values["events"]["pubsubPrefix"]
        assert prefix == values["workloadIdentity"]["gsaPrefix"] == values["externalSecrets"]["secretPrefix"], env
        if env == "ci":
            assert prefix == "fintech-ci-", "the pipeline passes each build's own"
            continue
        example = (terraform / "envs" / env / "terraform.tfvars.example").read_text()
        tf_prefix = re.search(r'^prefix\s*=\s*"([^"]+)"', example, re.MULTILINE)
        assert tf_prefix and prefix == tf_prefix.group(1) + "-", env


def test_bucket_names_are_terraforms():
    """storage.bucketPrefix is the environment's Terraform prefix followed by "-", like the other
    prefixes; modules/storage names a bucket "<prefix>-<key>" with the catalog's keys and makes the
    services that list it its object users; and the chart gives each service with buckets in the
    catalog one of them (`bucket`), and no other. Its account signs the download links as itself:
    the workload-identity module grants it roles/iam.serviceAccountTokenCreator on itself, the
    catalog asks for that for every service with buckets, and the IAM Credentials API is on."""
    from conftest import env_values

    repo = HELM_DIR.parent.parent
    terraform = HELM_DIR.parent / "terraform"
    environment = (terraform / "modules" / "environment" / "main.tf").read_text()
    call = re.search(r'^module "storage" \{(.*?)^\}', environment, re.MULTILINE | re.DOTALL)
    assert call and re.search(r"^\s*prefix\s*=\s*var\.prefix\s*$", call.group(1), re.MULTILINE)
    assert re.search(r"for bucket, users in module\.catalog\.buckets", call.group(1))
    assert re.search(r"object_users\s*=\s*\[for svc in users : local\.members\[svc\]\]", call.group(1))
    storage = (terraform / "modules" / "storage" / "main.tf").read_text()
    assert re.search(r'^\s*name\s*=\s*"\$\{var\.prefix\}-\$\{each\.key\}"\s*$', storage, re.MULTILINE)
    catalog = yaml.safe_load((terraform / "services.yaml").read_text())["services"]
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, svc in base["services"].items():
        bucket = (svc or {}).get("bucket")
        buckets = (catalog.get(name) or {}).get("buckets") or []
        if buckets:
            assert bucket in buckets, f"{name}: services.{name}.bucket must name one of {buckets}"
        else:
            assert bucket is None, f"{name} has no bucket in deploy/terraform/services.yaml"
    assert base["services"]["contact-us"]["bucket"] == "attachments"
    assert base["services"]["statements"]["bucket"] == "statements"
    identity = (terraform / "modules" / "workload-identity" / "main.tf").read_text()
    grant = re.search(r'^resource "google_service_account_iam_member" "sign_blob" \{(.*?)^\}', identity,
                      re.MULTILINE | re.DOTALL)
    assert grant, "a service with buckets signs its links through IAM signBlob as itself"
    assert re.search(r"for_each\s*=.*if s\.sign_blob", grant.group(1))
    assert re.search(r'^\s*role\s*=\s*"roles/iam\.serviceAccountTokenCreator"\s*$', grant.group(1), re.MULTILINE)
    assert re.search(r"^\s*service_account_id\s*=\s*google_service_account\.service\[each\.key\]\.name\s*$",
                     grant.group(1), re.MULTILINE)
    assert re.search(r"^\s*member\s*=\s*google_service_account\.service\[each\.key\]\.member\s*$",
                     grant.group(1), re.MULTILINE)
    outputs = (terraform / "modules" / "catalog" / "outputs.tf").read_text()
    assert re.search(r"^\s*sign_blob\s*=\s*length\(s\.buckets\) > 0\s*$", outputs, re.MULTILINE)
    assert '"iamcredentials.googleapis.com"' in (terraform / "modules" / "project-services" / "variables.tf").read_text()
    for env in ENVIRONMENTS:
        values = env_values(env)
        prefix = values["storage"]["bucketPrefix"]
        assert prefix == values["events"]["pubsubPrefix"] == values["workloadIdentity"]["gsaPrefix"], env
    assert "storage.bucketPrefix=${e.prefix}-" in (repo / "ci" / "jenkins" / "vars" / "helmDeploy.groovy").read_text(), \
        "each CI build passes its own prefix"


def test_sms_secrets_are_terraforms():
    """The Secret Manager secrets of the SMS gateways (identity's and notifications') and of the SMTP
    server (notifications') are declared in deploy/terraform's catalog, each readable by the service
    that names it (an operator adds their values)."""
    catalog = yaml.safe_load((HELM_DIR.parent / "terraform" / "services.yaml").read_text())["services"]
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, svc in base["services"].items():
        declared = (catalog.get(name) or {}).get("secrets") or []
        sms = (svc or {}).get("sms")
        if sms:
            assert sms["twilio"]["authToken"]["secret"] in declared, name
            assert sms["vonage"]["apiSecret"]["secret"] in declared, name
            if sms["vonage"].get("signatureSecret"):
                assert sms["vonage"]["signatureSecret"]["secret"] in declared, name
        email = (svc or {}).get("email")
        if email:
            assert email["smtpUrl"]["secret"] in declared, name
    assert base["services"]["identity"]["sms"]["twilio"]["authToken"]["secret"] == "identity-twilio-auth-token"
    assert base["services"]["identity"]["sms"]["vonage"]["apiSecret"]["secret"] == "identity-vonage-api-secret"
    assert "signatureSecret" not in base["services"]["identity"]["sms"]["vonage"], \
        "only notifications receives delivery receipts"


def test_no_secret_in_values_files():
    pattern = re.compile(r"(://[^/\s:@]*:[^/\s@]+@|-----BEGIN|password\s*[:=]\s*\S)", re.IGNORECASE)
    for path in [CHART / "values.yaml"] + [values_file(e) for e in ENVIRONMENTS]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.name}:{number}"


def test_gateway_fabric_version_is_pinned_and_documented():
    version = (HELM_DIR / "nginx-gateway-fabric.version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    readme = (HELM_DIR / "README.md").read_text()
    assert "nginx-gateway-fabric.version" in readme
    assert version in readme


def test_every_skipped_check_has_a_reason():
    config = (HELM_DIR / ".checkov.yaml").read_text()
    skipped = yaml.safe_load(config).get("skip-check", [])
    lines = config.splitlines()
    for check in skipped:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {check}")
        assert lines[index - 1].strip().startswith("#"), f"{check} has no reason above it"
    ignores = yaml.safe_load((HELM_DIR / ".trivyignore.yaml").read_text())
    for item in ignores["misconfigurations"]:
        assert len(item.get("statement", "")) > 40, f"{item['id']} has no reason"


def test_trivy_trusts_the_registries_in_use():
    trusted = yaml.safe_load((HELM_DIR / "trivy-data" / "trusted-registries.yaml").read_text())
    hosts = set(trusted["ksv0125"]["trusted_registries"])
    for env in ENVIRONMENTS:
        registry = (yaml.safe_load(values_file(env).read_text()).get("image") or {}).get("registry")
        assert registry and registry.split("/")[0] in hosts, env
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    assert base["cloudSql"]["proxy"]["image"]["repository"].split("/")[0] in hosts



def test_readme_secret_table_matches_values():
    """The README's table of secret variables lists exactly the secretEnv entries of values.yaml."""
    readme = (HELM_DIR / "README.md").read_text()
    start = readme.index("| service | variable | Secret Manager id (after `<secretPrefix>`) |")
    table = readme[start:].split("\n\n", 1)[0].splitlines()[2:]
    documented = set()
    for row in table:
        service, variable, secret = [cell.strip() for cell in row.strip("|").split("|")]
        documented.add((service, variable.strip("`"), secret.split()[0].strip("`")))
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    configured = {(name, variable, ref["secret"])
                  for name, svc in base["services"].items()
                  for variable, ref in ((svc or {}).get("secretEnv") or {}).items()}
    assert documented == configured
