"""The plugin host: isolation of failing plugins, strict mode, env vars, and a test plugin's extensions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
import torch

import gmhf
import gmhf.dsl.parse
from gmhf.dsl.format import format_spec
from gmhf.errors import PluginError
from gmhf.plugins.manager import build_host, using_plugins
from tests.plugins import toy

SPEC = "domain sinusoid\nprior amplitude ~ triangular(1, 2, 6)\ncap amplitude at 4\nrequire sq(frequency) < 1.2\n"


def _ep(name: str, module: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=module, group="gmhf")


def test_plugin_keyword_distribution_and_function_work_together() -> None:
    """A spec using a plugin's keyword, distribution and function compiles and samples correctly."""
    theta = gmhf.load(SPEC).sample(20_000, seed=0)
    a, f = theta["amplitude"], theta["frequency"]
    assert bool((a <= 4).all()) and bool((f * f < 1.2).all())
    # triangular(1, 2, 6) capped at 4: P(a < 2 | a <= 4) = F(2) / F(4) = 0.2 / 0.8 (±0.02, 5 SE)
    assert float((a < 2).double().mean()) == pytest.approx(0.25, abs=0.02)


def test_plugin_statement_round_trips_through_fmt() -> None:
    """fmt prints a plugin statement so that it parses back to the same tree."""
    assert format_spec(gmhf.parse(SPEC)) == SPEC


def test_plugin_statement_checks_report_at_the_statement() -> None:
    """A plugin's torch-free `check` reports unknown names with a location."""
    with pytest.raises(gmhf.SpecError) as caught:
        gmhf.load("domain sinusoid\ncap amplitud at 4")
    assert (caught.value.line, caught.value.column) == (2, 5)


def test_keyword_unknown_without_the_plugin() -> None:
    """Without the plugin loaded, its keyword is an unknown keyword."""
    with using_plugins(), pytest.raises(gmhf.SpecError, match="unknown keyword `cap`"):
        gmhf.load("domain sinusoid\ncap amplitude at 4")


def test_failing_plugins_are_reported_and_the_rest_still_work() -> None:
    """A plugin failing at import and one raising in a hook are recorded; built-ins still work."""
    eps = [_ep("bad_import", "tests.plugins.broken_import"), _ep("bad_hook", "tests.plugins.broken_hook"),
           _ep("extras", "tests.plugins.extras")]
    with using_plugins(toy, entry_points=eps) as host:
        registry = host.registry
        assert "import of 'tests.plugins.broken_import' failed" in host.plugins["bad_import"].errors[0]
        assert "raised ValueError: registration blew up" in host.plugins["bad_hook"].errors[0]
        assert {"triangular", "normal"} <= set(registry.distributions)
        assert gmhf.load(SPEC).sample(10, seed=0).values.shape == (10, 4)


def test_strict_mode_raises() -> None:
    """GMHF_STRICT_PLUGINS=1 turns a plugin failure into PluginError."""
    host = build_host(entry_points=[_ep("bad_hook", "tests.plugins.broken_hook")], env={"GMHF_STRICT_PLUGINS": "1"})
    with pytest.raises(PluginError, match="bad_hook"):
        host.registry  # noqa: B018


def test_duplicate_names_keep_the_first_and_blame_the_second() -> None:
    """Registering a name twice keeps the built-in and reports the plugin that clashed."""
    class Clash:
        @gmhf.hookimpl
        def gmhf_functions(self, register):  # type: ignore[no-untyped-def]
            register(gmhf.FunctionKind(name="abs", min_args=1, max_args=1, torch="torch:abs"))

    host = build_host(extra_plugins=[Clash()], entry_points=[], env={})
    assert host.registry.origins[("functions", "abs")] == "builtin"
    assert "already registered by plugin 'builtin'" in host.plugins["Clash"].errors[0]


def test_misspelt_hook_is_rejected_by_check_pending() -> None:
    """A hookimpl with no matching hookspec is caught by check_pending and reported."""
    class Typo:
        @gmhf.hookimpl
        def gmhf_domain(self, register):  # type: ignore[no-untyped-def]
            pass

    host = build_host(extra_plugins=[Typo()], entry_points=[], env={})
    assert "rejected by the plugin manager" in host.plugins["Typo"].errors[0]


def test_load_and_disable_env_vars() -> None:
    """GMHF_LOAD_PLUGINS picks entry points; GMHF_DISABLE_PLUGINS drops plugins, built-ins too."""
    eps = [_ep("extras", "tests.plugins.extras"), _ep("toy", "tests.plugins.toy")]
    host = build_host(entry_points=eps, env={"GMHF_LOAD_PLUGINS": "toy"})
    assert "toy" in host.plugins and "extras" not in host.plugins
    host = build_host(entry_points=eps, env={"GMHF_DISABLE_PLUGINS": "sinusoid, extras"})
    assert set(host.plugins) == {"builtin", "duffing", "scenes", "toy"}
    assert "sinusoid" not in host.registry.domains


@pytest.fixture()
def installed_broken_plugins(tmp_path: Path) -> dict[str, str]:
    """A distribution `badplug 1.2.3` on PYTHONPATH with two broken entry points and one good one."""
    info = tmp_path / "badplug-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badplug\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(
        "[gmhf]\nbad_import = badplug_import\nbad_hook = badplug_hook\ngood = badplug_good\n")
    (tmp_path / "badplug_import.py").write_text("raise RuntimeError('cannot import me')\n")
    (tmp_path / "badplug_hook.py").write_text(textwrap.dedent("""
        import gmhf
        @gmhf.hookimpl
        def gmhf_functions(register):
            raise ValueError('hook failed')
    """))
    (tmp_path / "badplug_good.py").write_text(textwrap.dedent("""
        import gmhf
        @gmhf.hookimpl
        def gmhf_functions(register):
            register(gmhf.FunctionKind(name="twice", min_args=1, max_args=1, torch=lambda x: 2 * x))
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMHF_")}
    env["PYTHONPATH"] = str(tmp_path)
    return env


def _gmhf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmhf", *args], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parent.parent, timeout=120)


def test_cli_reports_installed_broken_plugins_with_distribution_and_version(
        installed_broken_plugins: dict[str, str]) -> None:
    """`gmhf plugins --json` names each failing plugin's distribution and version; others still work."""
    result = _gmhf("plugins", "--json", env=installed_broken_plugins)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    for name in ("bad_import", "bad_hook"):
        assert (plugins[name]["distribution"], plugins[name]["version"]) == ("badplug", "1.2.3")
        assert plugins[name]["errors"]
    assert plugins["good"]["registers"] == {"functions": ["twice"]} and not plugins["good"]["errors"]
    assert plugins["builtin"]["origin"] == "builtin"
    checked = _gmhf("check", "examples/specs/sinusoid.guide", env=installed_broken_plugins)
    assert checked.returncode == 0, checked.stderr


def test_cli_strict_mode_exits_4(installed_broken_plugins: dict[str, str]) -> None:
    """With GMHF_STRICT_PLUGINS=1 a broken plugin makes `gmhf plugins` and `gmhf check` exit 4."""
    env = {**installed_broken_plugins, "GMHF_STRICT_PLUGINS": "1"}
    assert _gmhf("plugins", env=env).returncode == 4
    result = _gmhf("check", "examples/specs/sinusoid.guide", env=env)
    assert result.returncode == 4 and "badplug 1.2.3" in result.stderr


def test_constraint_modules_hold_buffers_not_parameters() -> None:
    """A compiled spec has no learnable parameters: beliefs are not trained."""
    g = gmhf.load(SPEC)
    assert list(g.parameters()) == []
    assert any(isinstance(b, torch.Tensor) for b in g.buffers())


def test_bad_plugin_syntax_and_reserved_keywords_are_reported_against_the_plugin() -> None:
    """A keyword whose syntax does not build, or that takes a reserved word, costs only its plugin."""
    class Bad:
        @gmhf.hookimpl
        def gmhf_statements(self, register):  # type: ignore[no-untyped-def]
            register("tests.plugins.extras:Cap", keyword="near", syntax="NAME (((")
            register("tests.plugins.extras:Cap", keyword="trust", syntax="NAME")

    host = build_host(extra_plugins=[Bad()], entry_points=[], env={})
    registry = host.registry
    errors = host.plugins["Bad"].errors
    assert "near" not in registry.statements and "does not build" in errors[0] and "reserved word" in errors[1]
    assert gmhf.dsl.parse.parse("domain sinusoid", extensions=host.registry.extensions())


def test_commands_hook_runs_once_and_strict_plugins_still_lists(capsys: pytest.CaptureFixture[str]) -> None:
    """`gmhf plugins` calls each gmhf_commands once, and in strict mode still prints before exiting 4."""
    calls = []

    class Counting:
        @gmhf.hookimpl
        def gmhf_commands(self, register):  # type: ignore[no-untyped-def]
            calls.append(1)

    from gmhf.cli import main

    with using_plugins(Counting(), entry_points=[_ep("bad_hook", "tests.plugins.broken_hook")],
                       env={"GMHF_STRICT_PLUGINS": "1"}), pytest.raises(SystemExit) as done:
        main(["plugins", "--json"])
    assert done.value.code == 4 and len(calls) == 1
    assert "registration blew up" in capsys.readouterr().out
