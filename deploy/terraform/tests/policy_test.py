#!/usr/bin/env python3
"""House rules for deploy/terraform that the scanners do not know about.

Run: python3 deploy/terraform/tests/policy_test.py  (standard library only)

1. `deletion_protection = false` and `force_destroy = true` are written only under envs/ci;
   modules take both only as a variable that defaults to the safe value.
2. Every variable (modules and environments) has a description and a type.
3. Every module has main.tf, variables.tf, outputs.tf, versions.tf, README.md and an example.
4. Every versions.tf sets required_version; modules that use Google resources pin google and
   google-beta with "~>".
5. No literal passwords, keys or tokens in code or tfvars examples.
6. Wiring: every module call passes only variables the module declares and all it requires,
   every var., local. and module.<name>.<output> reference names something that exists, and
   every `moved` block moves from an address no longer declared to one that is (through module
   calls, e.g. module.environment.module.kms[0]).
   (Offline, `terraform validate` stops before it checks references, see the check script.)
7. Each environment keeps its profile, now set in its call of modules/environment: ci is
   destroyable (deletion protection off, buckets force-destroyed, no KMS keys of its own),
   staging and production are protected and encrypted with their own keys, production's
   Cloud SQL is regional (high availability) with at least 7 backups.
8. Pub/Sub subscriptions are named "<prefix>-<consumer>.<stream>" (e.g. audit.identity.events):
   the name the service subscribes under in the code, so the Pub/Sub adapter finds them.
9. Cloud KMS least privilege: no configuration grants roles/cloudkms.admin; no custom role holds a
   permission that destroys or restores key versions, changes IAM policies or manages key rings,
   keys or imports; the kms module's rotator role holds exactly what vault's rotation needs; and
   every environment gives vault its key-encryption key with rotators and its fingerprint key as
   a MAC key with signer_verifiers, at the key-encryption key's protection level.
10. roles/iam.serviceAccountTokenCreator (which signs blobs and mints tokens as an account) is
   granted only by a google_service_account_iam_member on a service account to that same account
   (a service signing its download links as itself): never on another account, never project-wide,
   never in a binding.

Each rule is also run against small bad snippets, so a rule that silently stops matching
fails here too.
"""

import pathlib
import re
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent  # deploy/terraform

REQUIRED_MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")

# Attributes whose value must never be a literal in code.
SECRET_ATTRIBUTE = re.compile(
    r"^\s*(?:\w*password\w*|secret_data\w*|auth_string|private_key\w*|api_key|access_key|"
    r"client_secret|token|credentials)\s*=\s*\"(?P<value>[^\"]*)\"",
    re.IGNORECASE | re.MULTILINE,
)
# Secrets by shape: PEM blocks, Google API keys, service-account key JSON, credentials in URLs.
SECRET_SHAPES = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"\"private_key_id\"\s*:"),
    # user:password@ in a URL, unless both parts are interpolations or <placeholders>.
    re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"$<]+:(?![$<])[^\s@/\"]+@"),
)


def strip_comments(text: str) -> str:
    """Blank out # and // line comments and /* */ blocks outside string literals.

    Heredoc bodies are kept (they are values); only comments are removed, so rule texts in
    comments (like the module docs quoting `deletion_protection = false`) do not count.
    """
    out = []
    i, n = 0, len(text)
    in_string = False
    heredoc_end = None
    while i < n:
        c = text[i]
        if heredoc_end is not None:
            line_end = text.find("\n", i)
            line_end = n if line_end == -1 else line_end + 1
            line = text[i:line_end]
            out.append(line)
            if line.strip() == heredoc_end:
                heredoc_end = None
            i = line_end
            continue
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
            out.append(c)
            i += 1
            continue
        match = re.match(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\n", text[i:])
        if match:
            heredoc_end = match.group(1)
            out.append(match.group(0))
            i += match.end()
            continue
        if c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def blocks(code: str, kind: str):
    """Yield (label, body) of each top-level `kind "label" { ... }` block in comment-free code."""
    for match in re.finditer(rf'^{kind}\s+"([^"]+)"\s*\{{', code, re.MULTILINE):
        depth, i, in_string = 1, match.end(), False
        while i < len(code) and depth:
            c = code[i]
            if in_string:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        yield match.group(1), code[match.end(): i - 1]


def top_level_attributes(body: str):
    """Names assigned at the top level of a block body (not inside nested blocks or values)."""
    names, depth, in_string = [], 0, False
    for line in body.splitlines():
        if depth == 0 and not in_string:
            match = re.match(r"\s*([A-Za-z_][\w-]*)\s*=(?!=)", line)
            if match:
                names.append(match.group(1))
        i = 0
        while i < len(line):
            c = line[i]
            if in_string:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "{[(":
                depth += 1
            elif c in "}])":
                depth -= 1
            i += 1
    return names


def tf_files(root: pathlib.Path):
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


def in_ci_env(path: pathlib.Path, root: pathlib.Path) -> bool:
    return path.relative_to(root).parts[:2] == ("envs", "ci")


# --- rules: each returns a list of violations ("file: message") ----------------------------------

def check_destructive_settings(root: pathlib.Path):
    problems = []
    for path in tf_files(root):
        rel = path.relative_to(root)
        code = strip_comments(path.read_text())
        for setting, unsafe, safe in (("deletion_protection", "false", "true"),
                                      ("force_destroy", "true", "false")):
            if re.search(rf"^\s*{setting}\s*=\s*{unsafe}\b", code, re.MULTILINE) and not in_ci_env(path, root):
                problems.append(f"{rel}: `{setting} = {unsafe}` is only allowed under envs/ci")
            if rel.parts[0] != "modules" or "examples" in rel.parts:
                continue
            for value in re.findall(rf"^\s*{setting}\s*=\s*(.+)$", code, re.MULTILINE):
                if value.strip() != f"var.{setting}":
                    problems.append(f"{rel}: modules must set {setting} from var.{setting}, not {value.strip()}")
            for name, body in blocks(code, "variable"):
                if name == setting and not re.search(rf"^\s*default\s*=\s*{safe}\b", body, re.MULTILINE):
                    problems.append(f"{rel}: variable {setting} must default to {safe}")
    return problems


def check_variables_documented(root: pathlib.Path):
    problems = []
    for path in tf_files(root):
        code = strip_comments(path.read_text())
        for name, body in blocks(code, "variable"):
            for attribute in ("description", "type"):
                if not re.search(rf"^\s*{attribute}\s*=", body, re.MULTILINE):
                    problems.append(f"{path.relative_to(root)}: variable {name} has no {attribute}")
    return problems


def check_module_layout(root: pathlib.Path):
    problems = []
    modules = [p for p in sorted((root / "modules").iterdir()) if p.is_dir()]
    if not modules:
        problems.append("modules/: no modules found")
    for module in modules:
        for name in REQUIRED_MODULE_FILES:
            if not (module / name).is_file():
                problems.append(f"modules/{module.name}: missing {name}")
        if not list(module.glob("examples/*/main.tf")):
            problems.append(f"modules/{module.name}: missing examples/<name>/main.tf")
    return problems


def check_versions(root: pathlib.Path):
    problems = []
    roots = [p for p in (root / "modules").iterdir() if p.is_dir()] + \
            [p for p in (root / "envs").iterdir() if p.is_dir()]
    for directory in sorted(roots):
        rel = directory.relative_to(root)
        versions = directory / "versions.tf"
        if not versions.is_file():
            problems.append(f"{rel}: missing versions.tf")
            continue
        code = strip_comments(versions.read_text())
        if not re.search(r'required_version\s*=\s*">=\s*1\.\d+', code):
            problems.append(f"{rel}/versions.tf: no required_version \">= 1.x\"")
        uses_google = any(re.search(r'^(resource|data|ephemeral)\s+"google', strip_comments(p.read_text()), re.MULTILINE)
                          for p in directory.glob("*.tf"))
        if uses_google or rel.parts[0] == "envs":
            for provider in ("google", "google-beta"):
                pin = re.search(rf'(?<![\w-]){provider}\s*=\s*\{{[^}}]*version\s*=\s*"~>\s*\d', code)
                if not pin:
                    problems.append(f"{rel}/versions.tf: {provider} is not pinned with ~>")
    return problems


def check_no_literal_secrets(root: pathlib.Path):
    problems = []
    candidates = tf_files(root) + sorted(root.rglob("*.tfvars*")) + sorted(root.rglob("*.hcl*"))
    for path in candidates:
        if ".terraform" in path.parts or not path.is_file():
            continue
        rel = path.relative_to(root)
        code = strip_comments(path.read_text())
        for match in SECRET_ATTRIBUTE.finditer(code):
            if match.group("value") and "${" not in match.group("value"):
                problems.append(f"{rel}: literal value for `{match.group(0).split('=')[0].strip()}`")
        for shape in SECRET_SHAPES:
            if shape.search(code):
                problems.append(f"{rel}: text shaped like a secret ({shape.pattern})")
    return problems


def module_interface(directory: pathlib.Path):
    """(declared variables, required variables, outputs) of the module in `directory`."""
    code = "\n".join(strip_comments(p.read_text()) for p in sorted(directory.glob("*.tf")))
    variables, required = set(), set()
    for name, body in blocks(code, "variable"):
        variables.add(name)
        if "default" not in top_level_attributes(body):
            required.add(name)
    outputs = {name for name, _ in blocks(code, "output")}
    return variables, required, outputs


MOVED_BLOCK = re.compile(r"^moved\s*\{[^{}]*\}", re.MULTILINE)


def module_calls(directory: pathlib.Path):
    """name -> (source directory or None, whether it has count/for_each) of each module call."""
    code = "\n".join(strip_comments(p.read_text()) for p in sorted(directory.glob("*.tf")))
    calls = {}
    for name, body in blocks(code, "module"):
        source = re.search(r'^\s*source\s*=\s*"([^"]+)"', body, re.MULTILINE)
        target = (directory / source.group(1)).resolve() if source else None
        repeated = bool({"count", "for_each"} & set(top_level_attributes(body)))
        calls[name] = (target if target is not None and target.is_dir() else None, repeated)
    return calls


def address_problem(directory: pathlib.Path, address: str):
    """None if `address` (module.a[0].module.b, module.a.type.name[...]) is declared under
    `directory`, else why not."""
    parts = re.findall(r'[A-Za-z_][\w-]*(?:\[[^\]]*\])?', address)
    if ".".join(parts) != address or not parts:
        return f"{address} is not a resource or module address"
    here, i = directory, 0
    while i < len(parts):
        if parts[i] == "module":
            if i + 1 >= len(parts):
                return f"{address} is not a resource or module address"
            name = parts[i + 1].split("[")[0]
            calls = module_calls(here)
            if name not in calls or calls[name][0] is None:
                return f"module.{name} is not called in {here.name}"
            keyed, repeated, last = "[" in parts[i + 1], calls[name][1], i + 2 == len(parts)
            # A key only on a repeated call; a repeated call without a key (all its instances)
            # only as the last step.
            if keyed and not repeated:
                return f"module.{name} has no count/for_each: {parts[i + 1]}"
            if repeated and not keyed and not last:
                return f"module.{name} has count/for_each: an instance key is needed before its contents"
            here, i = calls[name][0], i + 2
            continue
        if len(parts) - i != 2:
            return f"{address} is not a resource or module address"
        kind, name = parts[i], parts[i + 1].split("[")[0]
        code = "\n".join(strip_comments(p.read_text()) for p in sorted(here.glob("*.tf")))
        if not re.search(rf'^resource\s+"{re.escape(kind)}"\s+"{re.escape(name)}"', code, re.MULTILINE):
            return f"{kind}.{name} is not declared in {here.name}"
        return None
    return None


def check_wiring(root: pathlib.Path):
    problems = []
    directories = sorted({p.parent for p in tf_files(root)})
    for directory in directories:
        rel = directory.relative_to(root)
        code = "\n".join(strip_comments(p.read_text()) for p in sorted(directory.glob("*.tf")))
        # moved blocks hold addresses, not references: checked on their own, then left out.
        for block in MOVED_BLOCK.findall(code):
            source = re.search(r"^\s*from\s*=\s*(\S+)\s*$", block, re.MULTILINE)
            target = re.search(r"^\s*to\s*=\s*(\S+)\s*$", block, re.MULTILINE)
            if not source or not target:
                problems.append(f"{rel}: moved block without from and to")
                continue
            if address_problem(directory, source.group(1)) is None:
                problems.append(f"{rel}: moved from {source.group(1)}, which is still declared here")
            why = address_problem(directory, target.group(1))
            if why:
                problems.append(f"{rel}: moved to {target.group(1)}, which does not exist ({why})")
        code = MOVED_BLOCK.sub("", code)
        variables, _, _ = module_interface(directory)
        local_names = {n for _, body in blocks_unlabelled(code, "locals") for n in top_level_attributes(body)}
        calls = {}
        for name, body in blocks(code, "module"):
            source = re.search(r'^\s*source\s*=\s*"([^"]+)"', body, re.MULTILINE)
            target = (directory / source.group(1)).resolve() if source else None
            if target is None or not target.is_dir():
                problems.append(f"{rel}: module {name} has no local source directory")
                continue
            declared, required, outputs = module_interface(target)
            calls[name] = outputs
            passed = set(top_level_attributes(body)) - {"source", "count", "for_each", "providers", "depends_on", "version"}
            for extra in sorted(passed - declared):
                problems.append(f"{rel}: module {name} passes {extra}, which {target.name} does not declare")
            for missing in sorted(required - passed):
                problems.append(f"{rel}: module {name} does not pass required variable {missing}")
        for name in sorted(set(re.findall(r"\bvar\.([A-Za-z_][\w-]*)", code)) - variables):
            problems.append(f"{rel}: var.{name} is not declared")
        for name in sorted(set(re.findall(r"\blocal\.([A-Za-z_][\w-]*)", code)) - local_names):
            problems.append(f"{rel}: local.{name} is not defined")
        for name, output in sorted(set(re.findall(r"\bmodule\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?\.([A-Za-z_][\w-]*)", code))):
            if name not in calls:
                problems.append(f"{rel}: module.{name} is not called here")
            elif output not in calls[name]:
                problems.append(f"{rel}: module.{name}.{output} is not an output of that module")
    return problems


def blocks_unlabelled(code: str, kind: str):
    """Like blocks(), for blocks without a label (locals, terraform)."""
    return blocks(code.replace(f"{kind} {{", f'{kind} "_" {{'), kind)


# What each environment must keep (README, "Environments"), as written in its envs/<env>/*.tf:
# setting -> exact value, or (">=", n) for a lower bound.
ENVIRONMENT_PROFILES = {
    "ci": {"deletion_protection": "false", "force_destroy": "true", "customer_managed_encryption": "false"},
    "staging": {"deletion_protection": "true", "customer_managed_encryption": "true"},
    "production": {"deletion_protection": "true", "customer_managed_encryption": "true",
                   "availability_type": '"REGIONAL"', "retained_backups": (">=", 7)},
}


def check_environment_profiles(root: pathlib.Path, profiles=None):
    problems = []
    for env, settings in (profiles or ENVIRONMENT_PROFILES).items():
        directory = root / "envs" / env
        code = "\n".join(strip_comments(p.read_text()) for p in sorted(directory.glob("*.tf")))
        for setting, expected in settings.items():
            found = re.findall(rf"^\s*{setting}\s*=\s*(\S+)\s*$", code, re.MULTILINE)
            if isinstance(expected, tuple):
                ok = len(found) == 1 and found[0].isdigit() and int(found[0]) >= expected[1]
                wanted = f"{expected[0]} {expected[1]}"
            else:
                ok = found == [expected]
                wanted = expected
            if not ok:
                problems.append(f"envs/{env}: {setting} must be {wanted}, found {found or 'nothing'}")
    return problems


# The pubsub module's consumer subscriptions: `for <topic>, <t> in var.topics : { for <consumer>
# in <t>.subscribers : "<key>" => ...`, and the resource naming each one after its key.
SUBSCRIPTION_KEYS = re.compile(
    r"for\s+(\w+)\s*,\s*(\w+)\s+in\s+var\.topics\s*:\s*\{\s*"
    r"for\s+(\w+)\s+in\s+\2\.subscribers\s*:\s*\"([^\"]*)\"\s*=>")
CONSUMER_SUBSCRIPTION = re.compile(
    r'^resource\s+"google_pubsub_subscription"\s+"consumer"\s*\{(?P<body>.*?)^\}', re.MULTILINE | re.DOTALL)


def check_subscription_names(root: pathlib.Path):
    path = root / "modules" / "pubsub" / "main.tf"
    rel = path.relative_to(root)
    if not path.exists():
        return [f"{rel} is missing"]
    code = strip_comments(path.read_text())
    problems = []
    keys = SUBSCRIPTION_KEYS.findall(code)
    if not keys:
        problems.append(f"{rel}: no subscription per topic and subscriber found")
    for topic, _, consumer, key in keys:
        wanted = "${%s}.${%s}" % (consumer, topic)
        if key != wanted:
            problems.append(f'{rel}: subscriptions are keyed "{key}", not "{wanted}" (<consumer>.<stream>, '
                            "the name the service subscribes under)")
    resource = CONSUMER_SUBSCRIPTION.search(code)
    names = re.findall(r"^\s*name\s*=\s*(\S+)\s*$", resource.group("body"), re.MULTILINE) if resource else []
    if names != ['"${var.prefix}-${each.key}"']:
        problems.append(f"{rel}: google_pubsub_subscription.consumer must be named "
                        f'"${{var.prefix}}-${{each.key}}", found {names or "nothing"}')
    return problems


# What vault's key rotation calls (services/vault/src/kms.rs): GetCryptoKey at start,
# CreateCryptoKeyVersion, UpdateCryptoKeyPrimaryVersion, ListCryptoKeyVersions and
# UpdateCryptoKeyVersion (state DISABLED). Encrypt and Decrypt come from
# roles/cloudkms.cryptoKeyEncrypterDecrypter, MacSign from roles/cloudkms.signerVerifier.
ROTATOR_PERMISSIONS = {
    "cloudkms.cryptoKeys.get",
    "cloudkms.cryptoKeys.update",
    "cloudkms.cryptoKeyVersions.create",
    "cloudkms.cryptoKeyVersions.list",
    "cloudkms.cryptoKeyVersions.update",
}
# Never in a custom role: shredding or resurrecting key material, handing keys to others, and
# managing the key hierarchy.
FORBIDDEN_PERMISSION = re.compile(
    r"(\*|\.destroy$|\.restore$|\.delete$|setIamPolicy$|^cloudkms\.keyRings\.|^cloudkms\.cryptoKeys\.create$|"
    r"^cloudkms\.importJobs\.|useToImport$)")


def kms_key_entry(code: str, name: str):
    """The attributes of `name = { ... }` written on one line (the environment's kms_keys)."""
    found = re.findall(rf"^\s*{re.escape(name)}\s*=\s*\{{(.*)\}}\s*$", code, re.MULTILINE)
    if len(found) != 1:
        return None
    return dict(re.findall(r"(\w+)\s*=\s*(\"[^\"]*\"|[\w.]+)", found[0]))


def check_kms_least_privilege(root: pathlib.Path):
    problems = []
    for path in tf_files(root):
        rel = path.relative_to(root)
        code = strip_comments(path.read_text())
        if '"roles/cloudkms.admin"' in code:
            problems.append(f"{rel}: grants roles/cloudkms.admin (use the kms module's rotators instead)")
        for label, body in blocks(code, r'resource\s+"google_project_iam_custom_role"'):
            permissions = set(re.findall(r'"([a-zA-Z]+\.[\w.*]+)"', body.split("permissions", 1)[-1]))
            for permission in sorted(p for p in permissions if FORBIDDEN_PERMISSION.search(p)):
                problems.append(f"{rel}: custom role {label} holds {permission}")
            if rel.as_posix() == "modules/kms/main.tf" and label == "rotator" and permissions != ROTATOR_PERMISSIONS:
                problems.append(f"{rel}: custom role rotator must hold exactly {sorted(ROTATOR_PERMISSIONS)}, "
                                f"found {sorted(permissions)}")
    environment = root / "modules" / "environment" / "main.tf"
    if environment.exists():
        rel = environment.relative_to(root)
        code = strip_comments(environment.read_text())
        kek = kms_key_entry(code, "vault")
        mac = kms_key_entry(code, "vault-fingerprint")
        if kek is None or "rotators" not in kek:
            problems.append(f"{rel}: kms_keys.vault must be one line with rotators (vault rotates it)")
        if mac is None or mac.get("purpose") != '"MAC"' or "signer_verifiers" not in mac:
            problems.append(f'{rel}: kms_keys.vault-fingerprint must be one line with purpose = "MAC" and signer_verifiers')
        if kek and mac and kek.get("protection_level") != mac.get("protection_level"):
            problems.append(f"{rel}: vault-fingerprint's protection_level must be vault's "
                            f"({kek.get('protection_level')}), found {mac.get('protection_level')}")
    return problems


TOKEN_CREATOR = '"roles/iam.serviceAccountTokenCreator"'
# service_account_id = google_service_account.<name>[each.key].name, member = the same account's .member
SELF_ACCOUNT = re.compile(r"^\s*service_account_id\s*=\s*google_service_account\.(\w+)\[each\.key\]\.name\s*$", re.MULTILINE)
SELF_MEMBER = re.compile(r"^\s*member\s*=\s*google_service_account\.(\w+)\[each\.key\]\.member\s*$", re.MULTILINE)


def check_token_creator_only_on_itself(root: pathlib.Path):
    problems = []
    for path in tf_files(root):
        rel = path.relative_to(root)
        code = strip_comments(path.read_text())
        total = code.count(TOKEN_CREATOR)
        if not total:
            continue
        self_grants = 0
        for kind in sorted(set(re.findall(r'^resource\s+"([\w-]+)"', code, re.MULTILINE))):
            for label, body in blocks(code, rf'resource\s+"{kind}"'):
                if TOKEN_CREATOR not in body:
                    continue
                account, member = SELF_ACCOUNT.search(body), SELF_MEMBER.search(body)
                if kind == "google_service_account_iam_member" and account and member \
                        and account.group(1) == member.group(1):
                    self_grants += body.count(TOKEN_CREATOR)
                else:
                    problems.append(f"{rel}: {kind}.{label} grants roles/iam.serviceAccountTokenCreator other than on an "
                                    "account to itself (google_service_account_iam_member with service_account_id "
                                    "and member of the same google_service_account.<name>[each.key])")
                    self_grants += body.count(TOKEN_CREATOR)
        if total > self_grants:
            problems.append(f"{rel}: roles/iam.serviceAccountTokenCreator outside a resource that grants an account to itself")
    return problems


RULES = (check_destructive_settings, check_variables_documented, check_module_layout,
         check_versions, check_no_literal_secrets, check_wiring, check_environment_profiles,
         check_subscription_names, check_kms_least_privilege, check_token_creator_only_on_itself)


# --- tests ---------------------------------------------------------------------------------------

class RepositoryFollowsPolicy(unittest.TestCase):
    def test_deletion_protection_and_force_destroy_only_relaxed_in_ci(self):
        self.assertEqual(check_destructive_settings(ROOT), [])

    def test_every_variable_has_description_and_type(self):
        self.assertEqual(check_variables_documented(ROOT), [])

    def test_every_module_has_its_files_and_an_example(self):
        self.assertEqual(check_module_layout(ROOT), [])

    def test_versions_are_pinned(self):
        self.assertEqual(check_versions(ROOT), [])

    def test_no_literal_secrets(self):
        self.assertEqual(check_no_literal_secrets(ROOT), [])

    def test_modules_are_wired_to_what_exists(self):
        self.assertEqual(check_wiring(ROOT), [])

    def test_environments_keep_their_profiles(self):
        self.assertEqual(check_environment_profiles(ROOT), [])

    def test_subscriptions_are_named_as_the_services_subscribe(self):
        self.assertEqual(check_subscription_names(ROOT), [])

    def test_kms_grants_only_what_vault_needs(self):
        self.assertEqual(check_kms_least_privilege(ROOT), [])

    def test_token_creator_only_on_the_account_itself(self):
        self.assertEqual(check_token_creator_only_on_itself(ROOT), [])
        grant = (ROOT / "modules" / "workload-identity" / "main.tf").read_text()
        self.assertIn(TOKEN_CREATOR, strip_comments(grant), "the services with buckets sign their links as themselves")


class RulesCatchViolations(unittest.TestCase):
    """Each rule must fire on a small tree that breaks it."""

    def tree(self, files: dict) -> pathlib.Path:
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        root = pathlib.Path(directory.name)
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (root / "modules").mkdir(exist_ok=True)
        (root / "envs").mkdir(exist_ok=True)
        return root

    def test_deletion_protection_false_outside_ci(self):
        root = self.tree({
            "envs/staging/main.tf": 'module "x" {\n  deletion_protection = false\n}\n',
            "envs/ci/main.tf": 'module "x" {\n  deletion_protection = false\n}\n',
            "modules/db/main.tf": '# deletion_protection = false is refused in comments too? no: comments do not count\n'
                                  'resource "a" "b" {\n  deletion_protection = true\n}\n',
            "modules/db/variables.tf": 'variable "deletion_protection" {\n  type = bool\n  default = false\n}\n',
        })
        problems = "\n".join(check_destructive_settings(root))
        self.assertIn("envs/staging/main.tf: `deletion_protection = false`", problems)
        self.assertNotIn("\nenvs/ci/", "\n" + problems)
        self.assertIn("modules must set deletion_protection from var.deletion_protection, not true", problems)
        self.assertIn("variable deletion_protection must default to true", problems)
        self.assertNotIn("comments", problems)

    def test_force_destroy_outside_ci(self):
        root = self.tree({"envs/production/main.tf": 'module "b" {\n  force_destroy = true\n}\n'})
        self.assertEqual(len(check_destructive_settings(root)), 1)

    def test_undocumented_variable(self):
        root = self.tree({"modules/m/variables.tf": 'variable "a" {\n  type = string\n}\n'
                                                    'variable "b" {\n  description = "{ braces } in text"\n}\n'})
        self.assertEqual(sorted(check_variables_documented(root)),
                         ["modules/m/variables.tf: variable a has no description",
                          "modules/m/variables.tf: variable b has no type"])

    def test_incomplete_module(self):
        root = self.tree({"modules/m/main.tf": "", "modules/m/variables.tf": ""})
        problems = "\n".join(check_module_layout(root))
        for missing in ("outputs.tf", "versions.tf", "README.md", "examples/<name>/main.tf"):
            self.assertIn(f"missing {missing}", problems)

    def test_unpinned_provider(self):
        root = self.tree({
            "modules/m/main.tf": 'resource "google_x" "y" {}\n',
            "modules/m/versions.tf": 'terraform {\n  required_version = ">= 1.11.0"\n  required_providers {\n'
                                     '    google = { source = "hashicorp/google", version = ">= 5" }\n  }\n}\n',
        })
        problems = "\n".join(check_versions(root))
        self.assertIn("google is not pinned", problems)
        self.assertIn("google-beta is not pinned", problems)

    def test_literal_secrets(self):
        root = self.tree({
            "modules/m/main.tf": 'resource "google_sql_user" "u" {\n  password = "hunter2"\n}\n'
                                 'resource "google_sql_user" "v" {\n  password_wo = ephemeral.random_password.p.result\n}\n'
                                 'locals {\n  url = "mysql://app:s3cret@10.0.0.1/db"\n'
                                 '  ok  = "mysql://${var.user}:${var.password}@127.0.0.1/db"\n}\n',
            "envs/x/terraform.tfvars.example": 'smtp_password = "changeme"\n',
        })
        problems = "\n".join(check_no_literal_secrets(root))
        self.assertIn("modules/m/main.tf: literal value for `password`", problems)
        self.assertIn("envs/x/terraform.tfvars.example: literal value for `smtp_password`", problems)
        self.assertIn("modules/m/main.tf: text shaped like a secret", problems)
        self.assertEqual(problems.count("modules/m/main.tf"), 2)

    def test_wiring(self):
        root = self.tree({
            "modules/m/variables.tf": 'variable "needed" {\n  type = string\n}\n'
                                      'variable "optional" {\n  type    = map(string)\n  default = { a = "b" }\n}\n',
            "modules/m/outputs.tf": 'output "id" {\n  value = var.needed\n}\n',
            "envs/e/main.tf": 'locals {\n  known = { nested = 1 }\n}\n'
                              'module "m" {\n  source   = "../../modules/m"\n  optional = { x = local.known }\n  typo = 1\n}\n'
                              'module "gone" {\n  source = "../../modules/nowhere"\n}\n'
                              'output "a" {\n  value = [module.m.id, module.m.name, var.nope, local.unknown, local.known]\n}\n',
            "modules/m/main.tf": 'resource "terraform_data" "kept" {}\n'
                                 'module "inner" {\n  source = "../n"\n  count  = 1\n}\n',
            "modules/n/main.tf": 'resource "terraform_data" "deep" {}\n',
            "envs/e/moved.tf": 'moved {\n  from = terraform_data.kept\n  to   = module.m.terraform_data.kept\n}\n'
                               'moved {\n  from = module.inner\n  to   = module.m.module.inner[0]\n}\n'
                               'moved {\n  from = module.x\n  to   = module.m.module.inner[0].terraform_data.deep\n}\n'
                               'moved {\n  from = module.m\n  to   = module.m2\n}\n'
                               'moved {\n  from = module.y\n  to   = module.m.terraform_data.gone\n}\n'
                               'moved {\n  from = module.z\n  to   = module.m.module.inner\n}\n'
                               'moved {\n  from = module.v\n  to   = module.m.module.inner.terraform_data.deep\n}\n'
                               'moved {\n  from = module.u\n  to   = module.m[0]\n}\n'
                               'moved {\n  from = module.w\n}\n',
        })
        self.assertEqual(sorted(check_wiring(root)), [
            "envs/e: local.unknown is not defined",
            "envs/e: module gone has no local source directory",
            "envs/e: module m does not pass required variable needed",
            "envs/e: module m passes typo, which m does not declare",
            "envs/e: module.m.name is not an output of that module",
            "envs/e: moved block without from and to",
            "envs/e: moved from module.m, which is still declared here",
            "envs/e: moved to module.m.module.inner.terraform_data.deep, which does not exist "
            "(module.inner has count/for_each: an instance key is needed before its contents)",
            "envs/e: moved to module.m.terraform_data.gone, which does not exist (terraform_data.gone is not declared in m)",
            "envs/e: moved to module.m2, which does not exist (module.m2 is not called in e)",
            "envs/e: moved to module.m[0], which does not exist (module.m has no count/for_each: m[0])",
            "envs/e: var.nope is not declared",
        ])

    def test_environment_profiles(self):
        root = self.tree({
            "envs/ci/main.tf": 'module "environment" {\n  deletion_protection = true\n  force_destroy = true\n}\n',
            "envs/production/main.tf": 'module "environment" {\n  # availability_type = "REGIONAL"\n'
                                       '  availability_type = "ZONAL"\n  retained_backups = 3\n}\n',
        })
        profiles = {"ci": {"deletion_protection": "false", "force_destroy": "true"},
                    "production": {"availability_type": '"REGIONAL"', "retained_backups": (">=", 7),
                                   "customer_managed_encryption": "true"}}
        self.assertEqual(check_environment_profiles(root, profiles), [
            "envs/ci: deletion_protection must be false, found ['true']",
            "envs/production: availability_type must be \"REGIONAL\", found ['\"ZONAL\"']",
            "envs/production: retained_backups must be >= 7, found ['3']",
            "envs/production: customer_managed_encryption must be true, found nothing",
        ])

    def test_subscription_names(self):
        loop = ('locals {\n  subscriptions = merge([\n    for topic, t in var.topics : {\n'
                '      for consumer in t.subscribers : "%s" => { topic = topic, consumer = consumer }\n    }\n  ]...)\n}\n')
        resource = ('resource "google_pubsub_subscription" "consumer" {\n  for_each = local.subscriptions\n'
                    '  name     = %s\n  topic    = "x"\n}\n')
        good = self.tree({"modules/pubsub/main.tf": loop % "${consumer}.${topic}"
                          + resource % '"${var.prefix}-${each.key}"'})
        self.assertEqual(check_subscription_names(good), [])
        bad = self.tree({"modules/pubsub/main.tf": loop % "${topic}.${consumer}" + resource % '"${each.key}"'})
        self.assertEqual(check_subscription_names(bad), [
            'modules/pubsub/main.tf: subscriptions are keyed "${topic}.${consumer}", not "${consumer}.${topic}" '
            "(<consumer>.<stream>, the name the service subscribes under)",
            'modules/pubsub/main.tf: google_pubsub_subscription.consumer must be named "${var.prefix}-${each.key}", '
            "found ['\"${each.key}\"']",
        ])
        self.assertEqual(check_subscription_names(self.tree({"modules/pubsub/main.tf": ""})), [
            "modules/pubsub/main.tf: no subscription per topic and subscriber found",
            'modules/pubsub/main.tf: google_pubsub_subscription.consumer must be named "${var.prefix}-${each.key}", '
            "found nothing",
        ])

    def test_kms_least_privilege(self):
        role = ('resource "google_project_iam_custom_role" "rotator" {\n  role_id = "x"\n  permissions = [\n%s  ]\n}\n')
        good_role = role % "".join(f'    "{p}",\n' for p in sorted(ROTATOR_PERMISSIONS))
        environment = ('locals {\n  kms_keys = {\n'
                       '    vault             = { protection_level = local.level, encrypter_decrypters = local.u, rotators = local.u }\n'
                       '    vault-fingerprint = { purpose = "MAC", protection_level = local.level, signer_verifiers = local.u }\n'
                       '  }\n}\n')
        good = self.tree({"modules/kms/main.tf": good_role, "modules/environment/main.tf": environment})
        self.assertEqual(check_kms_least_privilege(good), [])
        bad_role = role % '    "cloudkms.cryptoKeys.get",\n    "cloudkms.cryptoKeyVersions.destroy",\n    "cloudkms.cryptoKeys.setIamPolicy",\n'
        bad = self.tree({
            "modules/kms/main.tf": bad_role + '# roles/cloudkms.admin in a comment does not count\n',
            "modules/other/main.tf": 'resource "google_kms_crypto_key_iam_member" "m" {\n  role = "roles/cloudkms.admin"\n}\n',
            "modules/environment/main.tf": environment.replace(", rotators = local.u", "")
                                                      .replace('purpose = "MAC", protection_level = local.level',
                                                               'purpose = "MAC", protection_level = "SOFTWARE"'),
        })
        problems = check_kms_least_privilege(bad)
        self.assertIn("modules/other/main.tf: grants roles/cloudkms.admin (use the kms module's rotators instead)", problems)
        self.assertIn("modules/kms/main.tf: custom role rotator holds cloudkms.cryptoKeyVersions.destroy", problems)
        self.assertIn("modules/kms/main.tf: custom role rotator holds cloudkms.cryptoKeys.setIamPolicy", problems)
        self.assertTrue(any("custom role rotator must hold exactly" in p for p in problems))
        self.assertIn("modules/environment/main.tf: kms_keys.vault must be one line with rotators (vault rotates it)", problems)
        self.assertIn("modules/environment/main.tf: vault-fingerprint's protection_level must be vault's "
                      "(local.level), found \"SOFTWARE\"", problems)
        self.assertFalse(any(p.startswith("modules/kms/main.tf: grants") for p in problems), "comments do not count")
        no_mac = self.tree({"modules/environment/main.tf": environment.replace('purpose = "MAC", ', '')})
        self.assertEqual(check_kms_least_privilege(no_mac), [
            'modules/environment/main.tf: kms_keys.vault-fingerprint must be one line with purpose = "MAC" and signer_verifiers'])

    def test_token_creator_only_on_itself(self):
        good = ('resource "google_service_account_iam_member" "sign_blob" {\n  for_each = local.signers\n'
                '  service_account_id = google_service_account.service[each.key].name\n'
                '  role               = "roles/iam.serviceAccountTokenCreator"\n'
                '  member             = google_service_account.service[each.key].member\n}\n')
        self.assertEqual(check_token_creator_only_on_itself(self.tree({"modules/wi/main.tf": good})), [])
        bad = self.tree({
            "modules/wi/main.tf": good.replace("service[each.key].member", "other[each.key].member")
                                  + '# "roles/iam.serviceAccountTokenCreator" in a comment does not count\n',
            "modules/p/main.tf": 'resource "google_project_iam_member" "m" {\n  project = "p"\n'
                                 '  role    = "roles/iam.serviceAccountTokenCreator"\n  member  = "user:a@b"\n}\n',
            "modules/b/main.tf": good.replace("google_service_account_iam_member", "google_service_account_iam_binding"),
            "modules/l/main.tf": 'locals {\n  roles = ["roles/iam.serviceAccountTokenCreator"]\n}\n',
        })
        problems = check_token_creator_only_on_itself(bad)
        self.assertEqual(len(problems), 4, problems)
        for where in ("modules/wi/main.tf: google_service_account_iam_member.sign_blob",
                      "modules/p/main.tf: google_project_iam_member.m",
                      "modules/b/main.tf: google_service_account_iam_binding.sign_blob",
                      "modules/l/main.tf: roles/iam.serviceAccountTokenCreator outside"):
            self.assertTrue(any(p.startswith(where) for p in problems), where)


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
