"""`make bench` (python -m bench): run the main() of every bench/bench_*.py module in turn."""

import importlib
import pkgutil

import bench

for module in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
    if module.startswith("bench_"):
        print(f"== {module}", flush=True)
        importlib.import_module(f"bench.{module}").main()
