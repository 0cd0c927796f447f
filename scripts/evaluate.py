#!/usr/bin/env python
"""Evaluate retrieval on a dataset: the same code as `qa eval` (run `evaluate.py --help`).

    python scripts/evaluate.py ../shared/datasets/scifact --retriever dense --retriever bm25 \
        --out reports/scifact.json --markdown reports/scifact.md
"""

import sys
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent)
)  # run from a checkout without installing

from qa.cli.eval import main

if __name__ == "__main__":
    main()
