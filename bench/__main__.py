"""`python -m bench` (make bench): run every bench/bench_*.py module's main()."""

import importlib
import pkgutil
from pathlib import Path

for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
    if module.name.startswith("bench_"):
        print(f"== {module.name}")
        importlib.import_module(f"bench.{module.name}").main()
