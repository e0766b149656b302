"""``ftcompat handoff``: an artifact made in one environment (the producer) and loaded in another (the consumer).

Each side is an environment of a kind the runner already knows: ad-hoc pins (``AdhocVenv``, the other
packages resolved to their newest compatible release and repaired like ``adhoc``), or someone's own
environment (``Existing``, nothing written inside, as ``here``). The one runner runs the handoff cases
twice: the ``produce_`` halves in the producer's environment, each writing one folder, then the ``test_``
halves in the consumer's, each loading its folder. The cell ``<from>~<to>::case[variant@model]`` is the
consumer's record with the producer's environment and outcome beside it (``handoff``); a producer that
did not pass makes the cell its outcome, so a cell says which side failed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ftcompat.config.cases import cases_of
from ftcompat.config.pairs import SEP
from ftcompat.config.plan import combo_cases
from ftcompat.core.cellfile import read_cells, write_cells
from ftcompat.core.domain import HANDOFF, SIDE, Cell, Combo, Matrix
from ftcompat.core.errors import InputError
from ftcompat.core.hints import suggest
from ftcompat.core.plan import PlannedHandoff
from ftcompat.core.record import Record
from ftcompat.core.selector import match
from ftcompat.core.status import Status
from ftcompat.env import gitsource, target
from ftcompat.env.base import Environment
from ftcompat.env.existing import Existing
from ftcompat.env.preflight import check_writable, unknown_packages
from ftcompat.env.venv import AdhocVenv, SideVenv
from ftcompat.flows import adhoc, here
from ftcompat.results import grid as grid_mod
from ftcompat.runner import run as runner
from ftcompat.runner.cells import WORK


@dataclass(frozen=True)
class SideSpec:
    """What the command line says about one side: pins for an ad-hoc environment, or an existing one."""

    name: str  # "from" or "to", for messages and the id of an existing environment
    pins: tuple[str, ...] = ()
    python: str | None = None  # --from-python PATH
    venv: str | None = None  # --from-venv DIR


def tagged(combo: Combo) -> Combo:
    """``combo`` as one half of a handoff: only handoff cases run in it."""
    return combo if HANDOFF in combo.tags else dataclasses.replace(combo, tags=(*combo.tags, HANDOFF))


def pair_id(producer: Combo, consumer: Combo) -> str:
    """A handoff's id: what differs between the sides (``peft0.15.2~peft0.13.2``), and a short hash of what
    they share, so two handoffs that differ only there do not share a name."""
    if producer.id == consumer.id or not (set(producer.tags) & set(consumer.tags) & {"adhoc"}):
        return f"{producer.id}{SEP}{consumer.id}"  # one environment both ways, or someone's own environments
    same = sorted((p, v) for p, v in producer.pins.items() if v and consumer.pins.get(p) == v)
    own = [[f"{p}{v}" for p, v in sorted(c.pins.items()) if v and (p, v) not in same] for c in (producer, consumer)]
    shared = hashlib.sha256(repr((same, producer.python, consumer.python)).encode()).hexdigest()[:6]
    return f"{'-'.join(own[0]) or 'newest'}{SEP}{'-'.join(own[1]) or 'newest'}-{shared}"


def pair_combo(producer: Combo, consumer: Combo, cases: Sequence[str]) -> Combo:
    """The grid row of a handoff: the consumer's pins, named for both sides."""
    return Combo(pair_id(producer, consumer), consumer.python, consumer.pins, (HANDOFF, "adhoc"),
                 tuple(cases), f"handoff: made in {producer.id} ({_pins(producer)}), loaded in {consumer.id} "
                               f"({_pins(consumer)})", pair=(producer.id, consumer.id))


def _pins(combo: Combo) -> str:
    pinned = [f"{p}=={v}" for p, v in sorted(combo.pins.items()) if v]
    return ", ".join(pinned) or "newest"


def check_handoff_cases(matrix: Matrix, selectors: Sequence[str]) -> None:
    """Each ``--cases`` glob must select a handoff case; a case of one environment is named as such."""
    handoffs = sorted(c for c, spec in matrix.cases.items() if spec.handoff)
    if not handoffs:
        raise InputError(f"{matrix.source} has no handoff case (a case file with produce_ and test_ halves); a "
                         "project takes the built-in handoff cases by naming them in builtin_cases")
    for sel in selectors:
        if any(match(sel, c) for c in handoffs):
            continue
        single = [c for c in matrix.cases if match(sel, c)]
        if single:
            raise InputError(f"--cases {sel!r}: {', '.join(single[:3])} runs in one environment, not a handoff "
                             f"(handoff cases: {', '.join(handoffs)}); run it with `ftcompat adhoc`")
        raise InputError(f"--cases {sel!r} selects no case{suggest(sel, handoffs)} (handoff cases: "
                         f"{', '.join(handoffs)})")


def side_environment(root: Path, spec: SideSpec, cases: Sequence[str], python: str, torch_backend: str | None,
                     ask_above_gb: float | None, sources: Mapping[str, str] | None = None) -> Environment:
    """The environment one side names: an ad-hoc venv for pins, else the user's own, left as it is."""
    if spec.python or spec.venv:
        interpreter = target.interpreter(spec.python, spec.venv)
        described = target.describe(interpreter, root)
        combo = dataclasses.replace(here.current_combo(tuple(cases), described), id=f"{spec.name}-env")
        return Existing(tagged(combo), str(interpreter), target.environment(interpreter, root, described["python"]))
    combo = tagged(adhoc.adhoc_combo(adhoc.parse_pins(list(spec.pins)), python, tuple(cases),
                                     torch_backend=torch_backend))
    combo = combo.with_sources(sources or {})
    gitsource.pin_commits(combo, root)  # an unknown ref is bad input before either side is built
    unknown = unknown_packages(combo)
    if unknown:
        raise InputError(f"--{spec.name}: " + "; ".join(unknown))
    return AdhocVenv(root, combo, root / WORK / "adhoc" / combo.id / "venv", (), ask_above_gb)


def combine(produced: Sequence[Record], consumed: Sequence[Record], pair: Combo, producer: Combo,
            consumer: Combo) -> list[Record]:
    """The handoff's cells: each consumer record under the pair's id, with the producer's side beside it."""
    made = {r.column: r for r in produced}
    used = {r.column: r for r in consumed}
    out = []
    for column in sorted(set(made) | set(used)):
        p, c = made.get(column), used.get(column)
        first = p if p is not None and (c is None or p.status != Status.PASS) else c
        assert first is not None
        side = "producer" if first is p else ("consumer" if first.failing or first.status == Status.ERROR else None)
        cell = Cell(pair.id, first.case, first.variant, first.model)
        about = {"from": producer.id, "to": consumer.id, "failed": side,
                 "producer": _side(p), "consumer": _side(c)}
        record = dataclasses.replace(first, id=cell.id, combo=pair.id)
        if first is p:
            record = record.with_(step=f"producer: {p.step}" if p.step else "producer")
        out.append(record.with_(handoff=about))
    return out


def _side(record: Record | None) -> dict | None:
    """One side of a handoff cell as the record keeps it: its environment and what happened there."""
    if record is None:
        return None
    return {"status": record.status.value, "signature": record.signature, "step": record.step,
            "versions": dict(record.versions), "python": (record.env or {}).get("python"),
            "device": (record.env or {}).get("device"), "details": dict(record.details),
            "duration_s": record.duration_s}


def run_halves(matrix: Matrix, root: Path, producer: Environment, consumer: Environment, pair: Combo,
               log: Callable[[str], None] = print, repair: str | None = "cap") -> list[Record]:
    """Run the producer halves, then the consumer halves; return the pair's cells (``combine``)."""
    base = root / WORK / "handoff" / pair.id
    folder = base / "artifacts"
    shutil.rmtree(folder, ignore_errors=True)  # a consumer loads what this run's producer made, nothing older
    files = cases_of(matrix)
    halves = []
    for env, side in ((producer, "produce"), (consumer, "consume")):
        half = base / f"{side}.json"
        half.unlink(missing_ok=True)
        job = runner.Job(root, adhoc.single(matrix, env.combo), files, (half,), cached=False, repair=repair,
                         handoff=PlannedHandoff(side, str(folder)))
        outcome = runner.run(env, job, log)
        halves.append(read_cells(half, log))
        if outcome.refused:
            log(f"not-installable ({side}r {env.combo.id}): {outcome.refused}")
            if side == "produce":  # nothing to load: every cell says the producer's pins do not install
                halves.append([])
                break
    return combine(halves[0], halves[1], pair, producer.combo, consumer.combo)


def run_handoff(matrix: Matrix, root: Path, producer: Environment, consumer: Environment, cases: Sequence[str],
                out: Path, log: Callable[[str], None] = print, repair: str | None = "cap") -> grid_mod.Grid:
    """Run every handoff case from ``producer`` to ``consumer`` and write the pair's one-row grid to ``out``."""
    pair = pair_combo(producer.combo, consumer.combo, cases)
    cells_dir = root / WORK / "handoff" / pair.id / "cells"
    write_cells(cells_dir / f"{pair.id}.json", pair.id, run_halves(matrix, root, producer, consumer, pair, log, repair))
    grid = grid_mod.merge(adhoc.single(matrix, pair), cases_of(matrix), cells_dir, partial=True)
    grid_mod.save(grid, out)
    return grid


def matrix_side(root: Path, matrix: Matrix, pair: Combo, side: int) -> Environment:
    """One side of a config's pair: the side's combo, built from its pins in a venv of its own that every
    pair using the combo shares, running the pair's (already chosen) cases."""
    assert pair.pair is not None
    combo = matrix.combo(pair.pair[side])
    cases = tuple(combo_cases(matrix, pair))
    combo = dataclasses.replace(tagged(combo), tags=(*tagged(combo).tags, SIDE), cases=cases)
    return SideVenv(root, combo, root / WORK / "handoff" / "envs" / combo.id / "venv",
                    tuple(c.id for c in matrix.combos))


def run_pair(matrix: Matrix, root: Path, pair: Combo, cell_file: Path, log: Callable[[str], None] = print) -> None:
    """A config's pair (``handoffs:``), as its nox session runs it: both sides, then the pair's cell file."""
    producer, consumer = (matrix_side(root, matrix, pair, i) for i in (0, 1))
    records = run_halves(matrix, root, producer, consumer, pair, log, repair=None)
    ran = {r.case for r in records} | set(producer.combo.cases)
    # A run narrowed to some cases (FTCOMPAT_CASES) keeps the pair's other cells, as a combo's run does.
    kept = [r for r in read_cells(cell_file, log) if r.case not in ran] if cell_file.is_file() else []
    write_cells(cell_file, pair.id, [*kept, *records])


def flow(matrix: Matrix, root: Path, source: SideSpec, dest: SideSpec, cases: Sequence[str], out: Path | None,
         python: str = "3.11", log: Callable[[str], None] = print, repair: str | None = "cap",
         torch_backend: str | None = None, yes: bool = False) -> tuple[Path, grid_mod.Grid]:
    """``ftcompat handoff``: check the input, build or find both sides, run every handoff case from one to the other."""
    for spec in (source, dest):
        if not (spec.pins or spec.python or spec.venv):
            raise InputError(f"say what the {spec.name} side is: --{spec.name} PIN..., --{spec.name}-venv DIR or "
                             f"--{spec.name}-python PATH")
        if spec.pins and (spec.python or spec.venv):
            raise InputError(f"--{spec.name} pins and --{spec.name}-venv/--{spec.name}-python both name the "
                             f"{spec.name} side; give one")
    check_handoff_cases(matrix, () if tuple(cases) == ("*",) else cases)
    ask = None if yes else adhoc.ASK_ABOVE_GB
    producer = side_environment(root, source, cases, python, torch_backend, ask, matrix.sources)
    consumer = side_environment(root, dest, cases, python, torch_backend, ask, matrix.sources)
    target_file = out or Path("results") / "handoff" / f"{pair_id(producer.combo, consumer.combo)}.json"
    check_writable(target_file.parent, hint="pass --out to write the grid elsewhere")
    return target_file, run_handoff(matrix, root, producer, consumer, cases, target_file, log, repair)
