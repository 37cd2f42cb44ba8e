"""`python -m bench` (make bench): run every bench/bench_*.py module's main(), each in its own
process, so one benchmark's settings and scratch database never leak into the next.
`python -m bench tick import` runs only the modules whose names contain those words."""

import pkgutil
import subprocess
import sys

import bench

wanted = sys.argv[1:]
failed = []
for module in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
    if module.startswith("bench_") and (not wanted or any(w in module for w in wanted)):
        print(f"=== {module}", flush=True)
        code = f"import bench.{module} as m; m.main()"
        if subprocess.run([sys.executable, "-c", code]).returncode:
            failed.append(module)
if failed:
    sys.exit(f"failed: {', '.join(failed)}")
