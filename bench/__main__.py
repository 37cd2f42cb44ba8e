"""`python -m bench` (make bench): run every bench/bench_*.py module's main()."""

import importlib
import pkgutil

import bench

for module in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
    if module.startswith("bench_"):
        print(f"=== {module}")
        importlib.import_module(f"bench.{module}").main()
