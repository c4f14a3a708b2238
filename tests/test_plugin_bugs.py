"""Regression tests for bugs a third-party plugin author and a fuzzer found in the plugin host and the DSL."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import torch

import gmhf
from gmhf.core.constraints import Constraint, Expect, Invariant, Prefer, Require, Shift
from gmhf.errors import PluginError, UsageError
from gmhf.plugins.manager import build_host, using_plugins
from tests.plugins import extras, toy

ROOT = Path(__file__).parent.parent
EXAMPLE = str(ROOT / "examples" / "specs" / "sinusoid.guide")


def _ep(name: str, module: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=module, group="gmhf")


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from gmhf.cli import main

    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _subprocess(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GMHF_")}
    return subprocess.run([sys.executable, "-m", "gmhf", *args], capture_output=True, text=True,
                          env={**clean, **env}, cwd=ROOT, timeout=120)


def _distribution(root: Path, name: str, version: str, entry_points: dict[str, str],
                  modules: dict[str, str]) -> metadata.Distribution:
    """An installed-looking distribution under `root` (which the caller puts on sys.path)."""
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {module}\n" for ep, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gmhf]\n{lines}")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    return metadata.PathDistribution(info)


# ------------------------------------------------------------------ a. strict mode

def test_strict_plugins_command_prints_the_first_failure(capsys: pytest.CaptureFixture[str]) -> None:
    """`GMHF_STRICT_PLUGINS=1 gmhf plugins --json` prints `error: plugin NAME failed: …` and exits 4."""
    with using_plugins(entry_points=[_ep("bad_hook", "tests.plugins.broken_hook")],
                       env={"GMHF_STRICT_PLUGINS": "1"}):
        code, out, err = _cli("plugins", "--json", capsys=capsys)
    assert code == 4 and '"plugins"' in out
    assert "error: plugin bad_hook failed: gmhf_functions raised ValueError: registration blew up" in err


@pytest.mark.parametrize(("value", "strict"), [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False), (None, False),
])
def test_strict_plugins_values(value: str | None, strict: bool) -> None:
    """1/true/yes/on turn strict mode on; 0/false/no/off/empty (or unset) leave it off."""
    env = {} if value is None else {"GMHF_STRICT_PLUGINS": value}
    assert build_host(entry_points=[], env=env).strict is strict


def test_strict_plugins_rejects_other_values() -> None:
    """Any other value is a usage error naming the variable and the accepted values."""
    with pytest.raises(UsageError, match=r"`GMHF_STRICT_PLUGINS` must be one of .*got 'maybe'"):
        build_host(entry_points=[], env={"GMHF_STRICT_PLUGINS": "maybe"})


# ------------------------------------------------------------------ b. domain sources

def _domain_plugin(*factors: gmhf.Factor, name: str = "typo") -> object:
    class Typo(gmhf.Domain):
        space = gmhf.FactorSpace(factors=factors)

        def simulate(self, theta: Any, *, generator: Any = None, **options: Any) -> Any:
            return {"y": theta}

        def observe(self, theta: Any, data: Any) -> dict[str, Any]:
            return {}

    Typo.name = name

    class Plugin:
        @gmhf.hookimpl
        def gmhf_domains(self, register: Callable[..., None]) -> None:
            register(Typo())

    return Plugin()


@pytest.mark.parametrize(("source", "message"), [
    (("unifrom", 0.0, 1.0), "unknown distribution `unifrom`; did you mean `uniform`?"),
    (("normal", 1.0), "`normal` takes 2 parameters (mu, sigma), got 1"),
    (("uniform", 2.0, 1.0), "bad parameters for `uniform`: needs low < high, got 2 and 1"),
])
def test_domain_sources_are_checked_when_the_registry_is_built(source: tuple[Any, ...], message: str) -> None:
    """A factor source naming an unknown distribution, or with bad parameters, is a failure of its plugin."""
    plugin = _domain_plugin(gmhf.Factor.real("speed", 0.0, 10.0, source=source))  # type: ignore[arg-type]
    host = build_host(extra_plugins=[plugin], entry_points=[], env={})
    registry = host.build()
    assert "typo" not in registry.domains and {"sinusoid", "duffing"} <= set(registry.domains)
    assert host.plugins["Plugin"].errors == [f"gmhf_domains: domain `typo`, factor `speed`: source {message}"]


def test_domain_with_a_bad_source_fails_check_and_strict_mode(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    """`gmhf check` no longer says ok and `sample` no longer crashes; strict mode raises PluginError."""
    spec = tmp_path / "typo.guide"
    spec.write_text("domain typo\n")
    plugin = _domain_plugin(gmhf.Factor.real("speed", 0.0, 10.0, source=("unifrom", 0.0, 1.0)))
    with using_plugins(plugin):
        code, _, err = _cli("check", str(spec), capsys=capsys)
        assert code == 1 and "unknown domain `typo`" in err
        assert _cli("sample", str(spec), capsys=capsys)[0] == 1
    with using_plugins(plugin, env={"GMHF_STRICT_PLUGINS": "1"}), pytest.raises(PluginError, match="unifrom"):
        gmhf.load("domain typo\n")


# ------------------------------------------------------------------ c. disabling `builtin`

def test_builtin_plugin_cannot_be_disabled() -> None:
    """GMHF_DISABLE_PLUGINS=builtin is a usage error that says why, not a KeyError at sampling."""
    with pytest.raises(UsageError, match=r"`GMHF_DISABLE_PLUGINS` names `builtin`, which cannot be disabled"):
        build_host(entry_points=[], env={"GMHF_DISABLE_PLUGINS": "sinusoid, builtin"})


def test_cli_with_builtin_disabled_exits_2_with_a_message() -> None:
    """The command line reports the bad variable (exit 2), for `check` as for `sample`."""
    for args in (("check", EXAMPLE), ("sample", EXAMPLE, "-n", "2")):
        result = _subprocess(*args, env={"GMHF_DISABLE_PLUGINS": "builtin"})
        assert result.returncode == 2, result.stderr
        assert "error: `GMHF_DISABLE_PLUGINS` names `builtin`" in result.stderr


# ------------------------------------------------------------------ d. entry-point name clash

def test_two_distributions_with_the_same_entry_point_name_both_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each clashing entry point loads on its own; `gmhf plugins` shows both, in a defined order."""
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin = """
        import gmhf
        @gmhf.hookimpl
        def gmhf_functions(register):
            register(gmhf.FunctionKind(name="{name}", min_args=1, max_args=1, torch=lambda x: x))
    """
    beta = _distribution(tmp_path, "beta_dist", "2.0", {"shared": "clash_b"},
                         {"clash_b": plugin.format(name="from_b")})
    alpha = _distribution(tmp_path, "alpha_dist", "1.0", {"shared": "clash_a"},
                          {"clash_a": plugin.format(name="from_a")})
    host = build_host(entry_points=[*beta.entry_points, *alpha.entry_points], env={})
    registry = host.build()
    assert {"from_a", "from_b"} <= set(registry.functions)
    rows = [info for info in host.plugins.values() if info.origin == "entry point"]
    assert [(info.name, info.distribution) for info in rows] == [
        ("shared", "alpha_dist"), ("shared@beta_dist", "beta_dist")]
    assert not any(info.errors for info in rows)
    assert registry.origins[("functions", "from_b")] == "shared@beta_dist"


# ------------------------------------------------------------------ e. constraint roles

class _BonusBody:
    """`bonus F over x`: weight 1 where F > x (the body shared by the two soft kinds below)."""

    syntax = 'NAME "over" sum'

    def __init__(self, column: int, limit: float, *, where: str = "", factor: str = "") -> None:
        super().__init__(where=where, factors=(factor,))  # type: ignore[call-arg]
        self.column, self.limit = column, limit

    @classmethod
    def from_statement(cls, located: Any, context: Any) -> Any:
        name, _, limit = located.statement.parts
        return cls(context.column(name.id), limit.value, where=located.where, factor=name.id)

    def log_weight(self, theta: torch.Tensor) -> torch.Tensor:
        return (theta[:, self.column] > self.limit).to(theta.dtype)

    def max_log_weight(self) -> float:
        return 1.0


class _Bonus(_BonusBody, Constraint):
    """Soft, declaring its role."""

    keyword = "bonus"
    role = "soft"


class _LegacyBonus(_BonusBody, Constraint):
    """Soft, declared the old way with `hard = False`."""

    keyword = "oldbonus"
    hard = False


def test_constraint_roles_are_declared_on_the_class() -> None:
    """Every kind declares `role`; `hard` agrees with it, and a legacy `hard = False` means soft."""
    assert (Require.role, Prefer.role, Expect.role, Shift.role, Invariant.role) == (
        "hard", "soft", "data", "support", "support")
    assert (Require.hard, Prefer.hard, _Bonus.hard) == (True, False, False)

    class Legacy(Constraint):
        keyword = "legacy"
        hard = False

    assert Legacy.role == "soft"
    with pytest.raises(TypeError, match="`role`"):
        type("Bad", (Constraint,), {"keyword": "bad", "role": "squishy"})


@pytest.mark.parametrize("keyword", ["bonus", "oldbonus"])
def test_soft_plugin_keyword_is_soft_in_explain(keyword: str, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    """A soft plugin statement is listed with the soft constraints, not as a rejecting joint one."""
    cls = _Bonus if keyword == "bonus" else _LegacyBonus

    class Plugin:
        @gmhf.hookimpl
        def gmhf_statements(self, register: Callable[..., None]) -> None:
            register(cls, keyword=keyword, syntax=cls.syntax)

    text = f"domain sinusoid\n{keyword} amplitude over 3\n"
    with using_plugins(extras, Plugin()):
        data = gmhf.load(text).explain()
        assert not data["joint"]
        assert [p["statement"] for p in data["prefer"]] == [f"{keyword} amplitude over 3"]
        spec = tmp_path / "s.guide"
        spec.write_text(text)
        code, out, _ = _cli("explain", str(spec), capsys=capsys)
    assert code == 0 and "soft: reweights" in out and "probe draws accepted" not in out


# ------------------------------------------------------------------ f. quoted words vs factor names

def test_plugin_word_that_is_a_factor_name_is_refused() -> None:
    """A quoted word of a plugin's syntax that is a factor (or level) name is refused; the rest works."""
    class Words:
        @gmhf.hookimpl
        def gmhf_statements(self, register: Callable[..., None]) -> None:
            register("tests.plugins.extras:Cap", keyword="near", syntax='NAME "amplitude" NUMBER')
            register("tests.plugins.extras:Cap", keyword="far", syntax='NAME "rain" NUMBER')
            register("tests.plugins.extras:Cap", keyword="capped", syntax='NAME "at" sum')

    with using_plugins(toy, Words()) as host:
        registry = host.registry
        errors = host.plugins["Words"].errors
        assert "near" not in registry.statements and "far" not in registry.statements
        assert "capped" in registry.statements
        assert errors == [
            "gmhf_statements: the syntax of `near` makes `amplitude` a reserved word, but it is a factor "
            "of domain `sinusoid`; registration refused",
            "gmhf_statements: the syntax of `far` makes `rain` a reserved word, but it is a level "
            "of factor `weather` of domain `scenes`; registration refused"]  # the first domain with that level
        assert gmhf.load("domain sinusoid\nshift amplitude in 1 .. 2\ncapped amplitude at 4").sample(3, seed=0)


# ------------------------------------------------------------------ g. check_distribution and log_prob

class _OffByTwo(extras.Triangular):
    """Triangular whose log_prob is log(2) too high (its cdf and samples are right)."""

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return super().log_prob(x) + math.log(2)


def test_check_distribution_catches_a_log_prob_off_by_a_constant() -> None:
    """The density must agree with the cdf, not only the draws."""
    from gmhf.testing.contracts import ContractError, check_distribution

    check_distribution(extras.triangular, (0.0, 1.0, 3.0))
    with pytest.raises(ContractError, match=r"exp\(log_prob\) is 2\.000 times the slope of `cdf`"):
        check_distribution(lambda args: _OffByTwo(*args), (0.0, 1.0, 3.0))


# ------------------------------------------------------------------ h. internal errors name the plugin

def test_internal_error_in_a_plugin_factory_names_the_plugin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A distribution factory that raises is reported as a bug of the plugin that registered it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = _distribution(tmp_path, "boomdist", "0.3", {"boom": "boom_plugin"}, {"boom_plugin": """
        import gmhf
        def _factory(args):
            raise RuntimeError("factory broke")
        @gmhf.hookimpl
        def gmhf_distributions(register):
            register(gmhf.DistributionKind(name="boom", params=("a", "b"), factory="boom_plugin:_factory"))
    """})
    spec = tmp_path / "s.guide"
    spec.write_text("domain sinusoid\nprior amplitude ~ boom(1, 2)\n")
    with using_plugins(entry_points=list(dist.entry_points)):
        code, _, err = _cli("sample", str(spec), capsys=capsys)
    assert code == 3
    assert "internal error in plugin boom (boomdist 0.3): RuntimeError: factory broke" in err
    assert "internal error in gmhf" not in err


# ------------------------------------------------------------------ i. deep expressions

DEEP = {
    "sum": "require " + " + ".join(["amplitude"] * 3000) + " < 1",
    "minus": "require " + "- " * 500 + "amplitude < 1",
    "not": "require " + "not " * 500 + "amplitude < 1",
    "power": "require " + " ^ ".join(["amplitude"] * 500) + " < 1",
    "call": "require " + "abs(" * 200 + "amplitude" + ")" * 200 + " < 1",
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_deep_expressions_are_spec_errors(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Thousands of terms or deep nesting give a spec error at the statement, never a RecursionError."""
    text = f"domain sinusoid\n{DEEP[case]}\n"
    for action in (gmhf.parse, gmhf.load):
        with pytest.raises(gmhf.SpecError, match=r"2:\d+: error: expression nested too deeply: \d+ levels, at most"):
            action(text)
    spec = tmp_path / "deep.guide"
    spec.write_text(text)
    for args in (("check", str(spec)), ("fmt", "--check", str(spec)), ("sample", str(spec)),
                 ("explain", str(spec))):
        code, _, err = _cli(*args, capsys=capsys)
        assert code == 1 and "nested too deeply" in err, (args, err[-300:])


def test_deep_parentheses_are_handled(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Redundant parentheses build no nodes: a thousand levels of them load, sample and format."""
    text = ("domain sinusoid\nrequire " + "(" * 1000 + "amplitude" + ")" * 1000 + " < 4\n"
            "prior frequency ~ normal(" + "(" * 1000 + "1" + ")" * 1000 + ", 1)\n")
    g = gmhf.load(text)
    assert bool((g.sample(20, seed=0)["amplitude"] < 4).all())
    spec = tmp_path / "parens.guide"
    spec.write_text(text)
    assert _cli("fmt", str(spec), capsys=capsys)[0] == 0
    assert spec.read_text() == "domain sinusoid\nrequire amplitude < 4\nprior frequency ~ normal(1, 1)\n"


def test_deep_hand_built_trees_are_refused_by_check_and_fmt() -> None:
    """A tree built in Python (no parser) is refused by compile and by the formatter with a clear message."""
    from gmhf.dsl import ast
    from gmhf.dsl.format import format_statement

    expr: ast.Expr = ast.Name(id="amplitude")
    for _ in range(3000):
        expr = ast.Neg.model_construct(operand=expr, span=None)
    stmt = ast.Require.model_construct(expr=ast.Compare.model_construct(
        operands=(expr, ast.Number(value=1)), ops=("<",), span=None), span=None)
    spec = ast.Spec(statements=(ast.Domain(name=ast.Name(id="sinusoid")),)).model_copy(
        update={"statements": (ast.Domain(name=ast.Name(id="sinusoid")), stmt)})
    with pytest.raises(gmhf.SpecError, match="expression nested too deeply"):
        gmhf.compile(spec)
    with pytest.raises(ValueError, match="`stmt` is nested too deeply"):
        format_statement(stmt)


def test_moderately_nested_expressions_still_work() -> None:
    """Nesting well within the limit parses, checks, formats and samples."""
    text = "domain sinusoid\nrequire " + "(" * 60 + "amplitude" + ")" * 60 + " < " + " + ".join(["1"] * 60) + "\n"
    g = gmhf.load(text)
    assert bool((g.sample(50, seed=0)["amplitude"] < 60).all())
    assert "require amplitude < 1 + 1" in str(g)


# ------------------------------------------------------------------ j. docs

def test_plugin_docs_cover_what_authors_asked_about() -> None:
    """docs/plugins.md documents what the plugin author had to find out from the source."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for needle in ("`examples(theta, data)", '`"ok"`', "low_open=True", "high_open", "the built-ins `builtin`, "
                   "`sinusoid` and `duffing`", "Load order", "role = \"soft\"", "negative `NUMBER`"):
        assert needle in text, needle
    assert "is not caught at registration" not in text
    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for needle in ('"expect": {"applied": A, "checked"', '* `truncate`:', '* `acceptance_rate`:'):
        assert needle in cli, needle
