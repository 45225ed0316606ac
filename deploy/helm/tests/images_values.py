"""Writes an images values file for the tests: a digest for every service and for the proxy.

In the pipeline the release plan writes this file from the digests it pushed. Here the digests
are stand-ins (the SHA-256 of a fixed string per image), well-formed so the chart renders, and
derived from values.yaml so that adding a service needs no change to the tests.

Usage: python3 deploy/helm/tests/images_values.py > images.yaml
"""

import hashlib
import pathlib
import sys

import yaml

CHART = pathlib.Path(__file__).resolve().parent.parent / "fintech"


def fake_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(f"test-image:{name}".encode()).hexdigest()


def images_values() -> dict:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return {
        "services": {name: {"image": {"digest": fake_digest(name)}} for name in values["services"]},
        "cloudSql": {"proxy": {"image": {"digest": fake_digest("cloud-sql-proxy")}}},
    }


if __name__ == "__main__":
    yaml.safe_dump(images_values(), sys.stdout, sort_keys=True)
