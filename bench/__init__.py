"""The benches: each prints a table, comparing against psql or `--direct` in the same run."""
from __future__ import annotations

import argparse


def counts(text: str) -> list[int]:
    """An argparse type: a comma-separated list of positive integers ("1,4,8"); an empty text is an empty list."""
    values = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or int(item) < 1:
            raise argparse.ArgumentTypeError(f"{item!r} is not a positive integer (give a list such as 1,4,8)")
        values.append(int(item))
    return values
