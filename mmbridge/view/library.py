"""The runs under a root, as the viewer's pages need them: cards for the list, loaded runs and their
sample indexes (kept while their files are unchanged, a few at a time)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..eval.rows import ROWS_FILE
from ..eval.rundir import INPUTS_FILE
from ..eval.summary import MAIN_METRIC
from ..eval.summary_model import Summary, read_summary
from .browse import Entry, index_samples
from .folders import SUMMARY_FILE, Files, find_runs, is_being_written, read_json, stamp_of
from .runs import Run, count_rows, load_run

__all__ = ["Library"]

#: loaded runs kept in memory (a run of 100,000 rows takes about 100 MB)
KEPT = 6
#: a run being written is read again only after this many times as long as its last reading took
HOLD = 5


def _headline(summary: Summary) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, provider in summary.providers.items():
        tasks = {}
        for task, entry in provider.tasks.items():
            metric = entry.metrics.get(MAIN_METRIC[task])
            tasks[task] = {
                "metric": MAIN_METRIC[task],
                "value": metric.value if metric else None,
                "ci95": list(metric.ci95) if metric else [None, None],
                "status": "unsupported" if entry.unsupported else None,
            }
        out[name] = {
            "tasks": tasks,
            "errors": sum(t.errors for t in provider.tasks.values()),
            "cost_usd": provider.cost_usd,
        }
    return out


def _card(key: str, files: Files) -> dict[str, Any]:
    identity, problem = read_json(files.run)
    identity = identity or {}
    summary = None
    if files.summary.exists():
        try:
            summary = read_summary(files.summary)
        except RunError:
            problem = problem or f"{SUMMARY_FILE} cannot be read"
    providers = list(identity.get("providers") or (summary.providers if summary else []))
    samples = (identity.get("samples") or {}).get("count") or (summary.samples if summary else 0)
    running = is_being_written(files.folder)
    return {
        "key": key,
        "dataset": identity.get("dataset") or (summary.dataset if summary else "?"),
        "providers": providers,
        "tasks": summary.tasks() if summary else identity.get("tasks") or [],
        "samples": samples,
        "rows": count_rows(files),
        "expected_rows": samples * len(providers),
        "running": running,
        # a summary older than the rows: the run went on (or was resumed) after it was written
        "stale": summary is not None and files.changed_ns(SUMMARY_FILE) < files.changed_ns(ROWS_FILE),
        "modified": files.modified,
        "headline": _headline(summary) if summary else {},
        "problem": problem,
    }


class Library:
    """The run folders under ``root``, read on demand and never written."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._folders: dict[str, Files] = {}
        self._cards: dict[str, tuple[Files, dict[str, Any]]] = {}
        #: key -> (run, its index, when it was loaded, seconds it took)
        self._runs: OrderedDict[str, tuple[Run, list[Entry], float, float]] = OrderedDict()

    def cards(self) -> list[dict[str, Any]]:
        """Every run, the most recently changed first."""
        folders = find_runs(self.root)
        cards = []
        with self._lock:
            self._folders = folders
            for key, files in folders.items():
                kept = self._cards.get(key)
                if kept is None or kept[0] != files or kept[1]["running"]:
                    kept = (files, _card(key, files))
                    self._cards[key] = kept
                cards.append(kept[1])
        return sorted(cards, key=lambda c: -c["modified"])

    def files(self, key: str) -> Files:
        """The run folder named ``key`` (as the list gave it); any other name is a LookupError."""
        with self._lock:
            known = key in self._folders
        if not known:
            self.cards()
        with self._lock:
            if key not in self._folders:
                raise LookupError(f"no run {key!r} under {self.root}")
            return self._folders[key]

    def run(self, key: str) -> tuple[Run, list[Entry]]:
        """The run ``key`` and its sample index, read again when one of its files changed; while an
        eval is writing it, at most once per ``HOLD`` load times (a large run takes seconds to read)."""
        files = self.files(key)
        found = Files(files.folder, stamp_of(files.folder))
        with self._lock:
            kept = self._runs.get(key)
        if kept is not None:
            run, _, loaded_at, took = kept
            fresh = run.files == found or (run.running and time.monotonic() - loaded_at < max(HOLD * took, 2.0))
            if fresh:
                with self._lock:
                    self._runs.move_to_end(key)
                return kept[0], kept[1]
        same_inputs = kept is not None and kept[0].files.changed_ns(INPUTS_FILE) == found.changed_ns(INPUTS_FILE)
        start = time.monotonic()
        run = load_run(key, found, kept[0].samples if same_inputs and kept else None)
        entries = index_samples(run.samples, run.rows, run.providers)
        with self._lock:
            self._runs[key] = (run, entries, time.monotonic(), time.monotonic() - start)
            self._runs.move_to_end(key)
            while len(self._runs) > KEPT:
                self._runs.popitem(last=False)
        return run, entries
