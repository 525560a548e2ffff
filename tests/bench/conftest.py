"""The bench's modules import one another as siblings, as `python bench/run.py` runs them: put
bench/ on the path the same way."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
