#!/usr/bin/env python3
"""Every environment variable the services read must be configured wherever they are deployed.

Finds the variables in the Swift sources (Shared/ and Services/, not Tests/):
  value("X"), integer("X", …), secret("X"), environment["X"], getenv("X"), and the service URL variables
  ServiceName.urlVariable derives from the service names (AUTH_URL, …).
A variable read in Shared/ is read by every service; one read in Services/<Name>/ by that one.

Then checks that each variable is
  1. documented in deploy/.env.example (a `X=` line, commented out or not),
  2. in the environment of every compose service that reads it (compose's own resolved
     configuration, `docker-compose config --format json`, given with --compose-json),
  3. given to every Kubernetes Deployment that reads it: the container's `env`, or a key of a
     ConfigMap / Secret it takes through `envFrom` (all manifests in deploy/k8s/),
and that deploy/k8s/kustomization.yaml lists every manifest there, and only existing ones.
A test-only variable (TEST_ONLY: read for the test tooling, e.g. the fault campaign's
failpoint) is the exception: documented in deploy/.env.example, commented out, and absent
from compose and the Kubernetes manifests.

Prints what is missing where; exits 1 when anything is, 0 otherwise.

  python3 deploy/scripts/check_env.py --compose-json compose.json
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml  # PyYAML: installed with kubernetes-validate by check-deploy.sh

ROOT = Path(__file__).resolve().parents[2]
NAME = r"([A-Z][A-Z0-9_]*)"
# Read by the services for the test tooling only; must never reach a deployment.
TEST_ONLY = {"PROVISIONING_FAILPOINT"}
READ_PATTERNS = [
    re.compile(r'\b(?:value|integer|secret)\(\s*"' + NAME + r'"'),
    re.compile(r'\benvironment\[\s*"' + NAME + r'"\s*\]'),
    re.compile(r'\bgetenv\(\s*"' + NAME + r'"'),
]


def strip_comments(text: str) -> str:
    """Drops `//` line comments (doc comments name variables in prose) but keeps string literals."""
    lines = []
    for line in text.splitlines():
        lines.append("" if line.lstrip().startswith("//") else line)
    return "\n".join(lines)


def service_names() -> list[str]:
    """The services, from `enum ServiceName`'s cases (the single source of the list)."""
    text = (ROOT / "Shared/ServiceKit/ServiceConfiguration.swift").read_text()
    match = re.search(r"enum ServiceName\b[^{]*\{(.*?)\n\}", text, re.S)
    if not match:
        sys.exit("check_env: cannot find `enum ServiceName` in ServiceConfiguration.swift")
    cases = re.findall(r"^\s*case (\w+)\s*$", match.group(1), re.M)
    if not cases:
        sys.exit("check_env: `enum ServiceName` has no cases")
    return cases


def variables_read() -> dict[str, set[str]]:
    """Variable → the services that read it."""
    services = service_names()
    reads: dict[str, set[str]] = {}
    directories = {service: ROOT / "Services" / service.capitalize() for service in services}
    for service, directory in directories.items():
        if not directory.is_dir():
            sys.exit(f"check_env: no source folder {directory.relative_to(ROOT)} for service {service}")

    def record(path: Path, text: str) -> None:
        owners = set(services)
        for service, directory in directories.items():
            if directory in path.parents:
                owners = {service}
        for pattern in READ_PATTERNS:
            for name in pattern.findall(text):
                reads.setdefault(name, set()).update(owners)

    for folder in ("Shared", "Services"):
        for path in sorted((ROOT / folder).rglob("*.swift")):
            record(path, strip_comments(path.read_text()))

    # ServiceConfiguration reads `value(other.urlVariable)` for every service: the names are
    # computed, so derive them the same way, and stop if that derivation ever changes.
    configuration = (ROOT / "Shared/ServiceKit/ServiceConfiguration.swift").read_text()
    if "urlVariable" in strip_comments(configuration):
        if 'var urlVariable: String { rawValue.uppercased() + "_URL" }' not in configuration:
            sys.exit("check_env: ServiceName.urlVariable changed; update check_env.py to derive the URL variables")
        for service in services:
            reads.setdefault(service.upper() + "_URL", set()).update(services)
    return reads


def env_example_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*#?\s*" + NAME + "=", line)
        if match:
            keys.add(match.group(1))
    return keys


def compose_environments(path: Path) -> dict[str, set[str]]:
    config = json.loads(path.read_text())
    result = {}
    for name, service in (config.get("services") or {}).items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
        result[name] = set(environment)
    return result


def kubernetes_environments(directory: Path, problems: list[str]) -> dict[str, set[str]]:
    """Deployment name → every variable its containers get."""
    documents = []
    manifests = sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    for path in manifests:
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((path, document))

    kustomization = directory / "kustomization.yaml"
    if kustomization.exists():
        listed = set((yaml.safe_load(kustomization.read_text()) or {}).get("resources") or [])
        for path in manifests:
            if path.name not in listed:
                problems.append(f"k8s: {path.name} is not listed in kustomization.yaml resources")
        for name in sorted(listed):
            if not (directory / name).exists():
                problems.append(f"k8s: kustomization.yaml lists {name}, which does not exist")
    else:
        problems.append("k8s: kustomization.yaml is missing")

    config_maps: dict[str, set[str]] = {}
    secrets: dict[str, set[str]] = {}
    for _, document in documents:
        kind = document.get("kind")
        name = (document.get("metadata") or {}).get("name")
        if kind == "ConfigMap":
            config_maps[name] = set(document.get("data") or {}) | set(document.get("binaryData") or {})
        elif kind == "Secret":
            secrets[name] = set(document.get("data") or {}) | set(document.get("stringData") or {})

    result: dict[str, set[str]] = {}
    for path, document in documents:
        if document.get("kind") != "Deployment":
            continue
        name = document["metadata"]["name"]
        containers = document["spec"]["template"]["spec"].get("containers") or []
        variables: set[str] = set()
        for container in containers:
            for item in container.get("env") or []:
                variables.add(item["name"])
                reference = (item.get("valueFrom") or {})
                for kind, store in (("configMapKeyRef", config_maps), ("secretKeyRef", secrets)):
                    ref = reference.get(kind)
                    if ref and ref.get("key") not in store.get(ref.get("name"), set()):
                        problems.append(f"k8s: {path.name}: {item['name']} refers to missing {kind} {ref.get('name')}/{ref.get('key')}")
            for source in container.get("envFrom") or []:
                prefix = source.get("prefix", "")
                for kind, store in (("configMapRef", config_maps), ("secretRef", secrets)):
                    ref = source.get(kind)
                    if ref is None:
                        continue
                    if ref["name"] not in store:
                        problems.append(f"k8s: {path.name}: envFrom {kind} {ref['name']} is not defined in deploy/k8s")
                        continue
                    variables.update(prefix + key for key in store[ref["name"]])
        result[name] = variables
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compose-json", type=Path, required=True, help="output of `docker-compose config --format json`")
    parser.add_argument("--env-example", type=Path, default=ROOT / "deploy/.env.example")
    parser.add_argument("--k8s", type=Path, default=ROOT / "deploy/k8s")
    args = parser.parse_args()

    reads = variables_read()
    if not reads:
        print("check_env: found no environment reads in the Swift sources; the patterns are out of date", file=sys.stderr)
        return 1
    services = service_names()
    problems: list[str] = []

    documented = env_example_keys(args.env_example)
    compose = compose_environments(args.compose_json)
    kubernetes = kubernetes_environments(args.k8s, problems)

    for service in services:
        if service not in compose:
            problems.append(f"compose: no service named {service}")
        if service not in kubernetes:
            problems.append(f"k8s: no Deployment named {service}")

    for variable in sorted(reads):
        readers = sorted(reads[variable])
        if variable not in documented:
            problems.append(f".env.example: {variable} is not documented (read by {', '.join(readers)})")
        if variable in TEST_ONLY:
            for service in readers:
                if variable in compose.get(service, set()):
                    problems.append(f"compose: service {service} sets the test-only {variable}")
                if variable in kubernetes.get(service, set()):
                    problems.append(f"k8s: Deployment {service} gets the test-only {variable}")
            continue
        for service in readers:
            if service in compose and variable not in compose[service]:
                problems.append(f"compose: service {service} does not set {variable}")
            if service in kubernetes and variable not in kubernetes[service]:
                problems.append(f"k8s: Deployment {service} does not get {variable} (container env, ConfigMap or Secret)")

    print(f"environment variables read by the services: {len(reads)}")
    for variable in sorted(reads):
        readers = reads[variable]
        print(f"  {variable:32} {'every service' if readers == set(services) else ', '.join(sorted(readers))}")
    if problems:
        print(f"MISSING ({len(problems)}):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("every variable is in deploy/.env.example, compose.yaml and the Kubernetes manifests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
