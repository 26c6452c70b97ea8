"""Which spools the recordings collector lists: the configured one, then every other node's
under the nodes' files directory (``<dir>/<node>/recordings``), present or not yet."""

from __future__ import annotations

from pathlib import Path

from graam_pbx.ami import EventBus
from graam_pbx.recordings.store import LocalStore
from graam_pbx.recordings.worker import NODE_SUBDIR, RecordingCollector


def collector(tmp_path: Path, spool: Path | None, nodes: Path | None) -> RecordingCollector:
    store = LocalStore(tmp_path / "store")
    return RecordingCollector(None, EventBus(), spool, store, nodes_files_dir=nodes)  # type: ignore[arg-type]


def test_the_configured_spool_then_each_nodes_spool_present(tmp_path: Path) -> None:
    spool, nodes = tmp_path / "spool", tmp_path / "nodes"
    for node in ("c", "b"):
        (nodes / node / NODE_SUBDIR).mkdir(parents=True)
    (nodes / "d" / "config").mkdir(parents=True)  # a node whose spool is not mounted here
    assert collector(tmp_path, spool, nodes).roots() == [
        spool,
        nodes / "b" / NODE_SUBDIR,
        nodes / "c" / NODE_SUBDIR,
    ]


def test_without_nodes_only_the_configured_spool_and_without_either_none(tmp_path: Path) -> None:
    assert collector(tmp_path, tmp_path / "spool", None).roots() == [tmp_path / "spool"]
    assert collector(tmp_path, None, tmp_path / "missing").roots() == []
