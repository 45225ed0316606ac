"""The tooling images pipeline (Jenkinsfile.tooling-images, job fintech-tooling-images): it builds and
pushes our two agent images, ops and agent-rust, tagged <version>-<build number>, and archives the
fintechAgentImages lines for jenkins-values.yaml. Checked: its stages and the steps they call, the
job in Configuration as Code, the image specs, the tags the step computes (its shell run here), and
that it is the only pipeline building those images (one tag sequence per image)."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from groovy_blocks import Jenkinsfile, in_post_always, single_quoted_scripts, strip_comments_and_strings
from jenkins_values import casc_scripts, image_problem, load_values, pod_templates

JENKINS = Path(__file__).resolve().parent.parent
ROOT = JENKINS.parent.parent
VARS = JENKINS / "vars"
TOOLING = JENKINS / "Jenkinsfile.tooling-images"
STAGES = ["Initialize Workspace & Image Tags", "Build", "Image Build", "Image Push", "Agent Image Pins", "Final Stage"]
STEPS = {
    "Initialize Workspace & Image Tags": ["initToolingWorkspace"],
    "Build": ["cargoBuild"],
    "Image Build": ["imageBuild"],
    "Image Push": ["imagePush"],
    "Agent Image Pins": ["agentImagePins"],
    "Final Stage": ["notifyResult"],
}
TAG = re.compile(r"\d+\.\d+\.\d+-\d+")


@pytest.fixture(scope="module")
def tooling():
    return Jenkinsfile(TOOLING.read_text())


def code(step):
    return strip_comments_and_strings((VARS / f"{step}.groovy").read_text())


def test_stages_in_order(tooling):
    assert [s.name for s in tooling.leaf_stages()] == STAGES
    assert in_post_always(tooling.stage("Final Stage"))


@pytest.mark.parametrize("stage_name", STAGES)
def test_stage_calls_its_step(tooling, stage_name):
    calls = tooling.calls(tooling.stage(stage_name).body)
    assert set(STEPS[stage_name]) <= set(calls), calls


def test_builds_both_agent_images_and_no_service(tooling):
    body = tooling.stage("Image Build").body
    assert "imageBuild(services: [], agentImages: ['ops', 'agent-rust'])" in body
    specs = {name: (containerfile, context) for name, containerfile, context in re.findall(
        r"'([\w-]+)': \[containerfile: '([^']+)', context: '([^']+)'", code("imageBuild"))}
    for containerfile, _ in specs.values():
        assert (ROOT / containerfile).is_file(), containerfile
    # ops copies the fintech binary from the repository; agent-rust needs only its own folder
    assert specs == {"ops": ("ci/jenkins/images/Containerfile.ops", "."),
                     "agent-rust": ("ci/jenkins/images/Containerfile.agent-rust", "ci/jenkins/images")}


def test_the_job_is_registered(values):
    jobs = "\n".join(j["script"] for j in casc_scripts(values)["jobs"])
    job = jobs[jobs.index("pipelineJob('fintech-tooling-images')"):]
    job = job[:job.index("\n}") if "\n}" in job else len(job)]
    assert "scriptPath('ci/jenkins/Jenkinsfile.tooling-images')" in job
    assert "branch('*/master')" in job, "images are pushed from master only"
    assert "url('https://bitbucket.org/fintech/fintech.git')" in job and "credentials('bitbucket-app')" in job
    # every job's Jenkinsfile exists
    for path in re.findall(r"scriptPath\('([^']+)'\)", jobs):
        assert (ROOT / path).is_file(), path
    assert len(re.findall(r"scriptPath\('", jobs)) == 3


@pytest.fixture(scope="module")
def values():
    return load_values()


def test_it_runs_on_the_pod_with_buildah_rust_and_ops(values, tooling):
    assert "inheritFrom 'fintech-rust'" in tooling.text
    containers = {c["name"] for c in pod_templates(values)["fintech-rust"]["containers"]}
    for step in ["initToolingWorkspace", "cargoBuild", "imageBuild", "imagePush", "agentImagePins", "notifyResult"]:
        used = set(re.findall(r"[cC]ontainer: '([\w-]+)'", (VARS / f"{step}.groovy").read_text()))
        assert used <= containers, f"{step}: {used - containers}"


def _tags_script_outputs():
    """Run initToolingWorkspace's two shell scripts against the repository's files."""
    scripts = [s for s in single_quoted_scripts((VARS / "initToolingWorkspace.groovy").read_text()) if "sed" in s]
    assert len(scripts) == 2
    environ = dict(os.environ, OPS_MANIFEST="fintech/Cargo.toml",
                   AGENT_RUST_CONTAINERFILE="ci/jenkins/images/Containerfile.agent-rust")
    return [subprocess.run(["sh", "-ec", s], cwd=ROOT, env=environ, capture_output=True, text=True,
                           check=True).stdout.strip() for s in scripts]


def test_tags_are_version_and_build_number():
    ops_version, rust_version = _tags_script_outputs()
    manifest = (ROOT / "fintech/Cargo.toml").read_text()
    assert ops_version == re.search(r'^\[package\][^\[]*?^version = "([^"]+)"', manifest, re.M | re.S).group(1)
    containerfile = (JENKINS / "images/Containerfile.agent-rust").read_text()
    assert rust_version == re.search(r"^FROM rust:(\d+\.\d+\.\d+)-", containerfile, re.M).group(1)
    text = code("initToolingWorkspace")
    assert 'env.ARTIFACT_OPS = "${opsVersion}-${env.BUILD_NUMBER}"' in text
    assert 'env.ARTIFACT_AGENT_RUST = "${rustVersion}-${env.BUILD_NUMBER}"' in text
    registry = load_values()["fintechAgentImages"]["registry"]
    for name, version in [("ops", ops_version), ("agent-rust", rust_version)]:
        tag = f"{version}-7"
        assert TAG.fullmatch(tag) and image_problem(f"{registry}/{name}:{tag}") is None


def test_pins_step_writes_the_values_keys(values):
    text = code("agentImagePins")
    keys = dict(re.findall(r"'([\w-]+)': '(\w+)'", text[text.index("keys:"):text.index("file:")]))
    own = values["fintechAgentImages"]
    assert set(keys.values()) == set(own) - {"registry"}
    assert f"registry: '{own['registry']}'" in text
    assert f"registry: '{own['registry']}'" in code("imageBuild")
    # the image names are the repositories the pod templates pull
    for name in keys:
        assert f"{own['registry']}/{name}:" in (JENKINS / "jenkins-values.yaml").read_text().replace(
            "{{ .Values.fintechAgentImages.registry }}", own["registry"]), name


def test_only_this_pipeline_builds_the_agent_images():
    # the service pipeline builds services only: two builders would push the same
    # <version>-<build number> tags from two build-number sequences
    assert "agentImages: []," in code("imageBuild")
    assert "agentImages" not in (JENKINS / "Jenkinsfile.service").read_text()
    assert "agentImages" not in (JENKINS / "Jenkinsfile.infrastructure").read_text()
    assert "ARTIFACT_OPS" not in code("initWorkspace")
    # the images built by hand before the job existed are -0: the job's numbers start at 1
    readme = (JENKINS / "README.md").read_text()
    assert re.search(r"/ops:\d+\.\d+\.\d+-0\b", readme) and re.search(r"/agent-rust:\d+\.\d+\.\d+-0\b", readme)


def test_pushes_only_from_master():
    init = code("initToolingWorkspace")
    # a single-branch job has no BRANCH_NAME: the branch it checked out, never a default
    assert re.search(r"if \(!env\.BRANCH_NAME\) \{\s*env\.BRANCH_NAME = \(scmVars\.GIT_BRANCH \?: ''\)", init)
    assert re.search(r"if \(env\.BRANCH_NAME != cfg\.branch\)", code("imagePush"))
