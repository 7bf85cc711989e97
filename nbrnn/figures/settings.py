"""What one ``nbrnn figures`` run was asked for, passed to every figure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .parallel import Progress


@dataclasses.dataclass
class Settings:
    """Options of one run.

    Attributes
    ----------
    out : Path
        Folder the CSV and PNG files go to.
    shared : Path or None
        The shared data folder, or None when absent.
    models_dir : Path or None
        A folder of models replacing the default set of the sweep and the paper protocols.
    workers : int
        Local worker processes.
    scheduler : str or None
        Dask scheduler address; tasks run there instead of locally.
    progress : Progress
    quick : bool
        Short excerpts instead of the papers' full-length signals (a smoke run).
    """

    out: Path
    shared: Path | None = None
    models_dir: Path | None = None
    workers: int = 1
    scheduler: str | None = None
    progress: Progress = dataclasses.field(default_factory=Progress)
    quick: bool = False

    def run(self, func, params, label):
        """:func:`~nbrnn.figures.parallel.run_tasks` with this run's executor and progress."""
        from .parallel import run_tasks

        return run_tasks(func, params, workers=self.workers, scheduler=self.scheduler, label=label,
                         progress=self.progress)
