"""The scenes domain: pictures rendered per second, ProtoNet meta-iterations per second, and the payoff.

Run with `.venv/bin/python bench/scenes.py` (one torch thread). It prints three tables and writes
`bench/results/scenes.json`.

* Rendering: `Scenes().simulate` of 1,024 pictures (64 environments × 4 shapes × 4 pictures), with
  the weather drawn from the source (clear, fog) and from all four levels; also `render` alone.
  Median of REPEATS timed calls after one warm-up. Goal: ≥ 20,000 pictures/s on one thread.
* ProtoNet meta-iterations/s: one zero_grad / backward / Adam step on 32 tasks of 5-way 1-shot with
  10 queries (20 pictures a task), for the CNN `--hidden 40,40` (gmhf train's default) and the
  payoff's `16,16,32`; MAML (1 inner step) beside it for scale.
* The payoff: ProtoNet meta-trained through `gmhf.runner.start_training` on the spec's guidance
  (`examples/specs/scenes.guide`) and on the source (`domain scenes`), same seed (so the same
  initial CNN and the same 100 rain/snow target tasks), accuracy on those tasks, paired difference
  with its standard error, at STEPS meta-iterations for several seeds. `--quick` skips it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import ROOT, machine_info, text_table, write_results  # bench/common.py (run as a script)

REPEATS = 15
PAYOFF: dict[str, Any] = {"learner": "protonet", "hidden": (16, 16, 32), "meta_batch": 8, "support": 5, "query": 10,
          "pool_size": 128, "refresh_every": 25, "outer_lr": 5e-3, "eval_tasks": 100, "checkpoint_every": 10_000}
STEPS = (150, 300)
SEEDS = (0, 1, 2, 3)


def _median_seconds(call: object, repeats: int = REPEATS) -> float:
    assert callable(call)
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def rendering() -> list[dict[str, object]]:
    """Pictures per second for 1,024 pictures, by weather mix."""
    from gmhf.domains.scenes import Scenes
    from gmhf.domains.scenes.render import render

    domain, rows = Scenes(), []
    generator = torch.Generator().manual_seed(0)
    for mix, levels in (("source (clear, fog)", (0, 1)), ("all four", (0, 1, 2, 3))):
        theta = torch.tensor([[0.3 + 0.7 * i / 63, levels[i % len(levels)], 0.5, 0.25, 0.025] for i in range(64)],
                             dtype=torch.float64)
        seconds = _median_seconds(lambda theta=theta: domain.simulate(theta, generator=generator, ways=4, per_class=4))
        rows.append({"what": f"simulate, {mix}", "pictures": 1024, "seconds": seconds, "per_second": 1024 / seconds})
    m = 1024
    shapes, weather = torch.arange(m) % 6, torch.arange(m) % 4
    values = [torch.full((m,), v) for v in (0.7, 0.5, 0.25, 0.025)]
    seconds = _median_seconds(lambda: render(shapes, weather, *values, generator=generator))
    rows.append({"what": "render alone, all four", "pictures": m, "seconds": seconds, "per_second": m / seconds})
    return rows


def meta_iterations() -> list[dict[str, object]]:
    """ProtoNet (and MAML) meta-iterations per second on 32 scenes tasks."""
    import gmhf
    from gmhf.core.learners import MAML, ProtoNet
    from gmhf.core.tasks import TaskPool
    from gmhf.domains.scenes.model import cnn

    pool = TaskPool.from_spec(gmhf.load("domain scenes"), size=256, support=5, query=10, seed=0)
    batch = pool.sample(32)
    rows = []
    for name, hidden in (("protonet", (40, 40)), ("protonet", (16, 16, 32)), ("maml", (16, 16, 32))):
        stream = torch.Generator().manual_seed(0)
        learner: ProtoNet | MAML
        if name == "protonet":
            learner = ProtoNet(cnn((3, 32, 32), hidden[-1], hidden, generator=stream), ways=5)
        else:
            learner = MAML(cnn((3, 32, 32), 5, hidden, generator=stream), inner_steps=1, inner_lr=0.1,
                           loss="cross_entropy")
        optimizer = torch.optim.Adam(learner.model.parameters(), lr=1e-3)

        def step(learner: ProtoNet | MAML = learner, optimizer: torch.optim.Optimizer = optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)
            learner.backward(batch)
            optimizer.step()
        seconds = _median_seconds(step, repeats=7)
        rows.append({"learner": name, "hidden": list(hidden), "tasks": 32, "seconds": seconds,
                     "per_second": 1 / seconds})
    return rows


def payoff(steps: int, seed: int) -> dict[str, object]:
    """Guided vs source-only ProtoNet, paired over the same 100 rain/snow target tasks."""
    from gmhf.core.trainer import TrainConfig
    from gmhf.domains.scenes.accuracy import task_accuracy
    from gmhf.runner import start_training

    accuracy = {}
    started = time.perf_counter()
    for name, spec in (("guided", str(ROOT / "examples" / "specs" / "scenes.guide")), ("source", "domain scenes")):
        with tempfile.TemporaryDirectory() as folder:
            built = start_training(TrainConfig(spec=spec, steps=steps, seed=seed, **PAYOFF), Path(folder) / "run")
            built.trainer.run()
            accuracy[name] = task_accuracy(built.trainer.learner, built.trainer.eval_batch)
    difference = accuracy["guided"] - accuracy["source"]
    return {"steps": steps, "seed": seed, "guided": float(accuracy["guided"].mean()),
            "source": float(accuracy["source"].mean()), "difference": float(difference.mean()),
            "stderr": float(difference.std() / len(difference) ** 0.5), "seconds": time.perf_counter() - started}


def main() -> None:
    torch.set_num_threads(1)
    document: dict[str, object] = {"machine": machine_info(peers=())}
    render_rows = rendering()
    print(text_table(["what", "pictures", "median s", "pictures/s"],
                     [[str(r["what"]), str(r["pictures"]), f"{r['seconds']:.4f}", f"{r['per_second']:,.0f}"]
                      for r in render_rows], {1, 2, 3}))
    print("goal: >= 20,000 pictures/s on one thread\n")
    meta_rows = meta_iterations()
    print(text_table(["learner", "hidden", "tasks", "median s", "meta-it/s"],
                     [[str(r["learner"]), str(r["hidden"]), str(r["tasks"]), f"{r['seconds']:.4f}",
                       f"{r['per_second']:.2f}"] for r in meta_rows], {2, 3, 4}))
    document.update(rendering=render_rows, meta_iterations=meta_rows)
    if "--quick" not in sys.argv:
        payoff_rows = []
        for steps in STEPS:
            for seed in SEEDS:
                payoff_rows.append(payoff(steps, seed))
                row = payoff_rows[-1]
                print(f"payoff steps {steps} seed {seed}: guided {row['guided']:.3f} source {row['source']:.3f} "
                      f"difference {row['difference']:+.3f} ± {row['stderr']:.3f} ({row['seconds']:.0f} s)", flush=True)
        print()
        print(text_table(["steps", "seed", "guided", "source", "difference", "stderr"],
                         [[str(r["steps"]), str(r["seed"]), f"{r['guided']:.3f}", f"{r['source']:.3f}",
                           f"{r['difference']:+.3f}", f"{r['stderr']:.3f}"] for r in payoff_rows], {0, 1, 2, 3, 4, 5}))
        document["payoff"] = {"settings": {k: list(v) if isinstance(v, tuple) else v for k, v in PAYOFF.items()},
                              "rows": payoff_rows}
    write_results(ROOT / "bench" / "results" / "scenes.json", document)


if __name__ == "__main__":
    main()
