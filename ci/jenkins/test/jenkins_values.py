"""jenkins-values.yaml as the Jenkins chart hands it to Jenkins: the strings the chart renders with
`tpl` (pod templates, the authorization matrix, the security realm, the JCasC scripts) rendered by
chart_tpl with the test pins standing in for the values the install must supply."""
import re
from pathlib import Path

import yaml

from chart_tpl import render, with_pins

JENKINS = Path(__file__).resolve().parent.parent
VALUES_FILE = JENKINS / "jenkins-values.yaml"

# Test pins for the values the install must supply (fintechAgentImages, fintechAccess): any
# well-formed ones.
PINS = {
    "fintechAgentImages.ops.tag": "0.1.0-42",
    "fintechAgentImages.agentRust.tag": "1.95.0-1",
    "fintechAgentImages.ops.digest": "sha256:" + "a" * 64,
    "fintechAgentImages.agentRust.digest": "sha256:" + "b" * 64,
    "fintechAccess.admins": ["jenkins-admin@fintech.example"],
    "fintechAccess.developers": ["dev.one@fintech.example", "dev.two@fintech.example"],
    "fintechAccess.releaseApprovers": ["ana.lima@fintech.example", "li.wei@fintech.example"],
}
# Tags that name whatever was pushed last, not a version.
MOVING_TAGS = {"latest", "stable", "edge", "nightly", "main", "master", "lts", "current", "rolling", "dev", "beta"}


def load_values():
    return yaml.safe_load(VALUES_FILE.read_text())


def render_values(text, values, pins=None):
    """A string of the values as the chart's `tpl` renders it; empty values take the test pins."""
    return render(text, with_pins(values, PINS if pins is None else pins))


def casc_scripts(values, pins=None):
    """The JCasC configScripts, rendered and merged (top-level keys)."""
    merged = {}
    for text in values["controller"]["JCasC"]["configScripts"].values():
        for key, part in yaml.safe_load(render_values(text, values, pins)).items():
            if isinstance(part, dict) and isinstance(merged.get(key), dict):
                merged[key].update(part)
            else:
                merged[key] = part
    return merged


def authorization(values, pins=None):
    """The rendered authorizationStrategy."""
    return yaml.safe_load(render_values(values["controller"]["JCasC"]["authorizationStrategy"], values, pins))


def security_realm(values, pins=None):
    return yaml.safe_load(render_values(values["controller"]["JCasC"]["securityRealm"], values, pins))


def pod_templates(values, pins=None):
    """label -> pod spec, rendered as the chart would (with the test pins)."""
    pods = {}
    for text in values["agent"]["podTemplates"].values():
        tpl = yaml.safe_load(render_values(text, values, pins))[0]
        pods[tpl["label"]] = yaml.safe_load(tpl["yaml"])["spec"]
    return pods


def image_problem(image):
    """Why an image reference is not pinned to one version, or None."""
    ref, _, digest = image.partition("@")
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        return f"{image}: malformed digest"
    name, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return None if digest else f"{image}: no tag and no digest"
    if tag.lower() in MOVING_TAGS or not re.match(r"v?\d", tag):
        return f"{image}: moving tag {tag!r}"
    return None
