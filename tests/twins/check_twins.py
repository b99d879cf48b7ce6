#!/usr/bin/env python3
"""Each routine once (issue 36): every routine below is defined in exactly one place. A second
definition of one of them anywhere in the project's sources fails this test, naming the files.
Usage: check_twins.py SOURCE_DIR"""
import os
import re
import sys

root = sys.argv[1]
# name -> (the one file it lives in, a regex that matches a definition of it)
ROUTINES = {
    "error_of (test helper)": ("tests/common/errors.hpp", r"^\s*(inline\s+)?std::string\s+error_of\s*\("),
    "expect_error (test helper)": ("tests/common/errors.hpp", r"^\s*(inline\s+)?void\s+expect_error\s*\("),
    "fresh_dir (test helper)": ("tests/common/host_run.hpp", r"^\s*(inline\s+)?\S*path\s+fresh_dir\s*\("),
    "state-dict prefix stripping": ("plugins/src/checkpoint.cpp", r"\{\s*\"module\.\"\s*,\s*\"_orig_mod\.\"\s*\}"),
    "little/big-endian field reader": ("plugins/include/sinsr/sdk.hpp",
                                       r"v\s*=\s*\(v\s*<<\s*8\)\s*\||<<\s*24\)\s*\|"),
    "numpy-style linspace": ("plugins/src/sdk_sampler.cpp", r"\.back\(\)\s*=\s*stop|\[n - 1\]\s*=\s*1\.0"),
    "evenly spaced steps, both ends kept": ("plugins/src/sdk_sampler.cpp",
                                            r"llround\(double\(\w+\)\s*\*\s*double\(\w+\s*-\s*1\)\s*/\s*double\("),
    # ckpt::read_safetensors_header; the host's shape reader used to parse the header itself
    "safetensors header parsing": ("plugins/src/checkpoint_containers.cpp",
                                   r'"safetensors header",\s*bounds|config::parse\([^;]*safetensors header'),
    # made from ScheduleOptions' defaults beside from_json, as ddpm's; never a hand-typed literal
    "resshift config schema": ("samplers/resshift/schedule.cpp",
                               r'key\("schedule_name"|"schedule_name"\s*:\s*\{\s*"type"'),
}
SKIP = {"build", "build-fuzz", ".git", "runs", "out", "data", "python/build"}
sources = []
for base, dirs, files in os.walk(root):
    rel = os.path.relpath(base, root)
    dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel, d)) not in SKIP and not d.startswith(".")]
    for f in files:
        if f.endswith((".cpp", ".hpp", ".c", ".h")):
            sources.append(os.path.normpath(os.path.join(rel, f)))

failed = 0
for name, (home, pattern) in ROUTINES.items():
    rx = re.compile(pattern, re.M)
    found = sorted(f for f in sources if rx.search(open(os.path.join(root, f), encoding="utf-8", errors="replace").read()))
    if found != [home]:
        failed += 1
        print("twin: %s should be defined once, in %s; found in: %s" % (name, home, ", ".join(found) or "nowhere"))
    else:
        print("once: %s (%s)" % (name, home))
sys.exit(1 if failed else 0)
