"""Renders the fintech chart with the real helm binary, for the tests and scripts/check-helm.sh.

HELM (environment) names the helm binary; scripts/check-helm.sh points it at the pinned one.
"""

import os
import pathlib
import subprocess
import tempfile

import yaml

from images_values import images_values

HELM_DIR = pathlib.Path(__file__).resolve().parent.parent
CHART = HELM_DIR / "fintech"
ENVIRONMENTS = ("ci", "staging", "production")
KUBE_VERSION = "1.33.0"
RELEASE = "fintech"
NAMESPACE = "fintech"

# API groups whose kinds are built into Kubernetes: kubernetes-validate checks these against the
# Kubernetes 1.33 schemas. Everything else must be one of CUSTOM_KINDS, which the tests check.
BUILTIN_GROUPS = {"v1", "apps/v1", "batch/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1"}
CUSTOM_KINDS = {
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.nginx.org/v1alpha1", "ClientSettingsPolicy"),
    ("monitoring.googleapis.com/v1", "PodMonitoring"),
    ("external-secrets.io/v1", "SecretStore"),
    ("external-secrets.io/v1", "ExternalSecret"),
}


def helm() -> str:
    return os.environ.get("HELM", "helm")


def values_file(env: str) -> pathlib.Path:
    return CHART / f"values-{env}.yaml"


def template(env: str, *extra_args: str, images: bool = True) -> subprocess.CompletedProcess:
    """`helm template` of one environment; returns the completed process (never raises)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [helm(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                "--kube-version", KUBE_VERSION, "-f", str(values_file(env))]
        if images:
            images_file = pathlib.Path(tmp) / "images.yaml"
            images_file.write_text(yaml.safe_dump(images_values()))
            args += ["-f", str(images_file)]
        args += list(extra_args)
        return subprocess.run(args, capture_output=True, text=True, timeout=120)


def render(env: str, *extra_args: str) -> list[dict]:
    """The objects of one environment's manifest; fails the caller on a render error."""
    result = template(env, *extra_args)
    if result.returncode != 0:
        raise AssertionError(f"helm template ({env}) failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def split_kinds(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(built-in objects, custom resources); an object of any other kind is an error."""
    builtin, custom = [], []
    for doc in docs:
        api, kind = doc.get("apiVersion"), doc.get("kind")
        if api in BUILTIN_GROUPS:
            builtin.append(doc)
        elif (api, kind) in CUSTOM_KINDS:
            custom.append(doc)
        else:
            raise ValueError(f"{kind} {api} is neither a built-in kind nor a known custom resource")
    return builtin, custom
