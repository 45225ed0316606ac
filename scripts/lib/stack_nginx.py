"""The local distributed stack's nginx configuration, generated from the Helm chart's route table.

Every service of deploy/helm/fintech/values.yaml with a `route` ({pathPrefix, maxBodyBytes,
timeoutSeconds}) becomes one `location` sending `<pathPrefix>/` to that service's process, with
the same body limit and deadline the gateway applies in the cluster. Services without a route
(internal ones) are not reachable through nginx, as in the cluster.

    python stack_nginx.py VALUES PORTS_JSON LISTEN_PORT STATE_DIR [--user USER] > nginx.conf

PORTS_JSON maps each service to the 127.0.0.1 port its `fintech serve` listens on.
"""

import json
import sys

import yaml


def routes(values_path):
    """(service, route) for every public service of the chart, in the chart's order."""
    with open(values_path, encoding="utf-8") as f:
        values = yaml.safe_load(f)
    out = []
    for name, spec in (values.get("services") or {}).items():
        route = (spec or {}).get("route")
        if route:
            out.append((name, route))
    return out


def config(values_path, ports, listen, state, user=None):
    lines = []
    if user:
        lines.append(f"user {user};")
    lines += [
        "worker_processes 1;",
        "daemon off;",
        f"pid {state}/nginx.pid;",
        f"error_log {state}/error.log warn;",
        "events { worker_connections 256; }",
        "http {",
        f"  access_log {state}/access.log;",
        f"  client_body_temp_path {state}/client_body;",
        f"  proxy_temp_path {state}/proxy;",
        f"  fastcgi_temp_path {state}/fastcgi;",
        f"  uwsgi_temp_path {state}/uwsgi;",
        f"  scgi_temp_path {state}/scgi;",
        "  server_tokens off;",
        "  server {",
        f"    listen 127.0.0.1:{listen};",
        "    # nginx itself (the stack's own readiness check).",
        "    location = /nginx-health { return 200 'ok\\n'; }",
    ]
    missing = []
    for name, route in routes(values_path):
        if name not in ports:
            missing.append(name)
            continue
        prefix = route["pathPrefix"].rstrip("/")
        timeout = int(route["timeoutSeconds"])
        lines += [
            f"    # {name}: {route['maxBodyBytes']} bytes, {timeout} s (deploy/helm/fintech/values.yaml)",
            f"    location {prefix}/ {{",
            f"      client_max_body_size {int(route['maxBodyBytes'])};",
            f"      proxy_pass http://127.0.0.1:{int(ports[name])};",
            f"      proxy_read_timeout {timeout}s;",
            f"      proxy_send_timeout {timeout}s;",
            "      proxy_set_header Host $host;",
            "      proxy_set_header X-Forwarded-For $remote_addr;",
            "      proxy_set_header X-Forwarded-Proto $scheme;",
            "    }",
        ]
    if missing:
        raise SystemExit(f"stack_nginx: the chart routes {', '.join(missing)}, which the stack does not run")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def main(argv):
    user = None
    if "--user" in argv:
        i = argv.index("--user")
        user = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    if len(argv) != 5:
        raise SystemExit(__doc__)
    _, values_path, ports_json, listen, state = argv
    with open(ports_json, encoding="utf-8") as f:
        ports = json.load(f)
    sys.stdout.write(config(values_path, ports, int(listen), state, user))


if __name__ == "__main__":
    main(sys.argv)
