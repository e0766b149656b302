"""pytest plugin that runs cases inside a pinned environment and writes one JSON record per cell.

Loaded with ``-p ftcompat.harness.plugin``. It reads the plan the controller wrote, parametrizes
each case with the models the matrix assigns it, classifies every result and rewrites the cell
file after each cell, so a crash later in the run loses nothing already measured.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from pathlib import Path

import pytest

from ftcompat.config.cases import read_case
from ftcompat.core import health, redact
from ftcompat.core import outcome as oc
from ftcompat.core.cellfile import RESULTS_UNWRITABLE, WriteFailed, write_cells
from ftcompat.core.clock import utc_now
from ftcompat.core.domain import Cell
from ftcompat.core.paths import Portable
from ftcompat.core.plan import Plan
from ftcompat.core.record import Record
from ftcompat.core.status import Status
from ftcompat.harness import api, envinfo, logpipe, models, remote_code, tracebacks, watchdog

_KEY = "ftcompat"


def pytest_addoption(parser):
    """Register the plan and output options."""
    group = parser.getgroup("ftcompat")
    group.addoption("--ftcompat-plan", help="plan JSON written by the controller")
    group.addoption("--ftcompat-out", help="where to write this combo's cell records")


def pytest_configure(config):
    """Load the plan and make the run offline and quiet before any case imports transformers."""
    # Tiny models are built locally; a hub request would hang or fail on machines without network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_DISABLED", "true")
    plan_path = config.getoption("--ftcompat-plan")
    try:
        plan = Plan.from_json(json.loads(Path(plan_path).read_text())) if plan_path else Plan()
    except (OSError, ValueError) as exc:  # PlanError and JSONDecodeError are ValueErrors
        raise pytest.UsageError(f"--ftcompat-plan {plan_path}: {exc}") from None
    config._ftcompat_plan = plan
    work = Path(plan.work_dir or ".ftcompat/work/adhoc").resolve()
    work.mkdir(parents=True, exist_ok=True)
    # Remote code is copied into this cache; a per-run one stops stale modules leaking across combos.
    os.environ.setdefault("HF_MODULES_CACHE", str(work / "hf_modules"))
    config._ftcompat_work = work
    config._ftcompat_log = None
    if hasattr(config, "workerinput"):
        config._ftcompat_log = watchdog.capture_worker_output(work, config.workerinput["workerid"])
    else:
        config.pluginmanager.register(_Recorder(config), "ftcompat-recorder")


def pytest_generate_tests(metafunc):
    """Parametrize ``model`` with the models matrix.yaml assigns to this case."""
    if "model" not in metafunc.fixturenames:
        return
    case_id = Path(metafunc.module.__file__).stem
    plan = metafunc.config._ftcompat_plan
    # The plan names every planned case's models (validation refuses a model-taking case without
    # any); a case outside the plan gets none, so pytest skips it and no cell is made for it.
    models = list(plan.case(case_id).models)
    metafunc.parametrize("model", models, indirect=True, ids=list(models))


@pytest.fixture
def model(request):
    """Return a ModelRef for the parametrized model, building a tiny one locally if needed."""
    plan = request.config._ftcompat_plan
    name = request.param
    spec = plan.models.get(name) or models.builtin_spec(name)
    return models.resolve(name, spec, request.config._ftcompat_work / "models")


@pytest.fixture
def handoff(request):
    """The folder a handoff cell's artifact passes through: written by ``produce_<variant>``, read by ``test_``."""
    plan = request.config._ftcompat_plan
    if plan.handoff is None:
        raise api.CaseSetupError("a handoff case runs only as one half of a handoff (ftcompat handoff)")
    model = getattr(request.node, "callspec", None)
    model = model.params.get("model") if model else None
    folder = handoff_folder(plan.handoff.folder, Path(str(request.node.path)).stem,
                            request.node.originalname.removeprefix("test_"), model)
    if plan.handoff.side == "produce":
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir() or not any(folder.iterdir()):
        raise api.CaseSetupError(f"the producer left nothing in {folder.name!r} to load")
    return folder


def handoff_folder(base: str, case: str, variant: str, model: str | None) -> Path:
    """One cell's artifact folder: ``<base>/<case>/<variant>@<model>``."""
    return Path(base) / case / f"{variant}@{model or '-'}"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """On the producer's side of a handoff, run ``produce_<variant>`` in place of the consumer ``test_``."""
    plan = pyfuncitem.config._ftcompat_plan
    if plan.handoff is None or plan.handoff.side != "produce":
        return None
    variant = pyfuncitem.originalname.removeprefix("test_")
    produce = getattr(pyfuncitem.module, f"produce_{variant}")
    wanted = inspect.signature(produce).parameters  # a subset of test_'s (``config.cases`` checks it)
    produce(**{name: pyfuncitem.funcargs[name] for name in wanted})
    return True


@pytest.fixture
def device():
    """Return the torch device string cases should use: ``cuda`` where there is one, else ``cpu``."""
    return envinfo.torch_device()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Start a fresh log for the case about to run, with remote code allowed only where it is pinned."""
    api.begin()
    # tmp_path counts as local: cases copy a tiny model there before loading its remote code.
    remote_code.guard(item.config._ftcompat_work, item.config._ftcompat_plan.models,
                      [item.config._tmp_path_factory.getbasetemp()])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Run the case under its time limit, its output marked in the worker's log."""
    config = item.config
    if config._ftcompat_log is None:  # not under xdist: no separate process to stop
        yield
        return
    watchdog.mark_start(item.nodeid)
    case_id = Path(str(item.path)).stem
    plan = config._ftcompat_plan
    limit = plan.case(case_id).timeout or watchdog.DEFAULT_TIMEOUT
    with watchdog.Watchdog(config._ftcompat_work, item.nodeid, float(limit)):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Mask tokens in a case file's import error before it reaches the terminal or the controller."""
    result = yield
    rep = result.get_result()
    if rep.failed:
        redact.scrub_report(rep)


_E_LINE = re.compile(r"^E\s+([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)?): ?(.*)$")


def collect_error(longrepr) -> tuple[str, str]:
    """The exception type and message of a collection error (pytest keeps it as text or a repr object)."""
    crash = getattr(longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or ""
    m = re.match(r"^([A-Za-z_][\w.]*): ?(.*)$", text, re.DOTALL)
    if m and not m.group(1).endswith("CollectError"):
        return m.group(1).rsplit(".", 1)[-1], m.group(2)
    found = [_E_LINE.match(line) for line in str(longrepr).splitlines()]
    last = [f for f in found if f]
    if last:
        return last[-1].group(1).rsplit(".", 1)[-1], last[-1].group(2)
    return "CollectError", oc.first_line(str(longrepr)) or "the case file could not be imported"


def broken_environment(plan: Plan, case_id: str, exc_type: str, message: str,
                       outcome: oc.Outcome) -> tuple[oc.Outcome, health.Defect | None]:
    """``outcome``, unless the root cause is one the health probe found outside what the case checks: then the
    environment is broken, and the cell says so (``error``) instead of a verdict, with the defect."""
    defect = health.explains(plan.health, plan.case(case_id).subject, exc_type, message)
    if defect is None:
        return outcome, None
    text = health.broken_message(defect)
    return oc.Outcome(Status.ERROR, oc.signature_of(defect.exc_type, text), defect.exc_type, text), defect


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Classify this phase and attach the outcome to the report so it crosses xdist workers."""
    result = yield
    rep = result.get_result()
    log = api.current()
    exc_type = message = cause_type = cause_message = skip_reason = origin = None
    full_tb = None
    if call.excinfo is not None:
        exc = call.excinfo.value
        if rep.skipped:
            skip_reason = str(getattr(exc, "msg", exc))
        else:
            exc_type, message = type(exc).__name__, tracebacks.with_root(exc)
            if isinstance(exc, api.CaseSetupError) and exc.__cause__ is not None:
                cause_type, cause_message = type(exc.__cause__).__name__, tracebacks.with_root(exc.__cause__)
            # Paths relative to the checkout: a report must not carry this machine's folders.
            root = str(item.config.rootpath) + os.sep
            full_tb = tracebacks.native_traceback(exc).replace(root, "")
            origin = tracebacks.origin_of(exc)
            if origin:
                origin["file"] = origin["file"].replace(root, "")
    elif rep.skipped and isinstance(rep.longrepr, tuple):
        skip_reason = rep.longrepr[2].removeprefix("Skipped: ")
    got = oc.classify(call.when, rep.outcome, exc_type, message, cause_type, cause_message, skip_reason)
    defect = None
    if rep.failed and call.excinfo is not None:
        root = oc.root_cause(call.excinfo.value)
        got, defect = broken_environment(item.config._ftcompat_plan, Path(str(item.path)).stem, type(root).__name__,
                                         str(root), got)
    data = got.to_dict()
    data.update(
        phase=call.when,
        step=log.failed_step,
        details=log.details,
        traceback=(full_tb or _traceback(rep)) if rep.failed else None,
        origin=origin,
        log=_log_tail(item, rep) if rep.failed else None,
        environment=defect.to_json() if defect else None,
    )
    rep.user_properties.append((_KEY, json.dumps(data, default=str)))
    redact.scrub_report(rep)  # pytest's own report text reaches the terminal log


def _log_tail(item, rep, lines: int = 40) -> str | None:
    """The last lines the case printed (stdout, stderr, logging) before it failed."""
    if item.config._ftcompat_log is not None:
        text = watchdog.tail(item.config._ftcompat_log, item.nodeid, lines) or ""
    else:
        text = "\n".join(t for t in (rep.capstdout, rep.capstderr, rep.caplog) if t)
    kept = [line for line in oc.without_env_paths(text).splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or None


def _traceback(rep, limit: int = 8000) -> str:
    text = str(rep.longrepr)
    return text if len(text) <= limit else "…" + text[-limit:]


class _Recorder:
    """Collects phase reports (locally or from xdist workers) into cells and writes them."""

    def __init__(self, config) -> None:
        self.config = config
        plan = config._ftcompat_plan
        self.combo = plan.combo.id
        out = config.getoption("--ftcompat-out") or plan.out
        self.out = Path(out) if out else None
        self.cells: dict[str, Record] = {}
        self.partial: dict[str, dict] = {}
        self.env: dict | None = None
        self.portable = portable_for(config.rootpath)
        self.write_failed: str | None = None

    def pytest_collectreport(self, report):
        """A case file that raised at import: each of its planned cells is error with that exception; the
        other cases run on (``--continue-on-collection-errors``), and their results are kept."""
        path = Path(str(report.nodeid).split("::", 1)[0])
        plan = self.config._ftcompat_plan
        if not report.failed or path.suffix != ".py" or path.stem not in plan.cases:
            return
        try:
            case = read_case(Path(str(self.config.rootpath)) / path)
        except (OSError, SyntaxError, ValueError):  # unreadable: the controller fills its cells in
            return
        exc_type, message = collect_error(report.longrepr)
        raised = oc.Outcome(Status.ERROR, oc.signature_of(exc_type, message), exc_type, oc.first_line(message))
        outcome, defect = broken_environment(plan, case.id, exc_type, message, raised)
        got = {**outcome.to_dict(), "step": "import the case file", "details": {}, "log": None, "origin": None,
               "traceback": oc.without_env_paths(str(report.longrepr))[-8000:],
               "environment": defect.to_json() if defect else None}
        for variant, uses_model in zip(case.variants, case.uses_model, strict=True):
            for model in (plan.case(case.id).models if uses_model else (None,)):
                node = f"{path.as_posix()}::test_{variant}" + (f"[{model}]" if model else "")
                self._finish(node, {"duration_s": 0.0, "phases": {"setup": got}})

    def pytest_runtest_logreport(self, report):
        """Fold each phase into its cell and flush the cell file when the cell is complete."""
        data = dict(report.user_properties).get(_KEY)
        got = json.loads(data) if data else _crash_outcome(report, self.config._ftcompat_work)
        cell = self.partial.setdefault(report.nodeid, {"duration_s": 0.0, "phases": {}})
        cell["duration_s"] += report.duration
        cell["phases"][report.when if data else "call"] = got
        if report.when == "teardown" or not data:
            self._finish(report.nodeid, cell)

    def _finish(self, nodeid: str, cell: dict) -> None:
        self.partial.pop(nodeid, None)
        if self.env is None:
            self.env = envinfo.collect()
        case, variant, model = _split_nodeid(nodeid)
        got = _final(cell["phases"])
        cell_id = Cell(self.combo, case, variant, model).id
        # No machine's folders in a result: paths relative to the project, site-packages/, <python>/.
        text = {k: self.portable.data(got.get(k)) for k in ("signature", "message", "traceback", "log", "origin")}
        record = Record(
            cell_id, self.combo, case, variant, model, Status(got["status"]), signature=text["signature"],
            exc_type=got["exc_type"], message=text["message"], step=got.get("step"),
            details=self.portable.data(got.get("details") or {}), traceback=text["traceback"],
            duration_s=round(cell["duration_s"], 3), finished_at=utc_now(), env=self.env,
            origin=text["origin"], log=text["log"],
            cache_key=self.config._ftcompat_plan.cache_keys.get(cell_id),
            environment=self.portable.data(got.get("environment")),
            present=frozenset({"origin", "log", "cache_key"} | ({"environment"} if got.get("environment") else set())),
        )
        self.cells[record.id] = record
        self._write()

    def _write(self) -> None:
        """Rewrite the cell file; when that fails (a full disk), say so once and stop the run."""
        if not self.out or self.write_failed:
            return
        try:
            write_cells(self.out, self.combo, list(self.cells.values()))
        except WriteFailed as exc:
            # Raised from a report hook it would be ~60 lines of INTERNALERROR; one line is enough, and
            # running more cells whose results cannot be kept only costs time.
            self.write_failed = str(exc)
            sys.stderr.write(f"ftcompat harness: {exc}; stopping this run\n")
            why = "ftcompat: the results could not be written"
            self.config._ftcompat_session.shouldstop = why
            dsession = self.config.pluginmanager.getplugin("dsession")  # under xdist it runs the loop
            if dsession is not None:
                dsession.shouldstop = why

    def pytest_sessionstart(self, session):
        """Keep the session, to stop it if the results cannot be written."""
        self.config._ftcompat_session = session

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        """Write the file even when nothing ran, so the controller sees an empty, not a missing, run."""
        if self.out and not self.out.exists() and not self.write_failed:
            self._write()
        if self.write_failed:
            session.exitstatus = RESULTS_UNWRITABLE  # the controller keeps the earlier results and stops


def _final(phases: dict[str, dict]) -> dict:
    """The cell's outcome: the first phase that did not pass, else the call phase."""
    ordered = [phases[w] for w in ("setup", "call", "teardown") if w in phases]
    final = next((p for p in ordered if p["status"] != Status.PASS), phases.get("call", ordered[0]))
    details: dict = {}
    for p in ordered:
        details.update(p.get("details") or {})
    return {**final, "details": details}


def _crash_outcome(report, work: Path) -> dict:
    """Outcome for a report that carries no classification: an xdist worker died mid-case.

    The watchdog's marker says it was stopped for time; otherwise the process died on its own
    (segfault, abort, killed for memory), and the worker's log holds its last words.
    """

    worker = getattr(getattr(report, "node", None), "workerinput", {}).get("workerid")
    if worker:
        logpipe.settle(watchdog.log_path(work, worker))  # the dead worker's writer may still be draining
    full = (watchdog.section(watchdog.log_path(work, worker), report.nodeid) if worker else None) or ""
    # A crash dump is long: keep enough lines for the case's own output before it and its frames.
    log = oc.without_env_paths("\n".join([ln for ln in full.splitlines() if ln.strip()][-80:])) or None
    limit = watchdog.timed_out(work, report.nodeid)
    if limit is not None:
        message = f"ran past its {limit:g} s time limit and was stopped"
        return {"status": Status.TIMEOUT.value, "signature": f"Timeout: {message}", "exc_type": "Timeout",
                "message": message, "step": None, "details": {}, "traceback": log, "log": log}
    text = str(report.longrepr or "worker crashed")
    fatal = re.search(r"^Fatal Python error: (.+)$", full, re.MULTILINE)
    # Stable across workers and combos: no worker name, the fatal error where Python printed one.
    message = (f"the case's process died: Fatal Python error: {fatal.group(1).strip()}" if fatal
               else "the case's process died without a Python error (killed, e.g. for memory?)")
    return {"status": Status.CRASH.value, "signature": oc.signature_of("WorkerCrashed", message),
            "exc_type": "WorkerCrashed", "message": message, "step": None, "details": {},
            "traceback": "\n".join(filter(None, [text[-2000:], log])), "log": log}


def portable_for(root) -> Portable:
    """Path rewriting for this interpreter: the project, and the environment when it lies outside it."""
    root = Path(root).resolve()
    prefix = Path(sys.prefix).resolve()
    extra = [] if prefix.is_relative_to(root) else [(str(prefix), "<venv>")]
    return Portable(root, extra)


def _split_nodeid(nodeid: str) -> tuple[str, str, str | None]:
    """Split ``cases/phi3_generate.py::test_remote_code[tiny-phi3]`` into case, variant, model."""
    path, _, rest = nodeid.partition("::")
    case = Path(path).stem
    func, _, params = rest.partition("[")
    variant = func.removeprefix("test_")
    model = params.rstrip("]") or None
    return case, variant, model
