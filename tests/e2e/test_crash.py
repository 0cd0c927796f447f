"""Crash safety: SIGKILL `qa index` at many moments; the collection always loads and answers.

Each run starts from the same committed state (an older generation, "old") and indexes a
changed folder ("new": 520 new passages, i.e. three embedding chunks of up to 256, some
files removed). The process is killed when the Nth ``stage X`` line appears on its stderr
(or after a random delay). Afterwards the collection must load (checksums verified) and
answer from exactly the old or exactly the new generation, with SQLite, FAISS and BM25
holding the same passages; the next writer run must clean up what the dead one left.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qa.config import Settings
from qa.encoding import Embedder
from qa.service import QAService
from qa.store import Collection, Indexer, current_generation, writer_lock
from tests.conftest import make_settings
from tests.helpers import ROOT

pytestmark = pytest.mark.slow

STAGE = re.compile(r"qa\.store\.indexer stage (\w+)")
MERGE_STAGE = re.compile(r"qa\.store\.merge stage (\w+)")
COLLECTION = "c"
KEPT, GONE, NEW = 10, 4, 52  # files; every file has PARAGRAPHS paragraphs (one passage each)
PARAGRAPHS = 10

ADJECTIVES = [
    "amber",
    "brittle",
    "coastal",
    "dusty",
    "eastern",
    "frozen",
    "gilded",
    "hollow",
    "iron",
    "jagged",
    "lunar",
    "misty",
    "northern",
    "olive",
]
NOUNS = [
    "bridge",
    "lantern",
    "orchard",
    "quarry",
    "beacon",
    "granary",
    "mill",
    "ferry",
    "tannery",
    "foundry",
    "vineyard",
    "aqueduct",
]
PLACES = [
    "Arlen",
    "Brisk",
    "Corvel",
    "Dunmar",
    "Elsby",
    "Farrow",
    "Glenn",
    "Harth",
    "Islay",
    "Jorvik",
    "Kestle",
    "Lorne",
    "Marrow",
]
VERBS = [
    "repaired",
    "inspected",
    "painted",
    "rebuilt",
    "measured",
    "surveyed",
    "guarded",
    "cleaned",
    "mapped",
    "restored",
]
AGENTS = [
    "masons",
    "clerks",
    "sailors",
    "weavers",
    "farmers",
    "engineers",
    "monks",
    "carters",
    "potters",
    "pilots",
]


def paragraph(rng: random.Random, serial: str) -> str:
    return (
        f"Record {serial}: the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} near {rng.choice(PLACES)} "
        f"was {rng.choice(VERBS)} by {rng.choice(AGENTS)}."
    )


def write_files(folder: Path, prefix: str, count: int, rng: random.Random) -> dict[str, list[str]]:
    """``count`` text files of PARAGRAPHS distinct paragraphs; returns {document id: paragraphs}."""
    out = {}
    for number in range(count):
        name = f"{prefix}-{number:02d}.txt"
        paragraphs = [paragraph(rng, f"{prefix}{number}x{i}") for i in range(PARAGRAPHS)]
        (folder / name).write_text(
            f"{prefix.title()} {number}\n\n" + "\n\n".join(paragraphs) + "\n"
        )
        out[name] = paragraphs
    return out


@dataclass
class State:
    name: str
    documents: set[str]
    probe: str  # a paragraph only this state holds
    generation: str | None = None


@dataclass
class Kill:
    label: str
    returncode: int | None
    stages: list[tuple[str, float]] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


@dataclass
class Lab:
    tmp: Path
    settings: Settings
    docs: Path
    snapshot: Path
    old: State
    new: State
    kept_probe: str
    active: str = "old"

    @property
    def directory(self) -> Path:
        return self.settings.collection_dir(COLLECTION)

    def activate(self, state: str) -> None:
        """Put the old or the new files at the same path (so sources and hashes match)."""
        if state == self.active:
            return
        os.rename(self.docs, self.tmp / f"docs-{self.active}")
        os.rename(self.tmp / f"docs-{state}", self.docs)
        self.active = state

    def restore(self) -> None:
        """The index as it was before any kill: the old generation live, one before it."""
        shutil.rmtree(self.settings.index_dir)
        shutil.copytree(self.snapshot, self.settings.index_dir)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Lab:
    tmp = tmp_path_factory.mktemp("crash")
    rng = random.Random(2024)
    docs = tmp / "docs"
    docs.mkdir()
    settings = make_settings(tmp / "index")
    indexer = Indexer(settings, embedder)
    kept = write_files(docs, "kept", KEPT, rng)
    indexer.index_paths(COLLECTION, [docs])  # gen-000001
    gone = write_files(docs, "gone", GONE, rng)
    old_report = indexer.index_paths(COLLECTION, [docs])  # gen-000002, live
    assert (
        old_report.generation == "gen-000002" and old_report.passages == (KEPT + GONE) * PARAGRAPHS
    )
    snapshot = tmp / "snapshot"
    shutil.copytree(settings.index_dir, snapshot)
    # the new folder: kept files unchanged, gone files removed, NEW files added
    new_docs = tmp / "docs-new"
    new_docs.mkdir()
    for name in kept:
        shutil.copy2(docs / name, new_docs / name)
    added = write_files(new_docs, "new", NEW, rng)
    return Lab(
        tmp=tmp,
        settings=settings,
        docs=docs,
        snapshot=snapshot,
        old=State("old", set(kept) | set(gone), gone["gone-02.txt"][3], "gen-000002"),
        new=State("new", set(kept) | set(added), added["new-41.txt"][7]),
        kept_probe=kept["kept-05.txt"][4],
    )


def run_and_kill(
    lab: Lab,
    stage: str | None = None,
    nth: int = 1,
    delay: float | None = None,
    merge: bool = False,
) -> Kill:
    """Run `qa -v index` on the new folder (`qa -v optimize --full` with ``merge``); SIGKILL
    it at the nth ``stage`` line or ``delay`` s after "split"."""
    env = {
        **os.environ,
        "QA_INDEX_DIR": str(lab.settings.index_dir),
        "QA_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [sys.executable, "-m", "qa", "-v", "index", str(lab.docs), "--collection", COLLECTION]
    if merge:
        command = [sys.executable, "-m", "qa", "-v", "optimize", "--full", "-c", COLLECTION]
    pattern = MERGE_STAGE if merge else STAGE
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    kill = Kill(label=f"{stage} #{nth}" if stage else f"{delay:.2f} s after split", returncode=None)
    seen: Counter[str] = Counter()
    split_seen = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            kill.tail = (kill.tail + [line.rstrip()])[-30:]
            match = pattern.search(line)
            if not match:
                continue
            name = match.group(1)
            seen[name] += 1
            kill.stages.append((name, time.monotonic()))
            if name == stage and seen[name] == nth:
                process.send_signal(signal.SIGKILL)  # at once, from the thread that read the line
            if name == "split":
                split_seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if delay is not None:
        if split_seen.wait(timeout=600):
            time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    kill.returncode = process.wait(timeout=900)
    reader.join(timeout=60)
    return kill


def check_loads_and_answers(lab: Lab, embedder: Embedder, kill: Kill) -> State:
    """The collection loads and answers from exactly one whole generation: old or new."""
    # checksums verified
    collection = Collection.load(lab.directory, expect_model=embedder.identity.to_dict())
    documents = set(collection.document_hashes())
    states = [s for s in (lab.old, lab.new) if s.documents == documents]
    assert len(states) == 1, (
        f"{kill.label}: documents match neither generation: {sorted(documents)[:5]}..."
    )
    state = states[0]
    other = lab.new if state is lab.old else lab.old
    assert collection.counts == {
        "documents": len(state.documents),
        "passages": len(state.documents) * PARAGRAPHS,
    }
    if state.generation is not None:
        assert collection.generation == state.generation, kill.label
    state.generation = collection.generation
    sqlite_ids = {p.id for p in collection.passages_of(documents)}
    faiss_ids, _ = collection.all_vectors()
    bm25_ids = collection.lexical.ids[collection.lexical.live]
    assert sqlite_ids == set(faiss_ids.tolist()) == set(bm25_ids.tolist()), kill.label
    service = QAService(lab.settings, embedder)
    for mode in ("hybrid", "dense", "bm25"):
        for probe in (lab.kept_probe, state.probe):
            reply = service.search(probe, COLLECTION, 3, mode=mode)  # type: ignore[arg-type]
            assert reply.generation == collection.generation
            assert len(reply.passages) == 3 and reply.passages[0].text == probe, (
                kill.label,
                mode,
                probe,
            )
        reply = service.search(other.probe, COLLECTION, 5, mode=mode)  # type: ignore[arg-type]
        assert not {p.citation.document_id for p in reply.passages} & (
            other.documents - state.documents
        )
        assert {p.passage_id for p in reply.passages} <= sqlite_ids
    return state


def leftovers(lab: Lab) -> list[str]:
    return sorted(
        p.name
        for p in lab.directory.iterdir()
        if p.name.startswith((".building-", "CURRENT.tmp"))
        or (p.name.startswith("gen-") and p.is_dir())
    )


def check_next_run_cleans_up(lab: Lab, embedder: Embedder, state: State, rebuild: bool) -> None:
    """The next writer run removes the dead build's leftovers (and, with ``rebuild``, completes the update)."""
    lab.activate("new" if rebuild else state.name)
    report = Indexer(lab.settings, embedder).index_paths(COLLECTION, [lab.docs])
    live = current_generation(lab.directory)
    if rebuild and state is lab.old:
        assert (
            report.changed
            and report.added == NEW
            and report.removed == GONE
            and report.unchanged == KEPT
        )
    else:
        assert not report.changed and report.generation == state.generation
    names = [p.name for p in lab.directory.iterdir()]
    assert not [n for n in names if n.startswith((".building-", "CURRENT.tmp"))], names
    generations = sorted(n for n in names if n.startswith("gen-"))
    # the live one and at most one before it
    assert live in generations and len(generations) <= 2, generations
    with writer_lock(lab.directory):  # the dead writer's lock died with it
        pass
    if rebuild:
        assert Collection.load(lab.directory).counts["documents"] == len(lab.new.documents)


# at least these, in this order
WRITE_STAGES = ["sqlite", "faiss", "bm25", "manifest", "rename", "switch"]
RANDOM_KILLS = 2


def test_sigkill_at_any_moment_leaves_a_working_collection(lab: Lab, embedder: Embedder) -> None:
    outcomes: list[tuple[str, str, list[str]]] = []
    rng = random.Random(7)

    def one(stage: str | None, nth: int = 1, delay: float | None = None) -> Kill:
        lab.restore()
        lab.activate("new")
        kill = run_and_kill(lab, stage, nth, delay)
        if stage is not None:
            # killed where it was asked to be (not earlier, not after finishing)
            assert kill.returncode == -signal.SIGKILL, (kill.label, kill.tail)
            assert [s for s, _ in kill.stages].count(stage) == nth, (kill.label, kill.tail)
        dead_leftovers = leftovers(lab)
        state = check_loads_and_answers(lab, embedder, kill)
        if stage == "switched":
            assert state is lab.new, "the switch had happened: the new generation must be live"
        if (stage, nth) == ("embed", 1):  # two more chunks to embed before anything is written
            assert state is lab.old, f"{kill.label}: nothing was switched yet"
        outcomes.append((kill.label, state.name, dead_leftovers))
        check_next_run_cleans_up(lab, embedder, state, rebuild=stage == "faiss")
        return kill

    # first the last moment: this run passes every stage, which places the others
    reference = one("switched")
    names = [name for name, _ in reference.stages]
    assert names.count("embed") == 3, names  # three embedding chunks
    written = names[len(names) - names[::-1].index("embed") : names.index("switched")]
    assert [n for n in written if n in WRITE_STAGES] == WRITE_STAGES, written
    for nth in (1, 3):
        one("embed", nth)
    for stage in written:  # every step of writing and switching, including any added later
        one(stage)
    times = dict(reference.stages)
    for _ in range(RANDOM_KILLS):  # random moments between the start of splitting and the switch
        one(None, delay=(times["switched"] - times["split"]) * rng.uniform(0.05, 0.95))

    summary = "\n".join(
        f"{label:>24}: {state:<3} leftovers {left}" for label, state, left in outcomes
    )
    print("\n" + summary)
    assert {state for _, state, _ in outcomes} == {"old", "new"}, summary
    assert any(any(n.startswith(".building-") for n in left) for _, _, left in outcomes), summary
    assert len(outcomes) >= 10
    assert NEW * PARAGRAPHS > 2 * 256, "the new passages must span three embedding chunks"


def test_sigkill_during_a_merge_leaves_a_working_collection(lab: Lab, embedder: Embedder) -> None:
    """`qa optimize --full` merging the old generation's two segments, killed at each of its
    stages: the collection loads and answers with the same documents (from the two segments
    before the switch, the merged one after); the next writer cleans up what the merge left."""
    outcomes: list[tuple[str, int]] = []
    kept = lab.old.generation

    def one(stage: str) -> Kill:
        lab.restore()
        lab.activate("old")
        kill = run_and_kill(lab, stage, merge=True)
        assert kill.returncode == -signal.SIGKILL, (kill.label, kill.tail)
        lab.old.generation = None  # the old generation or the merged one: same documents
        assert check_loads_and_answers(lab, embedder, kill) is lab.old
        segments = len(Collection.load(lab.directory).segments)
        outcomes.append((stage, segments))
        check_next_run_cleans_up(lab, embedder, lab.old, rebuild=False)
        assert not [p for p in (lab.directory / "segments").iterdir() if p.name.startswith(".")]
        return kill

    try:
        reference = one("switched")
        names = list(dict.fromkeys(name for name, _ in reference.stages))
        for stage in names[: names.index("switched")]:
            one(stage)
        assert ("merge", 2) in outcomes and ("switched", 1) in outcomes, outcomes
        merged = QAService(lab.settings, embedder).optimize(COLLECTION, everything=True)
        assert merged.segments_after == 1, outcomes
    finally:
        lab.old.generation = kept
