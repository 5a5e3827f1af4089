"""A short, bounded run of the atheris harness (tests/fuzz/fuzz_wire.py) on the twin the
environment selects, seeded with the real strongSwan messages. Skipped without atheris."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

from tests.unit.wire_data import CAPTURES, datagrams

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("PYIKED_FUZZ_SECONDS", "4"))


def test_short_fuzz_run(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for capture in CAPTURES:
        for d in datagrams(capture):
            (corpus / f"{capture}-{d.index}").write_bytes(d.payload)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fuzz" / "fuzz_wire.py"), str(corpus),
         f"-max_total_time={SECONDS}", "-seed=7", "-rss_limit_mb=1024", "-max_len=2048"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=SECONDS + 60, check=False,
    )
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, tail
    assert "Done" in tail, tail
