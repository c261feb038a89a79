"""The multiprocess folder: what a process that died without a clean exit left behind is
dropped when another process starts; what a live process writes is kept."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hal.metrics import forget_dead_processes, prepare_multiprocess_dir


def test_live_gauges_of_dead_processes_are_forgotten(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead, alive = int(ended.stdout), os.getpid()
    for pid in (dead, alive):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    forget_dead_processes(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead}.db", f"counter_{alive}.db", f"gauge_livesum_{alive}.db"]
    )


def test_hal_serve_removes_the_folder_of_a_server_that_was_killed(tmp_path, monkeypatch):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # Unset for the call (empty reads as unset) and restored after the test, whatever the
    # call sets: a folder left in this process's environment would reach every later test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    stale = tmp_path / f"hal-metrics-{int(ended.stdout)}-abc"
    running = tmp_path / f"hal-metrics-{os.getppid()}-def"
    for folder in (stale, running):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"")
    made = prepare_multiprocess_dir()
    assert not stale.exists() and running.exists()
    assert Path(made).parent == tmp_path and Path(made).name.startswith(
        f"hal-metrics-{os.getpid()}-"
    )
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == made
