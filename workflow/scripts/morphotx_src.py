"""Put the repository's ``src/`` first on ``sys.path``.

Snakemake adds this directory to ``sys.path`` when it runs a script, so ``import morphotx_src``
as a script's first line makes ``import morphotx`` work in the per-stage conda envs
(``envs/*.yaml`` install third-party packages only) exactly as in the project venv, and it
always imports this checkout's library, never another installed copy.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
