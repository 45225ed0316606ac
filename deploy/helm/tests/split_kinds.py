"""Splits a rendered manifest: built-in kinds to one file (for kubernetes-validate), custom
resources to another (checked structurally by the tests). Any other kind is an error.

Usage: python3 split_kinds.py RENDERED.yaml BUILTIN.yaml CUSTOM.yaml
"""

import sys

import yaml

from render import split_kinds

if __name__ == "__main__":
    source, builtin_path, custom_path = sys.argv[1:4]
    with open(source) as f:
        docs = [doc for doc in yaml.safe_load_all(f) if doc]
    try:
        builtin, custom = split_kinds(docs)
    except ValueError as error:
        sys.exit(f"split_kinds: {error}")
    if not builtin:
        sys.exit("split_kinds: no built-in object rendered")
    with open(builtin_path, "w") as f:
        yaml.safe_dump_all(builtin, f, sort_keys=False)
    with open(custom_path, "w") as f:
        yaml.safe_dump_all(custom, f, sort_keys=False)
    print(f"{len(builtin)} built-in objects, {len(custom)} custom resources")
