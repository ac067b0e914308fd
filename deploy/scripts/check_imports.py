#!/usr/bin/env python3
"""Every module a Swift target imports is one it declares in Package.swift.

Reads the package as SwiftPM sees it (`swift package dump-package`), then every `import X` in
each target's sources, and names each import that arrives only through a transitive
dependency. The toolchain's own modules (Foundation, Glibc, Synchronization, Testing, …) need
no declaration. Exit 1 when anything is undeclared.

    python3 deploy/scripts/check_imports.py
"""
import json
import os
import re
import subprocess
import sys

TOOLCHAIN = {
    "Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Musl", "Darwin",
    "Dispatch", "Synchronization", "Testing", "XCTest", "_Concurrency", "Observation",
}
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:public\s+|package\s+|internal\s+)?import\s+(?:(?:struct|class|enum|protocol|func|var|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.M)


def declared(target):
    names = set()
    for dependency in target.get("dependencies", []):
        for kind in ("byName", "product", "target"):
            if kind in dependency:
                names.add(dependency[kind][0])
    return names


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    package = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                        capture_output=True, text=True).stdout)
    problems = []
    for target in package["targets"]:
        if target["type"] in ("system", "binary", "plugin"):
            continue
        path = os.path.join(root, target.get("path") or os.path.join("Sources", target["name"]))
        excluded = [os.path.join(path, e) for e in target.get("exclude", [])]
        allowed = declared(target) | TOOLCHAIN | {target["name"]}
        for directory, _, files in os.walk(path):
            if any(directory == e or directory.startswith(e + os.sep) for e in excluded):
                continue
            for name in files:
                if not name.endswith(".swift"):
                    continue
                file = os.path.join(directory, name)
                with open(file, encoding="utf-8") as source:
                    for module in IMPORT.findall(source.read()):
                        if module not in allowed:
                            problems.append(f"{os.path.relpath(file, root)}: imports {module}, which target {target['name']} does not declare")
    for problem in problems:
        print(problem)
    if problems:
        print(f"imports: {len(problems)} undeclared", file=sys.stderr)
        return 1
    print("imports: every imported module is declared by its target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
