"""Assertions of scripts/check-images.sh on what `fintech release-plan` wrote.

  check_release_plan.py plan PLAN_JSON IMAGES_YAML DIGESTS_DIR CHANGED_SERVICE SERVICE...
      the plan names CHANGED_SERVICE changed and every other service unchanged; the images file
      pins each service to its pushed digest (the changed one to its newest build) and the proxy.
  check_release_plan.py rendered MANIFESTS_YAML IMAGES_YAML
      every container of every rendered workload uses an image pinned by a digest of the images
      file: the service's own for its container, the proxy's for the Cloud SQL Auth Proxy.

Exits non-zero with the reason on the first mismatch.
"""

import json
import pathlib
import sys

import yaml


def fail(message: str) -> None:
    sys.exit(f"FAIL: {message}")


def check_plan(plan_file: str, images_file: str, digests_dir: str, changed: str, services: list[str]) -> None:
    plan = json.loads(pathlib.Path(plan_file).read_text())
    images = yaml.safe_load(pathlib.Path(images_file).read_text())
    unchanged = [s for s in services if s != changed]
    if plan["changed"] != [changed]:
        fail(f"changed is {plan['changed']}, expected [{changed}]")
    if sorted(plan["unchanged"]) != sorted(unchanged):
        fail(f"unchanged is {plan['unchanged']}, expected {unchanged}")
    for service in services:
        pushed = (pathlib.Path(digests_dir) / f"{service}.digest").read_text().strip()
        pinned = images["services"][service]["image"]["digest"]
        if pinned != pushed:
            fail(f"{service}: images file pins {pinned}, pushed {pushed}")
        if plan["services"][service]["digest"] != pushed:
            fail(f"{service}: plan says {plan['services'][service]['digest']}, pushed {pushed}")
    tag = images["services"][changed]["image"]["tag"]
    if not tag.endswith("-2"):
        fail(f"{changed}: tag {tag} is not the newest build (2)")
    proxy = images.get("cloudSql", {}).get("proxy", {}).get("image", {}).get("digest")
    if not proxy or not proxy.startswith("sha256:"):
        fail(f"no proxy digest in the images file: {proxy!r}")
    print(f"changed {plan['changed']}, unchanged {plan['unchanged']}, every digest as pushed, proxy {proxy[:19]}")


def containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    if doc.get("kind") == "Job":
        pod = spec.get("template", {}).get("spec", {})
    elif doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        pod = spec.get("template", {}).get("spec", {})
    else:
        return []
    return pod.get("containers", []) + pod.get("initContainers", [])


def check_rendered(manifests_file: str, images_file: str) -> None:
    images = yaml.safe_load(pathlib.Path(images_file).read_text())
    digests = {name: entry["image"]["digest"] for name, entry in images["services"].items()}
    proxy = images["cloudSql"]["proxy"]["image"]["digest"]
    seen = 0
    for doc in yaml.safe_load_all(pathlib.Path(manifests_file).read_text()):
        if not doc:
            continue
        for container in containers(doc):
            image = container["image"]
            if "@sha256:" not in image:
                fail(f"{doc['kind']} {doc['metadata']['name']}: {container['name']} image {image} is not pinned by digest")
            # <registry>/<service>[:tag]@sha256:...: the repository's last segment names the service.
            service = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
            want = proxy if container["name"] == "cloud-sql-proxy" else digests.get(service)
            if want is None or not image.endswith("@" + want):
                fail(f"{doc['kind']} {doc['metadata']['name']}: {container['name']} runs {image}, expected @{want}")
            seen += 1
    deployments = sum(
        1 for doc in yaml.safe_load_all(pathlib.Path(manifests_file).read_text()) if doc and doc.get("kind") == "Deployment"
    )
    if deployments != len(digests):
        fail(f"{deployments} Deployments rendered for {len(digests)} services")
    print(f"{seen} containers in {deployments} Deployments and their Jobs, each pinned by the images file's digest")


if __name__ == "__main__":
    if len(sys.argv) >= 7 and sys.argv[1] == "plan":
        check_plan(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    elif len(sys.argv) == 4 and sys.argv[1] == "rendered":
        check_rendered(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
