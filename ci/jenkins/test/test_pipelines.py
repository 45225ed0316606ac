"""Checks of the Jenkins pipelines against the delivery design (the seed's stage lists):
stage names and order, the library step or command each stage uses, Cleanup in post { always },
approvals before production, every library step present, and the Jenkins Helm values."""
import re
import subprocess
from pathlib import Path

import pytest

from groovy_blocks import Jenkinsfile, in_post_always, strip_comments_and_strings
from jenkins_values import MOVING_TAGS, PINS, casc_scripts, image_problem, load_values, pod_templates

JENKINS = Path(__file__).resolve().parent.parent
ROOT = JENKINS.parent.parent
VARS = JENKINS / "vars"

# The seed's lists, in order, with the names the Jenkinsfiles give them.
SERVICE_STAGES = [
    "Initialize Workspace & Artifact Number",
    "SonarQube Scanning",
    "Test",
    "Build",
    "Docker/Image Build",
    "Image Push",
    "Final Stage",
]
INFRA_CI_STAGES = ["Infra Build", "SQL Table Setup", "Helm Deployment", "Test Stage", "Cleanup"]
INFRA_CD_STAGES = [
    "Staging Cluster Setup",
    "Staging SQL Table Setup",
    "Staging Helm Deployment",
    "Staging Rollback",
    "Production Cluster Setup",
    "Production SQL Table Setup",
    "Production Helm Deployment",
    "Production Rollback",
    "Final Stage",
]

# stage -> library steps it must call (in this order)
SERVICE_STEPS = {
    "Initialize Workspace & Artifact Number": ["initWorkspace"],
    "SonarQube Scanning": ["sonarScan"],
    "Test": ["cargoTest"],
    "Build": ["cargoBuild"],
    "Docker/Image Build": ["imageBuild"],
    "Image Push": ["imagePush"],
    "Final Stage": ["notifyResult"],
}
INFRA_STEPS = {
    "Infra Build": ["terraformApply"],
    "SQL Table Setup": ["sqlSetup"],
    "Helm Deployment": ["releasePlan", "helmDeploy"],
    "Test Stage": ["podHealthGate"],
    "Cleanup": ["terraformDestroy"],
    "Staging Cluster Setup": ["terraformApply"],
    "Staging SQL Table Setup": ["sqlSetup"],
    "Staging Helm Deployment": ["withApproval", "releasePlan", "helmDeploy", "podHealthGate"],
    "Staging Rollback": ["withApproval", "helmRollback"],
    "Production Cluster Setup": ["terraformApply"],
    "Production SQL Table Setup": ["sqlSetup"],
    "Production Helm Deployment": ["withApproval", "releasePlan", "helmDeploy", "podHealthGate"],
    "Production Rollback": ["withApproval", "helmRollback"],
    "Final Stage": ["notifyResult"],
}

# library step -> what it must run to do its work (regular expressions, in this order)
STEP_WORK = {
    "initWorkspace": [r"cleanWs\(\)", r"Cargo\.toml", r"BUILD_NUMBER",
                      r"fintech notify bitbucket --state INPROGRESS", r"--repository \"\$NOTIFY_REPOSITORY\""],
    "initToolingWorkspace": [r"fintech/Cargo\.toml", r"Containerfile\.agent-rust", r"cleanWs\(\)", r"checkout scm",
                             r"BRANCH_NAME", r"FROM rust:", r"env\.ARTIFACT_OPS = \"\$\{opsVersion\}-\$\{env\.BUILD_NUMBER\}\"",
                             r"env\.ARTIFACT_AGENT_RUST = \"\$\{rustVersion\}-\$\{env\.BUILD_NUMBER\}\"",
                             r"archiveArtifacts"],
    "agentImagePins": [r"'agent-rust': 'agentRust'", r"images/\$\{name\}\.digest", r"sha256:\[0-9a-f\]\{64\}",
                       r"ARTIFACT_", r"writeFile", r"archiveArtifacts", r"echo"],
    "sonarScan": [r"tools_venv_install \"\$PWD/scripts/requirements/test-servers\.txt\"",
                  r"cargo clippy .*--message-format=json", r"cargo llvm-cov .*--lcov", r"withSonarQubeEnv",
                  r"sonar-scanner", r"waitForQualityGate abortPipeline: true"],
    "cargoTest": [r"\./scripts/test\.sh --skip-image-checks"],
    "cargoBuild": [r"profile: 'image'", r"cargo build --profile \"\$PROFILE\" --locked --target", r"/\$PROFILE/fintech"],
    "imageBuild": [r"Containerfile\.ops", r"Containerfile\.agent-rust", r"git log -1 --format=%ct",
                   r"image build \"\$SERVICE\" --registry", r"--tag \"\$TAG\"", r"--revision \"\$GIT_COMMIT\"",
                   r"cfg\.agentImages\.each", r"\$\{name\}:\$\{artifactOf\(name\)\}", r"--build-arg BINARY=",
                   r"buildah build \"\$@\" \"\$CONTEXT\"", r"ARTIFACT_"],
    "imagePush": [r"branch: 'master'", r"agentImages: \['ops', 'agent-rust'\]", r"BRANCH_NAME != cfg\.branch",
                  r"buildah login", r"name in cfg\.agentImages", r"buildah push --digestfile",
                  r"set \+x", r"image push \"\$NAME\" .*--digest-out images", r"archiveArtifacts"],
    "notifyResult": [r"group", r"git log -1 --format=%ae", r"fintech notify bitbucket", r"--repository",
                     r"fintech notify email", r"--from \"\$MAIL_FROM\"", r"exit \"\$failed\""],
    "terraformApply": [r"terraform -chdir=\"\$TF_DIR\" init", r"plan .*-out=tfplan", r"show -no-color tfplan",
                       r"archiveArtifacts", r"approval\(", r"apply .*tfplan"],
    "terraformDestroy": [r"refusing to destroy", r"destroy -no-color -auto-approve"],
    "sqlSetup": [r"cloud-sql-proxy", r"fintech migrate all --database-url"],
    "helmDeploy": [r"nginx-gateway-fabric\.version", r"GATEWAY_CHART=\$\{e\.gatewayChart\}",
                   r"gatewayPrevious = revisionOf\(e\.gatewayRelease, e\.gatewayNamespace\)",
                   r"env\.GATEWAY_PREVIOUS_REVISION = gatewayPrevious",
                   r"helm upgrade --install \"\$GATEWAY_RELEASE\" \"\$GATEWAY_CHART\"",
                   r"previous = revisionOf\(e\.release, e\.namespace\)", r"helm dependency build",
                   r"helm upgrade --install \"\$RELEASE\" \"\$CHART\"", r"-f \"\$VALUES\" -f \"\$IMAGES\"",
                   r"helm history"],
    "podHealthGate": [r"app\.kubernetes\.io/instance=\$\{e\.release\}",
                      r"app\.kubernetes\.io/instance=\$\{e\.gatewayRelease\}",
                      r"gateway\.networking\.k8s\.io/gateway-name=\$\{e\.gatewayName\}", r"targets\.each",
                      r"fintech verify-rollout --namespace \"\$NAMESPACE\" --selector \"\$SELECTOR\"",
                      r"archiveArtifacts", r"if \(failed\)"],
    "releasePlan": [r"set \+x", r"fintech release-plan", r"--proxy-image", r"--images-out", r"readJSON", r"readYaml"],
    "helmRollback": [r"\[release: e\.release, namespace: e\.namespace, revision: cfg\.revision\]",
                     r"\[release: e\.gatewayRelease, namespace: e\.gatewayNamespace, revision: cfg\.gatewayRevision\]",
                     r"<= 0", r"helm rollback \"\$RELEASE\" \"\$REVISION\"", r"podHealthGate"],
    "approval": [r"submitter: env\.FINTECH_RELEASE_APPROVERS", r"if \(!cfg\.submitter\?\.trim\(\)\)", r"error\(",
                 r"input\(", r"submitter: cfg\.submitter", r"'No', 'Yes'", r"answer == 'Yes'"],
    "withApproval": [r"approval\(", r"if \(!yes\)", r"withDeployAgent"],
    "withDeployAgent": [r"podTemplate", r"node\(POD_LABEL\)", r"checkout scm"],
    "clusterCredentials": [r"e\.privateEndpoint", r"--internal-ip", r"command -v gke-gcloud-auth-plugin",
                           r"gcloud container clusters get-credentials .*\$ENDPOINT_ARGS", r"kubectl auth can-i list pods"],
    "fintechEnv": [r"gatewayRelease: 'ngf'", r"gatewayNamespace: 'nginx-gateway'", r"fintech-ci", r"fintech-stg",
                   r"fintech-prod", r"deploy/terraform/envs/", r"gatewayName"],
}

# steps provided by Jenkins and its plugins (not by the library)
BUILT_IN = {
    "pipeline", "agent", "kubernetes", "options", "disableConcurrentBuilds", "timeout", "buildDiscarder",
    "logRotator", "timestamps", "skipDefaultCheckout", "triggers", "pollSCM", "stages", "stage", "steps",
    "when", "expression", "branch", "allOf", "post", "always", "script", "environment", "echo", "inheritFrom",
    "defaultContainer", "if", "else", "List", "sh", "error", "catchError", "try", "finally",
}

SERVICE = JENKINS / "Jenkinsfile.service"
INFRA = JENKINS / "Jenkinsfile.infrastructure"
TOOLING = JENKINS / "Jenkinsfile.tooling-images"


@pytest.fixture(scope="module")
def service():
    return Jenkinsfile(SERVICE.read_text())


@pytest.fixture(scope="module")
def infra():
    return Jenkinsfile(INFRA.read_text())


def var_text(name):
    return (VARS / f"{name}.groovy").read_text()


def leaf_names(jf):
    return [s.name for s in jf.leaf_stages()]


def stage_order_errors(actual, expected):
    return [] if actual == expected else [f"expected {expected}, found {actual}"]


# --- stage names and order ------------------------------------------------------------------

def test_service_stages_in_seed_order(service):
    assert leaf_names(service) == SERVICE_STAGES


def test_infrastructure_stages_in_seed_order(infra):
    assert leaf_names(infra) == INFRA_CI_STAGES + INFRA_CD_STAGES


def test_infrastructure_ci_and_cd_groups(infra):
    ci, cd = infra.stage("CI"), infra.stage("CD")
    assert [s.name for s in infra.leaf_stages() if ci.start < s.start < ci.end] == INFRA_CI_STAGES
    assert [s.name for s in infra.leaf_stages() if cd.start < s.start < cd.end] == INFRA_CD_STAGES[:-1]
    assert ci.end < cd.start


def test_order_check_catches_a_swap():
    swapped = Jenkinsfile("pipeline { stages { stage('Build') { steps { cargoBuild() } } "
                          "stage('Test') { steps { cargoTest() } } } }")
    assert stage_order_errors(leaf_names(swapped), ["Test", "Build"])


# --- each stage calls the step that does its work -------------------------------------------

def _called_in_order(jf, stage_name, steps):
    calls = jf.calls(jf.stage(stage_name).body)
    positions = []
    for step in steps:
        assert step in calls, f"stage {stage_name!r} does not call {step}: {calls}"
        positions.append(calls.index(step))
    assert positions == sorted(positions), f"stage {stage_name!r} calls {steps} out of order: {calls}"


@pytest.mark.parametrize("stage_name", list(SERVICE_STEPS))
def test_service_stage_calls_its_step(service, stage_name):
    _called_in_order(service, stage_name, SERVICE_STEPS[stage_name])


@pytest.mark.parametrize("stage_name", list(INFRA_STEPS))
def test_infrastructure_stage_calls_its_step(infra, stage_name):
    _called_in_order(infra, stage_name, INFRA_STEPS[stage_name])


@pytest.mark.parametrize("step", sorted(STEP_WORK))
def test_library_step_does_its_work(step):
    text = strip_comments_and_strings(var_text(step))
    last = -1
    for pattern in STEP_WORK[step]:
        m = re.compile(pattern).search(text, last + 1)
        assert m, f"vars/{step}.groovy: {pattern!r} missing (or out of order)"
        last = m.start()


def test_infra_environments_per_stage(infra):
    for name in ["Infra Build", "SQL Table Setup", "Helm Deployment", "Test Stage", "Cleanup"]:
        assert "environment: 'ci'" in infra.stage(name).body, name
    for name in INFRA_CD_STAGES[:-1]:
        env = "staging" if name.startswith("Staging") else "production"
        assert f"environment: '{env}'" in infra.stage(name).body, name
        other = "production" if env == "staging" else "'ci'"
        assert other not in infra.stage(name).body, name


# --- always, master only, approvals ---------------------------------------------------------

def test_cleanup_runs_in_post_always_of_ci(infra):
    cleanup = infra.stage("Cleanup")
    assert in_post_always(cleanup)
    ci = infra.stage("CI")
    assert ci.start < cleanup.start < ci.end
    assert "when" not in cleanup.ancestors


def test_cleanup_check_catches_a_plain_stage():
    plain = Jenkinsfile("pipeline { stages { stage('Cleanup') { steps { terraformDestroy() } } } }")
    assert not in_post_always(plain.stage("Cleanup"))


def test_final_stages_run_in_post_always(service, infra):
    assert in_post_always(service.stage("Final Stage"))
    assert in_post_always(infra.stage("Final Stage"))


def test_image_push_on_master_only(service):
    body = service.stage("Image Push").body
    assert re.search(r"when\s*\{[^}]*branch 'master'", body, re.S)
    assert "branch: 'master'" in var_text("imagePush")


def test_cd_on_master_after_ci(infra):
    cd = infra.stage("CD")
    assert re.search(r"when\s*\{\s*allOf\s*\{\s*branch 'master'\s*expression \{ currentBuild\.currentResult == 'SUCCESS' \}",
                     cd.body, re.S)


@pytest.mark.parametrize("stage_name", ["Staging Helm Deployment", "Staging Rollback",
                                        "Production Helm Deployment", "Production Rollback"])
def test_yes_no_before_deploy_and_rollback(infra, stage_name):
    body = infra.stage(stage_name).body
    work = re.search(r"helmDeploy|helmRollback", body)
    gate = re.search(r"withApproval\(", body)
    assert gate and work and gate.start() < work.start()
    # the deploy or rollback happens only inside the approved block
    assert "agent" not in strip_comments_and_strings(body, keep_strings=False).split("steps")[0]


def test_production_plan_approved_before_apply(infra):
    assert "requireApproval: true" in infra.stage("Production Cluster Setup").body
    text = var_text("terraformApply")
    assert text.index("approval(") < text.index("apply -no-color -input=false tfplan")


def test_production_upgrades_only_changed_digests(infra):
    body = infra.stage("Production Helm Deployment").body
    assert re.search(r"changed = releasePlan\(environment: 'production'\)", body)
    assert "helmDeploy(environment: 'production', changed: changed)" in body
    assert "cfg.changed.isEmpty()" in var_text("helmDeploy")


@pytest.mark.parametrize("path", [SERVICE, INFRA, TOOLING], ids=lambda p: p.name)
def test_pipeline_options(path):
    text = path.read_text()
    for option in ["disableConcurrentBuilds()", "timeout(time:", "buildDiscarder(logRotator("]:
        assert option in text, f"{path.name}: {option}"
    assert "@Library('fintech-pipeline') _" in text


# --- the library ----------------------------------------------------------------------------

REQUIRED_STEPS = ["initWorkspace", "sonarScan", "cargoTest", "cargoBuild", "imageBuild", "imagePush",
                  "notifyResult", "terraformApply", "terraformDestroy", "sqlSetup", "helmDeploy",
                  "podHealthGate", "releasePlan", "helmRollback", "approval", "initToolingWorkspace",
                  "agentImagePins"]


@pytest.mark.parametrize("step", REQUIRED_STEPS)
def test_required_step_exists(step):
    assert (VARS / f"{step}.groovy").is_file()


@pytest.mark.parametrize("path", sorted(VARS.glob("*.groovy")), ids=lambda p: p.stem)
def test_step_has_call_with_defaults_map(path):
    text = path.read_text()
    assert re.search(r"\bcall\(Map args = \[:\]", text), "call(Map args = [:] ...)"
    assert re.search(r"Map defaults = \[", text), "a defaults map"
    assert "defaults + args" in text
    assert text.lstrip().startswith("//"), "a comment saying what the step does"


@pytest.mark.parametrize("path", [SERVICE, INFRA, TOOLING], ids=lambda p: p.name)
def test_every_called_step_exists(path):
    jf = Jenkinsfile(path.read_text())
    library = {p.stem for p in VARS.glob("*.groovy")}
    called = set(jf.calls(jf.text))
    unknown = called - BUILT_IN - library - {"podTemplate", "node", "checkout", "as", "withApproval"}
    assert not unknown, f"{path.name} calls steps that exist neither in vars/ nor in Jenkins: {unknown}"
    assert (called & library), "it uses the library"


def test_steps_called_from_library_exist():
    library = {p.stem for p in VARS.glob("*.groovy")}
    for path in VARS.glob("*.groovy"):
        calls = set(re.findall(r"\b([a-z]\w*)\(", strip_comments_and_strings(path.read_text(), keep_strings=False)))
        for name in calls:
            if name in {"fintechEnv", "approval", "clusterCredentials", "podHealthGate", "withDeployAgent"}:
                assert name in library, f"{path.name} calls {name}"


def _without_plain_strings(text):
    """Groovy text without its non-interpolating strings ('...' and '''...''')."""
    text = re.sub(r"'''.*?'''", "''''''", text, flags=re.S)
    return re.sub(r"'(?:[^'\\\n]|\\.)*'", "''", text)


def test_no_secret_in_groovy_interpolation():
    # credentials reach the shell as environment variables; a GString holding one would put the
    # secret into the Groovy side (and the build log of the sh step's command line)
    checked = 0
    for path in VARS.glob("*.groovy"):
        text = path.read_text()
        names = [a or b for a, b in re.findall(r"variable: '(\w+)'|Variable: '(\w+)'", text)]
        rest = _without_plain_strings(strip_comments_and_strings(text))
        for name in names:
            checked += 1
            assert not re.search(r"\$\{?" + name + r"\b", rest), f"{path.name}: {name} in a GString"
    assert checked >= 7


def test_gstring_check_catches_interpolated_secret():
    bad = 'withCredentials([string(credentialsId: "x", variable: \'TOKEN\')]) { sh "curl -H $TOKEN" }'
    assert re.search(r"\$\{?TOKEN\b", _without_plain_strings(bad))
    good = "withCredentials([string(credentialsId: 'x', variable: 'TOKEN')]) { sh \'\'\'curl -H $TOKEN\'\'\' }"
    assert not re.search(r"\$\{?TOKEN\b", _without_plain_strings(good))


# --- Jenkins Helm values, Sonar, README -----------------------------------------------------

@pytest.fixture(scope="module")
def values():
    return load_values()


@pytest.fixture(scope="module")
def casc(values):
    return casc_scripts(values)


def _walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, node


def test_values_credentials_only_from_kubernetes_secrets(values, casc):
    secret_names = {f"{s['name']}-{s['keyName']}" for s in values["controller"]["additionalExistingSecrets"]}
    creds = casc["credentials"]["system"]["domainCredentials"][0]["credentials"]
    assert creds
    for path, value in _walk(casc):
        if re.search(r"(password|secret|secretBytes|clientSecret)$", path, re.I):
            refs = re.findall(r"\$\{(?:base64:)?\$?\{?([\w-]+)\}", str(value))
            assert refs and all(r in secret_names for r in refs), f"{path}: {value!r} is not a secret reference"
    assert values["controller"]["admin"]["existingSecret"]


def test_values_credentials_cover_the_library(casc):
    ids = {next(iter(c.values()))["id"] for c in casc["credentials"]["system"]["domainCredentials"][0]["credentials"]}
    text = "\n".join(p.read_text() for p in VARS.glob("*.groovy"))
    used = set(re.findall(r"Credentials: '([\w-]+)'", text))
    for env in ["ci", "staging", "production"]:
        used |= {f"terraform-tfvars-{env}", f"cloudsql-migrator-{env}"}
    assert used <= ids, used - ids


def test_values_jobs_and_library(casc):
    jobs = "\n".join(j["script"] for j in casc["jobs"])
    assert "multibranchPipelineJob('fintech-services')" in jobs
    assert "scriptPath('ci/jenkins/Jenkinsfile.service')" in jobs
    assert "multibranchPipelineJob('fintech-infrastructure')" in jobs
    assert "scriptPath('ci/jenkins/Jenkinsfile.infrastructure')" in jobs
    assert jobs.count("bitbucket {") == 2
    lib = casc["unclassified"]["globalLibraries"]["libraries"][0]
    assert lib["name"] == "fintech-pipeline" and lib["retriever"]["modernSCM"]["libraryPath"] == "ci/jenkins/"
    assert casc["unclassified"]["bitbucketEndpointConfiguration"]["endpoints"][0]["bitbucketCloudEndpoint"]["manageHooks"]
    sonar = casc["unclassified"]["sonarGlobalConfiguration"]["installations"][0]
    assert sonar["name"] == "sonarqube" and "server: 'sonarqube'" in var_text("sonarScan")
    assert casc["unclassified"]["mailer"]["smtpHost"]


def test_image_check_refuses_moving_tags():
    for bad in ["ops:stable", "x/ops:latest", "x/ops", "quay.io/buildah/stable", "x/ops:main", "x/y:1@sha256:12"]:
        assert image_problem(bad), bad
    for good in ["x/ops:0.1.0-42@sha256:" + "a" * 64, "hashicorp/terraform:1.11.4", "quay.io/buildah/stable:v1.41.4",
                 "gcr.io/google.com/cloudsdktool/google-cloud-cli:548.0.0-stable", "x@sha256:" + "c" * 64]:
        assert image_problem(good) is None, good


def test_values_pod_templates_have_the_containers_steps_use(values):
    pods = pod_templates(values)
    containers = {}
    for label, pod in pods.items():
        containers[label] = {c["name"] for c in pod["containers"]}
        for c in pod["containers"]:
            assert image_problem(c["image"]) is None, image_problem(c["image"])
            assert c.get("resources", {}).get("limits"), c["name"]
    assert set(containers) == {"fintech-rust", "fintech-deploy"}
    service_steps = ["initWorkspace", "sonarScan", "cargoTest", "cargoBuild", "imageBuild", "imagePush", "notifyResult",
                     "initToolingWorkspace", "agentImagePins"]   # the last two: the tooling images pipeline
    infra_steps = ["terraformApply", "terraformDestroy", "sqlSetup", "helmDeploy", "podHealthGate", "releasePlan",
                   "helmRollback", "clusterCredentials", "notifyResult"]
    for steps, label in [(service_steps, "fintech-rust"), (infra_steps, "fintech-deploy")]:
        for step in steps:
            used = set(re.findall(r"[cC]ontainer: '([\w-]+)'", var_text(step)))
            assert used <= containers[label], f"{step} uses {used - containers[label]} missing in {label}"


def test_own_agent_images_run_by_tag_and_digest(values):
    own = values["fintechAgentImages"]
    registry = own["registry"]
    for text in values["agent"]["podTemplates"].values():
        for line in re.findall(r"image: (.*)", text):
            if "fintechAgentImages" in line or registry in line:
                # both parts required: the install stops on an empty tag or digest
                assert line.count("required `") == 2 and "@{{" in line, line
    pods = pod_templates(values)
    images = {c["image"] for pod in pods.values() for c in pod["containers"]}
    assert f"{registry}/ops:{PINS['fintechAgentImages.ops.tag']}@{PINS['fintechAgentImages.ops.digest']}" in images
    assert any(i.startswith(f"{registry}/agent-rust:") and "@sha256:" in i for i in images)
    # what is committed is either still the placeholder or a real pin
    for name in ["ops", "agentRust"]:
        tag, digest = own[name]["tag"], own[name]["digest"]
        assert tag == "" or (re.fullmatch(r"[\w][\w.-]{0,127}", tag) and tag.lower() not in MOVING_TAGS), tag
        assert digest == "" or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest


def test_agent_containers_least_privilege(values):
    pods = pod_templates(values)
    for label, pod in pods.items():
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0, label
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", label
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, c["name"]
            assert not sc.get("privileged"), c["name"]
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
            if c["name"] != "buildah":
                assert "add" not in sc.get("capabilities", {}), c["name"]
                assert sc.get("runAsUser", ctx["runAsUser"]) != 0, c["name"]
                assert "seccompProfile" not in sc and "appArmorProfile" not in sc, c["name"]
    buildah = next(c for c in pods["fintech-rust"]["containers"] if c["name"] == "buildah")
    sc = buildah["securityContext"]
    # root in the container with the four capabilities buildah and the sh step need (see the
    # values' comment for each), never CAP_SYS_ADMIN or privileged mode
    assert sc["runAsUser"] == 0 and sc["runAsNonRoot"] is False
    assert sorted(sc["capabilities"]["add"]) == ["DAC_OVERRIDE", "SETFCAP", "SETGID", "SETUID"]
    assert sc["seccompProfile"]["type"] == "Unconfined" and sc["appArmorProfile"]["type"] == "Unconfined"
    assert {e["name"]: e["value"] for e in buildah["env"]} == {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}


def test_image_steps_run_in_the_buildah_container():
    for step in ["imageBuild", "imagePush"]:
        assert "container: 'buildah'" in var_text(step), step
    # the agent's user creates images/ before root writes the digests into it
    push = var_text("imagePush")
    assert push.index("sh 'mkdir -p images'") < push.index("container(cfg.container)")


def test_test_stage_skips_only_the_image_checks():
    script = (ROOT / "scripts/test.sh").read_text()
    # the default runs everything; the switch leaves out exactly check-images.sh
    assert re.search(r"^image_checks=yes$", script, re.M)
    assert "--skip-image-checks) image_checks=no ;;" in script
    guarded = re.search(r'if \[ "\$image_checks" = yes \]; then\n(.*?)\nelse', script, re.S)
    assert guarded and "./scripts/check-images.sh" in guarded.group(1)
    assert script.count("./scripts/check-images.sh") == 1
    for check in ["cargo fmt", "cargo clippy", "cargo test", "./scripts/check-helm.sh", "./scripts/check-terraform.sh",
                  "./scripts/check-jenkins.sh"]:
        assert check in script.split('if [ "$image_checks" = yes ]')[0], check


IMAGES = JENKINS / "images"


def _from_lines(path):
    return re.findall(r"^FROM\s+(\S+)", path.read_text(), re.M)


@pytest.mark.parametrize("path", sorted(IMAGES.glob("Containerfile*")), ids=lambda p: p.name)
def test_containerfile_bases_are_pinned(path):
    for image in _from_lines(path):
        if image == "scratch":
            continue
        assert image_problem(image) is None, f"{path.name}: {image_problem(image)}"


def test_ops_image_has_every_tool_the_ops_steps_run():
    text = (IMAGES / "Containerfile.ops").read_text()
    check = text[text.rindex("RUN gcloud --version"):]
    tools = ["gcloud", "gke-gcloud-auth-plugin", "kubectl", "helm", "cloud-sql-proxy", "nc", "git", "fintech"]
    for tool in tools:
        assert re.search(rf"(?<![\w-]){re.escape(tool)}\b", check), f"Containerfile.ops does not check {tool}"
    # GKE kubeconfigs exec the auth plugin: installed from Google's repository at the base's release
    assert re.search(r"google-cloud-cli-gke-gcloud-auth-plugin=\$\{CLOUD_SDK_VERSION\}-0", text)
    base_version = re.search(r"google-cloud-cli:(\d+\.\d+\.\d+)-stable", text).group(1)
    assert f"ARG CLOUD_SDK_VERSION={base_version}" in text
    for arg in ["KUBECTL_VERSION", "HELM_VERSION", "CLOUD_SQL_PROXY_VERSION"]:
        assert re.search(rf"^ARG {arg}=\d+\.\d+\.\d+$", text, re.M), arg
    # kubectl and helm against their published checksums, cloud-sql-proxy against the pinned one
    assert "kubectl.sha256" in text and ".sha256sum" in text and text.count("sha256sum -c") == 3
    # every tool the library runs in the ops container is one of them
    used = set()
    for path in VARS.glob("*.groovy"):
        code = strip_comments_and_strings(path.read_text())
        used |= {t for t in ["gcloud", "kubectl", "helm", "cloud-sql-proxy", "nc", "git", "fintech"]
                 if re.search(rf"(?m)(^|[\s(|;&]){re.escape(t)}\s", code)}
    assert used <= set(tools), used - set(tools)


def test_ops_image_pins_and_checks_cloud_sql_proxy():
    text = (IMAGES / "Containerfile.ops").read_text()
    # no checksum file is published next to the binary: the hash is pinned here (an ARG, empty
    # until someone fills it from the release notes); the build stops before any download without
    # a well-formed one, and the download is checked against it
    arg = re.search(r"^ARG CLOUD_SQL_PROXY_SHA256=(.*)$", text, re.M)
    assert arg and re.fullmatch(r"(|[0-9a-f]{64})", arg.group(1)), "CLOUD_SQL_PROXY_SHA256: empty or 64 hex digits"
    guard = text.index('[ "${#CLOUD_SQL_PROXY_SHA256}" -eq 64 ]')
    assert text.index("CLOUD_SQL_PROXY_SHA256") < guard < text.index("curl ")
    assert re.search(r'echo "\$\{CLOUD_SQL_PROXY_SHA256\}  /usr/local/bin/cloud-sql-proxy" \| sha256sum -c -', text)
    assert text.index("cloud-sql-proxy.linux.amd64") < text.index("/usr/local/bin/cloud-sql-proxy\" | sha256sum -c")
    # the same proxy release as the chart's sidecar
    chart = (ROOT / "deploy/helm/fintech/values.yaml").read_text()
    sidecar = re.search(r'cloud-sql-proxy\n\s+tag: "([\d.]+)"', chart).group(1)
    assert f"ARG CLOUD_SQL_PROXY_VERSION={sidecar}" in text


def test_ops_image_guard_refuses_a_missing_checksum(tmp_path):
    text = (IMAGES / "Containerfile.ops").read_text()
    guard = re.search(r"^RUN (case \"\$\{CLOUD_SQL_PROXY_SHA256\}\".*?\n    \})$", text, re.M | re.S).group(1)
    script = guard.replace("\\\n", "")   # the Containerfile's line continuations
    for value, ok in [("", False), ("abc", False), ("A" * 64, False), ("a" * 64 + "\n", False), ("a" * 63 + "\n", False),
                      ("0" * 63, False), ("0" * 65, False),
                      ("0123456789abcdef" * 4, True)]:
        env = {"CLOUD_SQL_PROXY_SHA256": value, "CLOUD_SQL_PROXY_VERSION": "2.23.0", "PATH": "/usr/bin:/bin"}
        result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        assert (result.returncode == 0) == ok, (value, result.stderr)


def test_ops_image_helm_is_the_release_the_chart_checks_use():
    text = (IMAGES / "Containerfile.ops").read_text()
    checks = (ROOT / "scripts/check-helm.sh").read_text()
    wanted = re.search(r"^HELM_VERSION=v(\d+\.\d+\.\d+)$", checks, re.M).group(1)
    assert f"ARG HELM_VERSION={wanted}" in text


def test_rust_agent_image_has_what_the_test_command_installs():
    text = (IMAGES / "Containerfile.agent-rust").read_text()
    for package in ["mariadb-server", "docker-registry", "python3-venv", "npm", "groovy", "openjdk-17-jre-headless",
                    "musl-tools", "file", "git"]:
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", text), package
    for component in ["rustfmt", "clippy", "llvm-tools-preview"]:
        assert component in text, component
    assert "COPY --from=terraform /bin/terraform" in text
    assert "FROM hashicorp/terraform:1.11.4" in text, "the same terraform as the fintech-deploy template"
    assert re.search(r"^USER 1000:1000$", text, re.M)


def test_sonar_properties_import_clippy_and_coverage():
    props = dict(line.split("=", 1) for line in (JENKINS / "sonar-project.properties").read_text().splitlines()
                 if line and not line.startswith("#"))
    scan = var_text("sonarScan")
    assert props["sonar.rust.clippy.reportPaths"] in scan
    assert props["sonar.rust.lcov.reportPaths"] in scan
    assert "ci/jenkins/sonar-project.properties" in scan


def test_readme_lists_the_fintech_commands_the_pipelines_need():
    readme = (JENKINS / "README.md").read_text()
    text = "\n".join(strip_comments_and_strings(p.read_text()) for p in VARS.glob("*.groovy"))
    for sub in sorted(set(re.findall(r"\bfintech ((?:notify )?[a-z][\w-]+)", text))):
        assert f"fintech {sub}" in readme, sub
    assert "not built yet" not in readme.lower(), "every command the pipelines call is built"
    for sub in ["release-plan", "image build", "image push", "notify bitbucket", "notify email", "verify-rollout"]:
        assert re.search(rf"^\| `fintech {sub}` \|", readme, re.M), f"fintech {sub}: a row of the command table"


def test_ngf_version_file_exists():
    version = (ROOT / "deploy/helm/nginx-gateway-fabric.version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)


def test_terraform_envs_and_values_files_exist():
    for env in ["ci", "staging", "production"]:
        assert (ROOT / f"deploy/terraform/envs/{env}").is_dir()
        assert (ROOT / f"deploy/helm/fintech/values-{env}.yaml").is_file()
