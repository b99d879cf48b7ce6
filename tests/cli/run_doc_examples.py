#!/usr/bin/env python3
"""Runs every example line of docs/cli.md (the `build/bin/sinsr-host ...` lines of its ```sh
blocks), in order, from the repository root, with `out/` moved to a temporary folder. A line
passes when it exits 0, or, when it names a file the repository does not hold (the official
SinSR_v1.pth, a placeholder such as IN), when it exits 1 with an error naming one of them.

usage: run_doc_examples.py SOURCE_DIR HOST_EXE
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile


def example_lines(markdown):
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.S):
        joined = block.replace("\\\n", " ")
        lines += [l.strip() for l in joined.splitlines() if l.strip().startswith("build/bin/sinsr-host")]
    return lines


def missing_files(args, tmp):
    """Arguments that name a file or folder absent here (placeholders like IN included)."""
    out = []
    for a in args:
        if a.startswith("-") or a.startswith(tmp):
            continue
        looks_like_path = "/" in a or re.search(r"\.[A-Za-z0-9]+$", a) or re.fullmatch(r"[A-Z][A-Z_]*", a)
        if looks_like_path and not os.path.exists(a) and not re.fullmatch(r"[0-9.]+", a):
            out.append(a)
    return out


def main():
    source, host = sys.argv[1], os.path.abspath(sys.argv[2])
    os.chdir(source)
    lines = example_lines(open("docs/cli.md", encoding="utf-8").read())
    if len(lines) < 10:
        print(f"docs/cli.md: only {len(lines)} example lines found; the parser or the page changed")
        return 1
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sinsr_doc_examples_") as tmp:
        for line in lines:
            args = shlex.split(line, comments=True)
            args = [host] + [tmp + a[3:] if a.startswith("out/") else a for a in args[1:]]
            for a in args:  # outputs named as files need their folder
                if a.startswith(tmp):
                    os.makedirs(os.path.dirname(a), exist_ok=True)
            missing = missing_files(args[1:], tmp)
            run = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
            text = run.stdout.strip()
            if missing:
                named = any(m in text for m in missing)
                ok = run.returncode == 1 and named
                why = f"needs {missing}: expected exit 1 naming one of them, got {run.returncode}"
            else:
                ok = run.returncode == 0
                why = f"exit {run.returncode}"
            print(("ok   " if ok else "FAIL ") + line)
            if not ok:
                failures += 1
                print(f"     {why}\n     " + "\n     ".join(text.splitlines()[-8:]))
    print(f"{len(lines) - failures} of {len(lines)} example lines of docs/cli.md behave as documented")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
