"""Jenkins itself is pinned: every plugin the Helm values install names an exact released version
(the chart's controller.installPlugins / additionalPlugins take `name:version`), the controller
image is an exact LTS tag, and the chart version is fixed in jenkins-chart.version and used by the
documented install command. `latest`, `experimental`, incrementals and URLs are refused: they
install whatever the update center offers that day."""
import re
from pathlib import Path

import pytest
import yaml

JENKINS = Path(__file__).resolve().parent.parent
VALUES_FILE = JENKINS / "jenkins-values.yaml"
CHART_VERSION_FILE = JENKINS / "jenkins-chart.version"

# A plugin id, a colon, and a release version as the update center names them: "1.30", "5.10.1",
# "937.3.10", "4557.ve746270f672f", "2.2293.v6e7193cec599". At least one digit, no range or
# placeholder, nothing but the characters Maven versions of Jenkins plugins use.
PINNED = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<version>[0-9][A-Za-z0-9_.+-]*)")
MOVING = re.compile(r"latest|experimental|incrementals|snapshot|https?:", re.IGNORECASE)


def unpinned(entries):
    """The entries of a plugin list that do not name one exact release, with the reason."""
    problems = []
    for entry in entries:
        text = str(entry).strip()
        match = PINNED.fullmatch(text)
        if MOVING.search(text):
            problems.append(f"{text}: moving version")
        elif not match:
            problems.append(f"{text}: not name:version")
    return problems


def duplicates(entries):
    names = [str(e).split(":", 1)[0] for e in entries]
    return sorted({n for n in names if names.count(n) > 1})


@pytest.fixture(scope="module")
def controller():
    return yaml.safe_load(VALUES_FILE.read_text())["controller"]


def plugin_lists(controller):
    lists = {"installPlugins": controller.get("installPlugins")}
    if controller.get("additionalPlugins"):
        lists["additionalPlugins"] = controller["additionalPlugins"]
    return lists


def test_plugins_are_listed(controller):
    plugins = controller.get("installPlugins")
    # `false` would skip the installation and leave the image's (unpinned) plugins in charge.
    assert isinstance(plugins, list) and len(plugins) >= 10, plugins


def test_every_plugin_is_pinned_to_an_exact_version(controller):
    for key, entries in plugin_lists(controller).items():
        assert isinstance(entries, list), key
        assert unpinned(entries) == [], key


def test_no_plugin_is_listed_twice(controller):
    everything = [e for entries in plugin_lists(controller).values() for e in entries]
    assert duplicates(everything) == []


def test_dependencies_are_not_floated_to_latest(controller):
    # True would install every dependency, and every plugin named without a version, at the
    # newest release of the day: two installs a week apart would differ.
    assert controller.get("installLatestPlugins") is False
    assert controller.get("installLatestSpecifiedPlugins", False) is False


def test_the_plugins_the_pipelines_and_casc_need_are_installed(controller):
    names = {str(e).split(":", 1)[0] for e in controller["installPlugins"]}
    needed = {
        "kubernetes", "workflow-aggregator", "pipeline-model-definition", "git",
        "cloudbees-bitbucket-branch-source", "job-dsl", "configuration-as-code",
        "credentials-binding", "sonar", "mailer", "timestamper", "ws-cleanup", "junit",
        "matrix-auth", "oic-auth", "pipeline-utility-steps",
    }
    assert needed - names == set()


def test_controller_image_is_an_exact_lts_tag(controller):
    image = controller["image"]
    assert image.get("repository", "jenkins/jenkins") == "jenkins/jenkins"
    assert image.get("registry", "docker.io") == "docker.io"
    tag = str(image["tag"])
    assert re.fullmatch(r"2\.\d+\.\d+(-lts)?-jdk\d+", tag), tag
    assert "pullPolicy" not in image or image["pullPolicy"] in ("IfNotPresent", "Always")


def test_chart_version_is_pinned_and_used_by_the_install_command():
    version = CHART_VERSION_FILE.read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    command = re.compile(r'helm upgrade --install jenkins jenkins/jenkins --version "\$\(cat ci/jenkins/jenkins-chart\.version\)"')
    assert command.search(VALUES_FILE.read_text())
    assert command.search((JENKINS / "README.md").read_text())


# --- the rules themselves, on bad samples ---------------------------------------------------

def test_unpinned_catches_moving_and_missing_versions():
    bad = ["git:latest", "git", "kubernetes:", "sonar:experimental", "job-dsl:LATEST",
           "x:incrementals;org.jenkins-ci.plugins;1.2-rc3.abc", "y:https://example.com/y.hpi",
           "z:>=1.0", "w:1.0 ", " ", "v:1.0:extra"]
    flagged = unpinned(bad)
    assert len(flagged) == len(bad) - 1  # "w:1.0 " is stripped and valid
    assert unpinned(["timestamper:1.30", "kubernetes:4557.ve746270f672f",
                     "pipeline-model-definition:2.2293.v6e7193cec599",
                     "cloudbees-bitbucket-branch-source:937.3.10"]) == []


def test_duplicates_are_found():
    assert duplicates(["git:5.10.1", "junit:1.0", "git:5.10.0"]) == ["git"]
