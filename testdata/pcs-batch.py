# Runs pcs command lines, one a line on stdin, as the shell would run them
# (split with shlex), through pcs's own entry point (pcs.app.main) in one
# Python process: pcs's start-up (1-3 s on a loaded 2-core machine) is paid
# once instead of once a command. Writes a JSON array with, for each line,
# its exit status and what it printed (stdout and stderr together). Used by
# clients_test.go; run as /usr/sbin/pcs runs itself (/usr/bin/python3 -Es).
#
# pcs expects one command a process: it keeps the CIB file (-f) and a report
# processor that remembers errors in module globals and functools caches.
# Before each command those are put back as a fresh process has them.
import contextlib
import io
import json
import shlex
import sys

import pcs.app
from pcs import utils
from pcs.cli.common import lib_wrapper

fresh = {m: (vars(m).get("usefile"), vars(m).get("filename")) for m in (pcs.app, utils)}


def as_new_process():
    lib_wrapper._CACHE.clear()
    for m, (usefile, filename) in fresh.items():
        m.usefile, m.filename = usefile, filename
    for name, m in list(sys.modules.items()):
        if name != "pcs" and not name.startswith("pcs."):
            continue
        for v in list(vars(m).values()):
            if callable(getattr(v, "cache_clear", None)):
                v.cache_clear()


results = []
for line in sys.stdin.read().splitlines():
    if not line.strip():
        continue
    argv = shlex.split(line)
    if argv[:1] != ["pcs"]:
        sys.exit(f"pcs-batch: not a pcs command: {line}")
    as_new_process()
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            pcs.app.main(argv[1:])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    results.append({"line": line, "code": code, "output": out.getvalue()})
json.dump(results, sys.stdout)
