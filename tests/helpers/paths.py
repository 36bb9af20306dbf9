"""Paths the tests share: the repository and the real data beside it (``../shared``)."""

from __future__ import annotations

from pathlib import Path

#: the repository's root
ROOT = Path(__file__).resolve().parents[2]
#: the real BBBC021 metadata, where it is provided beside the repository (CI has it)
SHARED_BBBC021 = ROOT.parent / "shared" / "bbbc021"
