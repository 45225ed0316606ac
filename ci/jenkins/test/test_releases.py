"""The Helm releases of the infrastructure pipeline: every release a Helm stage installs or upgrades
(the fintech chart and the NGINX Gateway Fabric entry point) is followed by a pod-health gate of
that release, a rollback returns every release the build upgraded, and clusters with a private
control-plane endpoint are reached on their private IP."""
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from groovy_blocks import Jenkinsfile, single_quoted_scripts, strip_comments_and_strings

JENKINS = Path(__file__).resolve().parent.parent
ROOT = JENKINS.parent.parent
VARS = JENKINS / "vars"
INFRA = JENKINS / "Jenkinsfile.infrastructure"
ENVIRONMENTS = ["ci", "staging", "production"]


def code(step):
    return strip_comments_and_strings((VARS / f"{step}.groovy").read_text())


def env_keys(text):
    """Shell variable -> fintechEnv key, from a step's withEnv entries like "RELEASE=${e.release}"."""
    return dict(re.findall(r'"(\w+)=\$\{e\.(\w+)\}"', text))


def installed_releases():
    """(release key, namespace key) of fintechEnv for each `helm upgrade --install` of helmDeploy."""
    text = code("helmDeploy")
    keys = env_keys(text)
    found = set()
    for release, namespace in re.findall(r'helm upgrade --install "\$(\w+)" "\$\w+".*?--namespace "\$(\w+)"', text, re.S):
        found.add((keys[release], keys[namespace]))
    return found


def gated_releases():
    """(release key, namespace key) of each pod-health gate target selecting a release's pods."""
    text = code("podHealthGate")
    return set((r, ns) for r, ns, sel in re.findall(
        r'\[name: e\.(\w+), namespace: e\.(\w+),\s*selector: "app\.kubernetes\.io/instance=\$\{e\.(\w+)\}"\]', text)
        if r == sel)


# --- 3. every Helm install is followed by a gate of what it installed -----------------------------

def test_helm_deploy_installs_the_entry_point_and_the_services():
    assert installed_releases() == {("gatewayRelease", "gatewayNamespace"), ("release", "namespace")}
    text = code("helmDeploy")
    # the entry point first: the services' routes need its GatewayClass
    assert text.index('helm upgrade --install "$GATEWAY_RELEASE"') < text.index('helm upgrade --install "$RELEASE"')


def test_the_gate_checks_every_release_helm_deploy_installs():
    assert installed_releases() <= gated_releases(), installed_releases() - gated_releases()
    # and the NGINX data plane NGF runs for the chart's Gateway, in the fintech namespace, selected
    # by the label the chart's own network policy uses for those pods
    text = code("podHealthGate")
    assert re.search(r'namespace: e\.namespace,\s*selector: "gateway\.networking\.k8s\.io/gateway-name=\$\{e\.gatewayName\}"',
                     text)
    helpers = (ROOT / "deploy/helm/fintech/templates/_helpers.tpl").read_text()
    assert 'gateway.networking.k8s.io/gateway-name: {{ include "fintech-lib.names.fullname" . }}' in helpers
    # the chart names its Gateway <release> (no fullnameOverride in any values file): gatewayName
    assert "result.gatewayName = result.gatewayName ?: result.release" in code("fintechEnv")
    for env in ENVIRONMENTS + [""]:
        name = f"values-{env}.yaml" if env else "values.yaml"
        values = (ROOT / "deploy/helm/fintech" / name).read_text()
        assert not re.search(r'^(fullnameOverride|nameOverride): *"?[^"\s]', values, re.M), name


def test_the_gate_includes_the_entry_point_everywhere():
    # on by default, and no caller turns it off (CI, staging, production, after a rollback)
    assert "gateway: true," in code("podHealthGate")
    for path in [INFRA, *VARS.glob("*.groovy")]:
        assert not re.search(r"podHealthGate\([^)]*gateway:", path.read_text()), path.name


def test_a_failed_target_does_not_hide_the_others():
    text = code("podHealthGate")
    assert "sh(returnStatus: true" in text and "failed << " in text
    assert text.index("targets.each") < text.index("archiveArtifacts") < text.index("error(")


def _gate_follows(jf, stages, index, environment):
    """The stage at index calls podHealthGate(environment) after helmDeploy, or the next stage does."""
    body = jf.calls(stages[index].body)
    after = body[body.index("helmDeploy") + 1:]
    if "podHealthGate" in after:
        return f"podHealthGate(environment: '{environment}')" in stages[index].body
    following = stages[index + 1] if index + 1 < len(stages) else None
    return following is not None and f"podHealthGate(environment: '{environment}')" in following.body


def test_every_helm_stage_is_followed_by_a_gate():
    jf = Jenkinsfile(INFRA.read_text())
    stages = jf.leaf_stages()
    deploys = 0
    for i, stage in enumerate(stages):
        if "helmDeploy" in jf.calls(stage.body):
            deploys += 1
            environment = re.search(r"helmDeploy\(environment: '(\w+)'", stage.body).group(1)
            assert _gate_follows(jf, stages, i, environment), stage.name
        if "helmRollback" in jf.calls(stage.body):
            # the rollback step gates what it rolled back itself
            assert "verify: false" not in stage.body, stage.name
    assert deploys == 3
    assert re.search(r"if \(cfg\.verify\) \{\s*podHealthGate\(environment: cfg\.environment\)", code("helmRollback"))


def test_gate_order_check_catches_a_missing_gate():
    jf = Jenkinsfile("pipeline { stages { stage('Helm') { steps { helmDeploy(environment: 'ci') } } "
                     "stage('Other') { steps { sqlSetup(environment: 'ci') } } } }")
    assert not _gate_follows(jf, jf.leaf_stages(), 0, "ci")


# --- 4. a rollback returns every release the build upgraded ---------------------------------------

def test_rollback_covers_every_release_the_deploy_installs():
    text = code("helmRollback")
    rolled = re.findall(r"\[release: e\.(\w+), namespace: e\.(\w+), revision: cfg\.(\w+)\]", text)
    assert {(r, ns) for r, ns, _ in rolled} == installed_releases()
    # the services first, then the gateway they were written for
    assert [r for r, _, _ in rolled] == ["release", "gatewayRelease"]
    assert {rev for _, _, rev in rolled} == {"revision", "gatewayRevision"}
    # nothing to go back to (first install, or not upgraded by this build): left alone
    skip = text.index(".toInteger() <= 0) {")
    assert skip < text.index("return", skip) < text.index("helm rollback", skip)


def test_helm_deploy_records_each_release_before_upgrading_it():
    text = code("helmDeploy")
    assert text.index("gatewayPrevious = revisionOf(e.gatewayRelease") < text.index('helm upgrade --install "$GATEWAY_RELEASE"')
    assert text.index("previous = revisionOf(e.release") < text.index('helm upgrade --install "$RELEASE"')
    assert "return [release: previous as int, gateway: gatewayPrevious as int]" in text
    assert "return [release: -1, gateway: -1]" in text, "nothing upgraded: nothing to roll back"


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_rollback_stage_gets_both_revisions_of_its_deploy(environment):
    jf = Jenkinsfile(INFRA.read_text())
    prefix = environment.upper()
    deploy = jf.stage(f"{environment.capitalize()} Helm Deployment").body
    rollback = jf.stage(f"{environment.capitalize()} Rollback").body
    assert re.search(rf"Map previous = helmDeploy\(environment: '{environment}'", deploy)
    assert f"env.{prefix}_PREVIOUS_REVISION = previous.release as String" in deploy
    assert f"env.{prefix}_GATEWAY_PREVIOUS_REVISION = previous.gateway as String" in deploy
    # also after a failed upgrade or gate: what helmDeploy recorded in env before each upgrade
    after = deploy[deploy.index("} finally {"):]
    assert f"env.{prefix}_PREVIOUS_REVISION = env.HELM_PREVIOUS_REVISION" in after
    assert f"env.{prefix}_GATEWAY_PREVIOUS_REVISION = env.GATEWAY_PREVIOUS_REVISION" in after
    when = rollback[:rollback.index("steps")]
    assert f"env.{prefix}_PREVIOUS_REVISION" in when and f"env.{prefix}_GATEWAY_PREVIOUS_REVISION" in when
    assert re.search(rf"helmRollback\(environment: '{environment}', revision: env\.{prefix}_PREVIOUS_REVISION,\s*"
                     rf"gatewayRevision: env\.{prefix}_GATEWAY_PREVIOUS_REVISION\)", rollback)


# --- 5. private control-plane endpoints -----------------------------------------------------------

def jenkins_private_endpoints():
    text = code("fintechEnv")
    found = {}
    for env in ENVIRONMENTS:
        m = re.search(rf"\b{env}: \[[^\]]*privateEndpoint: (true|false)", text, re.S)
        assert m, f"fintechEnv: no privateEndpoint for {env}"
        found[env] = m.group(1) == "true"
    return found


def terraform_private_endpoint(env):
    main = (ROOT / f"deploy/terraform/envs/{env}/main.tf").read_text()
    gke = re.search(r"^  gke = \{(.*?)^  \}", main, re.S | re.M)
    assert gke, f"envs/{env}/main.tf: no gke block"
    m = re.search(r"^\s*private_endpoint\s*=\s*(true|false)\s*$", gke.group(1), re.M)
    return bool(m) and m.group(1) == "true"


def test_private_endpoints_are_reached_on_their_private_ip():
    jenkins = jenkins_private_endpoints()
    for env in ENVIRONMENTS:
        # a control plane without a public endpoint is only reachable with --internal-ip
        assert jenkins[env] or not terraform_private_endpoint(env), env
    module = (ROOT / "deploy/terraform/modules/environment/main.tf").read_text()
    assert "enable_private_endpoint    = var.gke.private_endpoint" in module
    variables = (ROOT / "deploy/terraform/modules/environment/variables.tf").read_text()
    assert "private_endpoint = optional(bool, false)" in variables


def test_cluster_credentials_follow_the_environment():
    text = code("clusterCredentials")
    assert "cfg.internalIp == null ? e.privateEndpoint as boolean : cfg.internalIp as boolean" in text
    assert "\"ENDPOINT_ARGS=${internalIp ? '--internal-ip' : ''}\"" in text


def _fake_tools(tmp_path):
    """gcloud, kubectl and gke-gcloud-auth-plugin that record their arguments."""
    log = tmp_path / "calls.log"
    for tool in ["gcloud", "kubectl", "gke-gcloud-auth-plugin"]:
        path = tmp_path / "bin" / tool
        path.parent.mkdir(exist_ok=True)
        path.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return log


@pytest.mark.parametrize("endpoint_args, internal", [("--internal-ip", True), ("", False)])
def test_cluster_credentials_script_passes_internal_ip(tmp_path, endpoint_args, internal):
    [script] = [s for s in single_quoted_scripts((VARS / "clusterCredentials.groovy").read_text())
                if "get-credentials" in s]
    log = _fake_tools(tmp_path)
    environ = dict(os.environ, PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin", KUBECONFIG=str(tmp_path / "kube/config"),
                   CLUSTER="fintech-stg-gke", REGION="europe-west1", PROJECT="fintech-staging",
                   NAMESPACE="fintech", ENDPOINT_ARGS=endpoint_args)
    subprocess.run(["sh", "-ec", script], env=environ, check=True, capture_output=True)
    calls = log.read_text().splitlines()
    get = [c for c in calls if c.startswith("gcloud container clusters get-credentials")]
    assert get == ["gcloud container clusters get-credentials fintech-stg-gke --region europe-west1 "
                   "--project fintech-staging" + (" --internal-ip" if internal else "")]
    assert "kubectl auth can-i list pods --namespace fintech" in calls
