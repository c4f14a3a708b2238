"""One test per hook: a plugin implementing it gets its registration into the registry (or CLI)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

import gmhf
from gmhf.core.learners import MAML
from gmhf.core.trainer import TrainConfig
from gmhf.plugins import hookspecs
from gmhf.plugins.manager import build_host, using_plugins
from gmhf.runner import start_training
from tests.plugins import extras, toy


def test_every_hook_has_a_test() -> None:
    """Each hook in hookspecs.HOOKS has a `test_hook_<name>` in this file."""
    here = sys.modules[__name__]
    missing = [h for h in hookspecs.HOOKS if not hasattr(here, f"test_hook_{h}")]
    assert missing == []


def _host(*plugins: object):  # type: ignore[no-untyped-def]
    return build_host(extra_plugins=plugins, entry_points=[], env={})


def test_hook_gmhf_statements() -> None:
    """A registered statement class becomes a keyword of the language."""
    host = _host(extras)
    assert host.registry.statements["cap"].syntax == 'NAME "at" sum'
    assert host.plugins["tests.plugins.extras"].registers["statements"] == ["cap"]


def test_hook_gmhf_distributions() -> None:
    """A registered distribution is usable in `prior`."""
    assert "triangular" in _host(extras).registry.distributions


def test_hook_gmhf_functions() -> None:
    """A registered function is usable in expressions."""
    assert _host(extras).registry.functions["sq"].max_args == 1


def test_hook_gmhf_domains() -> None:
    """A registered domain is usable with `domain NAME`."""
    assert _host(toy).registry.domains["toy"].space.names == ("speed", "mass", "cars", "weather")


class OneStepMAML(MAML):
    """A plugin's learner: MAML that always adapts with a single inner step."""

    name = "one-step-maml"

    def __init__(self, model: object, **options: object) -> None:
        super().__init__(model, **{**options, "inner_steps": 1})  # type: ignore[arg-type]


def test_hook_gmhf_learners(tmp_path: Path) -> None:
    """A registered learner is found by name and trains a run like a built-in one."""
    class Learners:
        @gmhf.hookimpl
        def gmhf_learners(self, register):  # type: ignore[no-untyped-def]
            register("one-step-maml", f"{__name__}:OneStepMAML")

    assert _host(Learners()).registry.learners["one-step-maml"] == f"{__name__}:OneStepMAML"
    with using_plugins(toy, extras, Learners()):
        config = TrainConfig(spec="domain sinusoid", learner="one-step-maml", steps=2, meta_batch=2, pool_size=8,
                             eval_tasks=4, hidden=(4,))
        trainer = start_training(config, tmp_path / "run").trainer
        assert isinstance(trainer.learner, OneStepMAML) and trainer.learner.inner_steps == 1
        assert set(trainer.run().deployment) == {"k0", "k1"}


def test_hook_gmhf_experts() -> None:
    """A registered expert is found by name."""
    class Experts:
        @gmhf.hookimpl
        def gmhf_experts(self, register):  # type: ignore[no-untyped-def]
            register("oracle", object)

    experts = _host(Experts()).registry.experts
    assert experts["oracle"] is object and {"simulated", "terminal"} <= set(experts)


def test_hook_gmhf_commands() -> None:
    """A registered click command becomes `gmhf NAME`, listed in --help."""
    @click.command()
    def hello() -> None:
        """Say hello."""
        click.echo("hello from a plugin")

    class Commands:
        @gmhf.hookimpl
        def gmhf_commands(self, register):  # type: ignore[no-untyped-def]
            register(hello)

    from gmhf.cli import cli

    with using_plugins(Commands()):
        runner = CliRunner()
        assert "hello" in runner.invoke(cli, ["--help"]).output
        assert runner.invoke(cli, ["hello"]).output == "hello from a plugin\n"
