"""How fast the batched ODE solvers are: Duffing trajectories/s at equal accuracy, beside torchdiffeq.

Run with `.venv/bin/python bench/ode.py` (torchdiffeq comes with the `bench` extra; without it the
gmhf rows are still measured). It prints two tables and writes `bench/results/ode.json`.

What is compared: Duffing batches of B = 1,024 and 8,192 trajectories, θ drawn from the SOURCE
(`domain duffing` with no statements: every factor keeps its source distribution) and from the
shipped TARGET (`duffing_truth.guide`), t in [0, 20] with 200 output points, float64, one torch
thread. Methods: gmhf `rk4` and `adaptive`, the Duffing domain's fused solvers (`duffing_rk4`, and
`duffing_adams`: Adams–Bashforth–Moulton PECE of order 8, two field evaluations a step), torchdiffeq
`odeint` with "rk4" and "dopri5" (the methods the issue's goal names), and, so that the comparison
does not hide a better peer, torchdiffeq's own Adams ("explicit_adams", "implicit_adams", on gmhf's
grids, max_order 8 or 12) and "dopri8". The ratio table gives both comparisons.

Equal accuracy: every method runs at its cheapest setting whose max abs error (over trajectories,
output times and both components) is at most 1e-4 against a reference. The reference is gmhf rk4 at
step 0.005 on the whole batch, itself checked against scipy's DOP853 (rtol 1e-10, atol 1e-12) on the
same 64 trajectories (evenly spread over the 8,192) for every run. The setting is searched on the first
1,024 trajectories, climbing each method's ladder from its cheapest rung, and then timed at both B;
the error at the timed B is reported too.

Timing: the methods of one (box, B) run round-robin, one run each per round, so a load spike on a
shared machine hits all of them alike; each figure is the median over rounds, min and spread shown.
The order rotates from round to round. At B = 8,192 an output is 26 MB, and whether a method gets
memory glibc already holds or fresh pages from the kernel (a page fault per 4 KiB, ~2.5 µs each on
the VM this was written on: 15 ms for one output) depends on what ran before it; the JSON records
each run's minor page faults, and the notes give each method's median.
The arithmetic limit is evaluations x B x (9 flops at a measured fused multiply-add rate + 1 cos at a
measured cos rate): how far eager torch is from what the same arithmetic would cost.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from common import footer, load_note, machine_info, text_table, write_results  # bench/common.py (run as a script)
from torch import Tensor

import gmhf
from gmhf.core.ode import Solution, adaptive, rk4, substeps_for
from gmhf.plugins.duffing import vector_field
from gmhf.plugins.duffing_adams import ORDER as ADAMS_ORDER
from gmhf.plugins.duffing_adams import duffing_adams
from gmhf.plugins.duffing_rk4 import duffing_rk4

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ode.json"
TRUTH = ROOT / "gmhf" / "plugins" / "specs" / "duffing_truth.guide"
SEED = 0
BATCHES = (1_024, 8_192)
SEARCH_BATCH = 1_024
HORIZON, POINTS = (0.0, 20.0), 200
#: Equal accuracy: max abs error against the reference.
TOLERANCE = 1e-4
STEPS = (0.4, 0.25, 0.2, 0.15, 0.1, 0.075, 0.05, 0.025, 0.0125)
TOLERANCES = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 1e-8, 1e-9)
REFERENCE_STEP = 0.005
CHECK_SUBSET = 64
#: Rounds of timing per (box, B): every method runs once per round.
ROUNDS = {1_024: 7, 8_192: 5}
#: A search run slower than this ends that method's ladder (the next rungs cost more).
RUN_LIMIT_S = 20.0
#: The issue's goal: gmhf's best at least this many times as fast as torchdiffeq's best, at equal accuracy.
GOAL = 3.0
#: Flops of one Duffing field evaluation besides its cos: ω·t, γ·cos, δ·v, x·x, β·x², α+, ·x, two subtractions.
FIELD_FLOPS = 9
#: Each method's own flops per evaluation besides the field (2 state components, an FMA = 2 flops): RK4's stage
#: states and update, 14 FMAs a step of 4 evaluations; Dormand–Prince 5 (and 8 about alike), 34 FMAs a step of 6;
#: Adams PECE, predictor and corrector sums over ORDER past derivatives plus the newest term, a step of 2.
RK4_SUMS = 2 * 14 * 2 / 4
DOPRI5_SUMS = 2 * 34 * 2 / 6
ADAMS_SUMS = 2 * (2 * ADAMS_ORDER + 1) * 2 / 2
#: Rounds after which a spread (max - min) / median above this marks a figure as noisy.
NOISY = 0.25

Runner = Callable[[Callable[[Any, Tensor], Tensor], Tensor, Tensor], Tensor]


# ------------------------------------------------------------------------------------ methods


@dataclass(frozen=True)
class Setting:
    """One rung of a method's ladder: what the table prints, and how to solve at it (y `[n, t, d]`)."""

    label: str
    run: Runner


@dataclass
class Method:
    """A solver with its ladder of settings, cheapest first, and its own flops per evaluation besides the field's."""

    name: str
    library: str
    ladder: list[Setting]
    sum_flops: float
    goal_peer: bool = True  # torchdiffeq's rk4 and dopri5: the methods the goal names


def gmhf_methods(spacing: float) -> list[Method]:
    """gmhf rk4 over the step ladder (rungs with the same effective step dropped), adaptive over tolerances, and
    the Duffing domain's fused solvers (RK4, and Adams PECE of order 8) over the same steps."""
    steps = [Setting(f"step {step:g} (h={spacing / substeps_for(spacing, step):.4f})",
                     lambda f, y0, t, step=step: rk4(f, y0, t, step=step).y) for step in _distinct_steps(spacing)]
    tolerances = [Setting(f"rtol=atol={tol:g}", lambda f, y0, t, tol=tol: adaptive(f, y0, t, rtol=tol, atol=tol).y)
                  for tol in TOLERANCES]
    fused = [Setting(s.label, lambda f, y0, t, step=step: _fused(duffing_rk4, f, t, step))
             for s, step in zip(steps, _distinct_steps(spacing), strict=True)]
    adams = [Setting(s.label, lambda f, y0, t, step=step: _fused(duffing_adams, f, t, step))
             for s, step in zip(steps, _distinct_steps(spacing), strict=True)]
    return [Method("gmhf rk4", "gmhf", steps, RK4_SUMS), Method("gmhf adaptive", "gmhf", tolerances, DOPRI5_SUMS),
            Method("gmhf duffing rk4 (fused)", "gmhf", fused, RK4_SUMS),
            Method(f"gmhf duffing adams{ADAMS_ORDER} (fused)", "gmhf", adams, ADAMS_SUMS)]


def _distinct_steps(spacing: float) -> list[float]:
    """The rungs of STEPS that give distinct effective steps (as the rk4 ladder keeps them)."""
    kept, seen = [], set()
    for step in STEPS:
        substeps = substeps_for(spacing, step)
        if substeps not in seen:
            seen.add(substeps)
            kept.append(step)
    return kept


def _fused(solver: Callable[..., Solution], f: Any, t: Tensor, step: float) -> Tensor:
    """One of the Duffing domain's own solvers (fewer torch ops than the generic ones); it needs θ, not f."""
    solution = solver(f.theta, t, step=step)
    if isinstance(f, Counted):  # during the search, count its evaluations like the others'
        f.calls += solution.evaluations
    return solution.y


def torchdiffeq_methods(spacing: float) -> list[Method]:
    """torchdiffeq rk4 (step_size with linear or cubic output interpolation, or a grid on the outputs), dopri5,
    and, beyond the issue's goal, its Adams–Bashforth(–Moulton) on gmhf's grids and dopri8.

    The rk4 rungs are ordered by their evaluation count, so the first that passes is the cheapest.
    """
    from torchdiffeq import odeint  # type: ignore[import-not-found]

    span = HORIZON[1] - HORIZON[0]
    rungs: list[tuple[int, Setting]] = []
    for step in STEPS:
        for interp in ("linear", "cubic"):
            evaluations = 4 * math.ceil(span / step - 1e-9) + (POINTS - 1 if interp == "cubic" else 0)
            rungs.append((evaluations, Setting(
                f"step_size {step:g}, {interp} interp",
                lambda f, y0, t, step=step, interp=interp: odeint(
                    f, y0, t, method="rk4", options={"step_size": step, "interp": interp}).transpose(0, 1))))
    for substeps in range(1, 7):  # what gmhf rk4 does: each output interval split into equal steps, no interpolation
        rungs.append((4 * (POINTS - 1) * substeps, Setting(f"grid = outputs/{substeps} (h={spacing / substeps:.4f})",
                                                           _on_grid(odeint, "rk4", substeps))))
    rungs.sort(key=lambda rung: rung[0])
    adams = [Setting(f"{kind}, max_order {order}, grid = outputs/{substeps}",
                     _on_grid(odeint, kind, substeps, {"max_order": order}))
             for substeps in (1, 2, 3) for kind in ("explicit_adams", "implicit_adams") for order in (8, 12)]

    def adaptive_rungs(method: str) -> list[Setting]:
        return [Setting(f"rtol=atol={tol:g}", lambda f, y0, t, tol=tol: odeint(
            f, y0, t, method=method, rtol=tol, atol=tol).transpose(0, 1)) for tol in TOLERANCES]

    return [Method("torchdiffeq rk4", "torchdiffeq", [setting for _, setting in rungs], RK4_SUMS),
            Method("torchdiffeq dopri5", "torchdiffeq", adaptive_rungs("dopri5"), DOPRI5_SUMS),
            Method("torchdiffeq adams", "torchdiffeq", adams, ADAMS_SUMS, goal_peer=False),
            Method("torchdiffeq dopri8", "torchdiffeq", adaptive_rungs("dopri8"), DOPRI5_SUMS, goal_peer=False)]


def _on_grid(odeint: Callable[..., Tensor], method: str, substeps: int, options: dict[str, Any] | None = None) -> Runner:
    """torchdiffeq `method` stepping exactly as gmhf's fixed-step solvers do: output intervals split in equal steps."""

    def run(f: Any, y0: Tensor, t: Tensor) -> Tensor:
        fractions = torch.arange(substeps, dtype=t.dtype) / substeps
        grid = torch.cat([(t[:-1, None] + (t[1:] - t[:-1])[:, None] * fractions).reshape(-1), t[-1:]])
        return odeint(f, y0, t, method=method,
                      options={**(options or {}), "grid_constructor": lambda func, y, times: grid}).transpose(0, 1)

    return run


class Counted:
    """The vector field with a call counter: every call evaluates the whole batch."""

    def __init__(self, f: Callable[[Any, Tensor], Tensor]) -> None:
        self.f, self.calls = f, 0
        self.theta = getattr(f, "theta", None)  # the fused Duffing solver reads θ directly

    def __call__(self, t: Any, y: Tensor) -> Tensor:
        self.calls += 1
        return self.f(t, y)


def max_error(y: Tensor, reference: Tensor) -> float:
    """Max abs difference; inf when the solution has non-finite values."""
    difference = (y - reference).abs()
    return float(difference.max()) if bool(torch.isfinite(difference).all()) else math.inf


# ------------------------------------------------------------------------------------ problems


@dataclass
class Box:
    """θ for one box at the largest B, with its reference solution and the reference's check."""

    name: str
    theta: Tensor
    reference: Tensor = field(default_factory=lambda: torch.empty(0))
    reference_s: float = 0.0
    check_error: float = math.nan

    def problem(self, n: int) -> tuple[Callable[[Any, Tensor], Tensor], Tensor, Tensor]:
        """Field, initial states and reference of the first `n` trajectories."""
        theta = self.theta[:n]
        return vector_field(theta), theta[:, 5:7].contiguous(), self.reference[:n]


def boxes() -> list[Box]:
    """Source and target θ, B = max(BATCHES) each (the smaller batches are their first rows)."""
    n = max(BATCHES)
    source = gmhf.load("domain duffing\n").sample(n, seed=SEED).values
    target = gmhf.load(TRUTH).sample(n, seed=SEED).values
    return [Box("source", source.to(torch.float64)), Box("target", target.to(torch.float64))]


def grid() -> Tensor:
    """The output times."""
    return torch.linspace(*HORIZON, POINTS, dtype=torch.float64)


def solve_reference(box: Box, t: Tensor) -> None:
    """gmhf rk4 at REFERENCE_STEP on the whole batch, checked against scipy DOP853 on CHECK_SUBSET trajectories."""
    f, y0 = vector_field(box.theta), box.theta[:, 5:7].contiguous()
    start = time.perf_counter()
    box.reference = rk4(f, y0, t, step=REFERENCE_STEP).y
    box.reference_s = time.perf_counter() - start
    if importlib.util.find_spec("scipy") is None:
        return
    from scipy.integrate import solve_ivp

    times = t.numpy()
    worst = 0.0
    for row in torch.linspace(0, len(box.theta) - 1, CHECK_SUBSET).round().long().tolist():
        delta, alpha, beta, gamma, omega, x0, v0 = box.theta[row].tolist()

        def duffing(s: float, y: Any, d: float = delta, a: float = alpha, b: float = beta, g: float = gamma,
                    w: float = omega) -> list[float]:
            return [y[1], g * math.cos(w * s) - d * y[1] - (a + b * y[0] * y[0]) * y[0]]

        solution = solve_ivp(duffing, HORIZON, [x0, v0], method="DOP853", t_eval=times, rtol=1e-10, atol=1e-12)
        worst = max(worst, float(abs(solution.y.T - box.reference[row].numpy()).max()))
    box.check_error = worst


# ------------------------------------------------------------------------------------ search and timing


@dataclass
class Choice:
    """The cheapest passing rung of one method on one box, and the rungs tried on the way."""

    method: Method
    box: str
    setting: Setting | None
    tried: list[dict[str, Any]]


def search(method: Method, box: Box, t: Tensor) -> Choice:
    """Climb the ladder on the first SEARCH_BATCH trajectories until the error is at most TOLERANCE."""
    f, y0, reference = box.problem(SEARCH_BATCH)
    tried = []
    for setting in method.ladder:
        counted = Counted(f)
        gc.collect()
        start = time.perf_counter()
        y = setting.run(counted, y0, t)
        seconds = time.perf_counter() - start
        error = max_error(y, reference)
        tried.append({"setting": setting.label, "max_error": error, "evaluations": counted.calls, "seconds": seconds})
        if error <= TOLERANCE:
            return Choice(method, box.name, setting, tried)
        if seconds > RUN_LIMIT_S:
            break
    return Choice(method, box.name, None, tried)


@dataclass
class Row:
    """One timed row: a method at its chosen setting on one (box, B)."""

    box: str
    batch: int
    method: str
    library: str
    setting: str
    evaluations: int = 0
    search_error: float = math.nan
    error: float = math.nan
    seconds: list[float] = field(default_factory=list)
    page_faults: list[int] = field(default_factory=list)  # minor faults per timed run (Linux; empty elsewhere)
    goal_peer: bool = True
    limit_s: float = math.nan
    sums_limit_s: float = math.nan
    peak_limit_s: float = math.nan

    @property
    def median(self) -> float:
        """Median seconds per run."""
        return statistics.median(self.seconds) if self.seconds else math.nan

    @property
    def rate(self) -> float:
        """Trajectories per second at the median."""
        return self.batch / self.median if self.seconds else math.nan

    @property
    def spread(self) -> float:
        """(max - min) / median of the run times."""
        return (max(self.seconds) - min(self.seconds)) / self.median if self.seconds else math.nan

    def to_json(self) -> dict[str, Any]:
        """The JSON record of this row."""
        return {"box": self.box, "batch": self.batch, "method": self.method, "library": self.library,
                "setting": self.setting, "evaluations": self.evaluations, "max_error_search": self.search_error,
                "max_error": self.error, "median_s": self.median, "min_s": min(self.seconds, default=None),
                "seconds": self.seconds, "page_faults": self.page_faults, "trajectories_per_s": self.rate,
                "spread": self.spread,
                "goal_peer": self.goal_peer, "arithmetic_limit_s": self.limit_s,
                "x_arithmetic_limit": self.median / self.limit_s, "arithmetic_limit_with_sums_s": self.sums_limit_s,
                "x_arithmetic_limit_with_sums": self.median / self.sums_limit_s,
                "peak_limit_s": self.peak_limit_s, "x_peak_limit": self.median / self.peak_limit_s}


def time_box(box: Box, choices: list[Choice], t: Tensor, rates: dict[str, float]) -> list[Row]:
    """Time every chosen setting on one box, at each B, round-robin."""
    rows = []
    for batch in BATCHES:
        f, y0, reference = box.problem(batch)
        chosen = [c for c in choices if c.box == box.name and c.setting is not None]
        batch_rows = []
        for choice in chosen:  # warm-up run: evaluation count and error at this B
            assert choice.setting is not None
            counted = Counted(f)
            y = choice.setting.run(counted, y0, t)
            row = Row(box.name, batch, choice.method.name, choice.method.library, choice.setting.label,
                      counted.calls, choice.tried[-1]["max_error"], max_error(y, reference), goal_peer=choice.method.goal_peer)
            work = counted.calls * batch
            row.limit_s = work * (FIELD_FLOPS / rates["fma_flops"] + 1 / rates["cos_per_s"])
            row.sums_limit_s = row.limit_s + work * choice.method.sum_flops / rates["fma_flops"]
            row.peak_limit_s = work * (FIELD_FLOPS / rates["peak_flops"] + 1 / rates["cos_per_s"])
            batch_rows.append(row)
            del y
        pairs = list(zip(chosen, batch_rows, strict=True))
        for round_ in range(ROUNDS[batch]):  # the order rotates: which method follows which changes the heap
            for choice, row in pairs[round_ % len(pairs):] + pairs[:round_ % len(pairs)]:
                assert choice.setting is not None
                gc.collect()
                faults = _minor_faults()
                start = time.perf_counter()
                choice.setting.run(f, y0, t)
                row.seconds.append(time.perf_counter() - start)
                if faults is not None:
                    row.page_faults.append(_minor_faults() - faults)  # type: ignore[operator]
        rows += batch_rows
    return rows


def _minor_faults() -> int | None:
    """Minor page faults of this process so far (a fresh page's first touch), where the OS tells."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# ------------------------------------------------------------------------------------ arithmetic limit


def throughput(run: Callable[[], object], work: float, calls: int = 200, repeats: int = 7) -> float:
    """Work per second of `run`, median over repeats of `calls` calls."""
    for _ in range(10):
        run()
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        per_call.append((time.perf_counter() - start) / calls)
    return work / statistics.median(per_call)


def machine_rates() -> dict[str, float]:
    """Float64 rates on this machine, one thread: elementwise fused multiply-add (addcmul, 65,536 elements,
    cache-resident so memory does not bound it), cos, and a 512x512 matmul (the FMA units' peak)."""
    n = 65_536
    a, b, c = (torch.rand(n, dtype=torch.float64) for _ in range(3))
    out = torch.empty_like(a)
    m = torch.rand(512, 512, dtype=torch.float64)
    product = torch.empty_like(m)
    return {
        "fma_flops": throughput(lambda: torch.addcmul(c, a, b, out=out), 2 * n),
        "cos_per_s": throughput(lambda: torch.cos(a, out=out), n),
        "peak_flops": throughput(lambda: torch.mm(m, m, out=product), 2 * 512**3, calls=10),
    }


# ----------------------------------------------------------------------------------------- report


def timing_table(rows: list[Row]) -> str:
    """One line per (box, B, method)."""
    header = ["box", "B", "method", "setting", "evals", "max error", "median s", "min s", "traj/s", "spread",
              "x limit", "x limit+sums"]
    cells = [[r.box, f"{r.batch:,}", r.method, r.setting[:44], f"{r.evaluations:,}", f"{r.error:.1e}",
              f"{r.median:.3f}", f"{min(r.seconds):.3f}", f"{r.rate:,.0f}", f"{r.spread:.0%}",
              f"{r.median / r.limit_s:.1f}", f"{r.median / r.sums_limit_s:.1f}"] for r in rows]
    return text_table(header, cells, {1, 4, 5, 6, 7, 8, 9, 10, 11})


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """Per (box, B): gmhf's fastest vs torchdiffeq's fastest at equal accuracy, among the goal's peers (rk4, dopri5)
    and among every torchdiffeq method tried."""
    out = []
    for box in dict.fromkeys(r.box for r in rows):
        for batch in BATCHES:
            here = [r for r in rows if r.box == box and r.batch == batch and r.error <= TOLERANCE]
            ours = [r for r in here if r.library == "gmhf"]
            peers = [r for r in here if r.library == "torchdiffeq" and r.goal_peer]
            others = [r for r in here if r.library == "torchdiffeq"]
            if not (ours and peers):
                continue
            best, peer, other = (min(group, key=lambda r: r.median) for group in (ours, peers, others))
            ratio = peer.median / best.median
            out.append({"box": box, "batch": batch, "gmhf": f"{best.method}, {best.setting}",
                        "torchdiffeq": f"{peer.method}, {peer.setting}", "ratio": ratio, "goal": GOAL,
                        "met": ratio >= GOAL, "torchdiffeq_any": f"{other.method}, {other.setting}",
                        "ratio_any": other.median / best.median})
    return out


def ratio_table(compared: list[dict[str, Any]]) -> str:
    """gmhf best / torchdiffeq best, with the goal."""
    header = ["box", "B", "gmhf best", "torchdiffeq best (rk4, dopri5)", "ratio", "goal", "met?",
              "vs any torchdiffeq method"]
    cells = [[c["box"], f"{c['batch']:,}", c["gmhf"], c["torchdiffeq"], f"{c['ratio']:.2f}x", f">= {GOAL:g}x",
              "yes" if c["met"] else "NO", f"{c['ratio_any']:.2f}x ({c['torchdiffeq_any'].split(',')[0]})"]
             for c in compared]
    return text_table(header, cells, {1, 4})


def notes(choices: list[Choice], boxes_: list[Box], rows: list[Row], rates: dict[str, float],
          start_load: list[float] | None) -> list[str]:
    """The search trails, the reference check, the machine's rates and the noise."""
    lines = []
    for box in boxes_:
        lines.append(f"reference ({box.name}): gmhf rk4 step {REFERENCE_STEP:g} on all {len(box.theta):,} "
                     f"({box.reference_s:.1f} s); max |reference - scipy DOP853 rtol 1e-10| on {CHECK_SUBSET} "
                     f"trajectories = {box.check_error:.1e}" + ("" if box.check_error <= TOLERANCE / 100 else
                                                                " - TOO LOOSE to judge 1e-4"))
    for choice in choices:
        trail = ", ".join(f"{t['setting']} -> {t['max_error']:.1e} ({t['evaluations']:,} evals)"
                          for t in choice.tried)
        verdict = "chosen: " + choice.setting.label if choice.setting else f"NO rung reached {TOLERANCE:g}"
        lines.append(f"search {choice.method.name}, {choice.box}, B={SEARCH_BATCH:,}: {trail}; {verdict}")
    for row in rows:
        if row.error > TOLERANCE:
            lines.append(f"{row.method}, {row.box}, B={row.batch:,}: error {row.error:.1e} exceeds {TOLERANCE:g} "
                         f"at this B (the setting was chosen on the first {SEARCH_BATCH:,})")
    lines.append(f"rates, 1 thread, float64: addcmul {rates['fma_flops'] / 1e9:.2f} GFLOP/s (65,536 elements), "
                 f"cos {rates['cos_per_s'] / 1e6:.0f} M/s, matmul {rates['peak_flops'] / 1e9:.1f} GFLOP/s")
    lines.append(f"arithmetic limit = evals x B x ({FIELD_FLOPS} flops / addcmul rate + 1 cos / cos rate): the field "
                 "alone; 'x limit' = median / limit. 'x limit+sums' adds each method's own sums per evaluation at the "
                 f"addcmul rate (RK4 {RK4_SUMS:g}, Dormand-Prince {DOPRI5_SUMS:.0f}, Adams order {ADAMS_ORDER} "
                 f"{ADAMS_SUMS:g} flops: its history sums outweigh the field). Against the matmul peak instead: "
                 + ", ".join(f"{r.method} {r.box} B={r.batch:,} {r.median / r.peak_limit_s:.1f}x"
                             for r in rows if r.batch == max(BATCHES)))
    faulted = [f"{r.method} {r.box} {statistics.median(r.page_faults):,.0f}" for r in rows
               if r.batch == max(BATCHES) and r.page_faults]
    if faulted:
        lines.append(f"minor page faults per run, median, B={max(BATCHES):,} (a 26 MB output is 6,400 fresh pages): "
                     + ", ".join(faulted))
    lines.append(load_note(rows, start_load, NOISY))
    return lines


def write_json(machine: dict[str, Any], rates: dict[str, float], boxes_: list[Box], choices: list[Choice],
               rows: list[Row], compared: list[dict[str, Any]], lines: list[str]) -> None:
    """Store the results for comparison across commits (bench/results/ is not tracked)."""
    document = {
        "benchmark": "ode", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine,
        "settings": {"seed": SEED, "batches": BATCHES, "search_batch": SEARCH_BATCH, "horizon": HORIZON,
                     "points": POINTS, "dtype": "float64", "tolerance": TOLERANCE, "steps": STEPS,
                     "tolerances": TOLERANCES, "reference_step": REFERENCE_STEP, "check_subset": CHECK_SUBSET,
                     "rounds": ROUNDS, "field_flops": FIELD_FLOPS, "goal": GOAL, "statistic": "median"},
        "rates": rates,
        "references": [{"box": b.name, "seconds": b.reference_s, "max_error_vs_dop853": b.check_error}
                       for b in boxes_],
        "search": [{"method": c.method.name, "box": c.box, "chosen": c.setting.label if c.setting else None,
                    "tried": c.tried} for c in choices],
        "rows": [r.to_json() for r in rows], "comparison": compared, "notes": lines,
    }
    write_results(RESULTS, document)


def main() -> int:
    """Search, time, print the tables and notes, write the JSON; exit 0 even when the goal is missed."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    machine = machine_info()
    started = time.perf_counter()
    t = grid()
    spacing = float(t[1] - t[0])
    methods = gmhf_methods(spacing)
    skipped = []
    if importlib.util.find_spec("torchdiffeq") is not None:
        methods += torchdiffeq_methods(spacing)
    else:
        skipped.append("torchdiffeq was not importable (`pip install -e .[bench]`): no side-by-side comparison")
    rates = machine_rates()
    problems = boxes()
    for box in problems:
        solve_reference(box, t)
    choices = [search(method, box, t) for box in problems for method in methods]
    rows = [row for box in problems for row in time_box(box, choices, t, rates)]
    compared = ratios(rows)
    lines = [*skipped, *notes(choices, problems, rows, rates, machine["load_average"])]
    print(timing_table(rows))
    print()
    if compared:
        print(ratio_table(compared))
        print()
    for line in lines:
        print(f"* {line}")
    print("\n" + footer(machine, time.perf_counter() - started, RESULTS))
    write_json(machine, rates, problems, choices, rows, compared, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
