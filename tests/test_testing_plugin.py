"""The pytest plugin, run in a scratch project with pytester: spec files as tests, fixtures, and its cost.

The inner runs are in-process, so they see the toy test domain that conftest registers; the modules
they use are imported here first, so pytester's restore of sys.modules keeps them loaded.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import hypothesis  # noqa: F401  (loaded before the inner runs, see above)
import pytest
import torch  # noqa: F401

import gmhf
import gmhf.testing._environments  # noqa: F401
import gmhf.testing._fixtures  # noqa: F401
import gmhf.testing.strategies  # noqa: F401
from gmhf.plugins.manager import using_plugins
from gmhf.testing._spec_checks import Options, check_spec_file
from tests.plugins import extras, toy

pytest_plugins = ("pytester",)
# gmhf is imported before the inner runs start, so their pytest cannot rewrite its asserts: expected here.
QUIET = ("-W", "ignore::pytest.PytestAssertRewriteWarning")

GOOD = "domain toy\nshift speed in 2 .. 4\nexpect peak < 5\n"
# speed 2 .. 8 but data peaks at speed: every speed >= 5 breaks the expect. The source medians are speed 2,
# mass 50, cars 5 and weather clear, so the counterexample nearest the source is speed = 5 and the rest there.
BAD = "domain toy\nshift speed in 2 .. 8\n\nexpect peak < 5\n"


def test_a_good_and_a_bad_spec_give_one_pass_and_one_failure(pytester: pytest.Pytester) -> None:
    """The failure names the file, the line, the statement and the shrunk counterexample."""
    pytester.makefile(".guide", good=GOOD, bad=BAD)
    result = pytester.runpytest("--gmhf-specs", *QUIET)
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    match = re.search(r"bad\.guide:4: `expect peak < 5` fails on generated data.*\n\s+counterexample "
                      r"\(shrunk toward the source\): speed=(\S+), mass=50, cars=5, weather=clear", text)
    assert match, text
    assert 5 <= float(match.group(1)) <= 5.001  # the smallest failing speed, to the shown 4 digits


def test_specs_are_collected_only_when_asked(pytester: pytest.Pytester) -> None:
    """Without --gmhf-specs nothing is collected; `gmhf_specs = true` in the ini file turns it on."""
    pytester.makefile(".guide", good=GOOD)
    assert pytester.runpytest(*QUIET).ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.makeini("[pytest]\ngmhf_specs = true\n")
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


def test_a_spec_that_does_not_check_shows_its_diagnostics(pytester: pytest.Pytester) -> None:
    """A misspelt factor fails with path:line:col, the caret and the hint, and no Python traceback."""
    pytester.makefile(".guide", typo="domain toy\nshift sped in 2 .. 4\n")
    result = pytester.runpytest("--gmhf-specs", *QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["typo.guide: does not check:", "typo.guide:2:7: error: unknown factor `sped`",
                                 "*hint: did you mean `speed`?"])
    assert "Traceback" not in result.stdout.str() and "_spec_checks.py" not in result.stdout.str()


def test_empty_supports_and_no_op_statements_fail(pytester: pytest.Pytester) -> None:
    """A `prefer` whose condition never holds on the believed marginals is reported at its line."""
    pytester.makefile(".guide", noop="domain toy\nshift speed in 2 .. 4\nprefer speed > 5 weight 1\n")
    result = pytester.runpytest("--gmhf-specs", *QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["noop.guide:3: `prefer speed > 5 weight 1` has no effect*"])


def test_fmt_check_is_optional(pytester: pytest.Pytester) -> None:
    """An unformatted spec passes, and fails with a diff under --gmhf-fmt."""
    pytester.makefile(".guide", loose="domain toy;   shift speed in 2..4\n")
    pytester.runpytest("--gmhf-specs", *QUIET).assert_outcomes(passed=1)
    result = pytester.runpytest("--gmhf-specs", "--gmhf-fmt", *QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["loose.guide: is not formatted*", "*-domain toy;   shift speed in 2..4",
                                 "*+domain toy", "*+shift speed in 2 .. 4"])


def test_bad_examples_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """`gmhf_examples` must be a positive integer."""
    pytester.makefile(".guide", good=GOOD)
    pytester.makeini("[pytest]\ngmhf_examples = many\n")
    result = pytester.runpytest("--gmhf-specs", *QUIET)
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*gmhf_examples must be a positive integer, got 'many'*"])


def test_fixtures_load_the_marked_spec_with_only_the_named_plugins(pytester: pytest.Pytester) -> None:
    """`gmhf_guidance` loads the marker's spec (relative to the test file); `gmhf_plugins` isolates the host."""
    pytester.makefile(".guide", target="domain sinusoid\ncap amplitude at 2\n")
    pytester.makepyfile(test_model="""
        import pytest

        @pytest.mark.gmhf_plugins("tests.plugins.extras")
        @pytest.mark.gmhf_spec("target.guide")
        def test_loaded(gmhf_plugins, gmhf_guidance):
            assert "cap" in gmhf_plugins.registry.statements
            assert "toy" not in gmhf_plugins.registry.domains  # registered outside, not named: left out
            theta = gmhf_guidance.sample(50, seed=0)
            assert bool(gmhf_guidance.accepts(theta).all()) and float(theta["amplitude"].max()) <= 2

        @pytest.mark.gmhf_spec("domain sinusoid; shift amplitude in 1 .. 2")
        def test_text(gmhf_guidance):
            assert gmhf_guidance.space.names[0] == "amplitude"

        def test_unmarked(gmhf_guidance):
            pass
    """)
    result = pytester.runpytest("--strict-markers", *QUIET)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the `gmhf_guidance` fixture needs `@pytest.mark.gmhf_spec(*"])


def test_entry_point_is_registered() -> None:
    """pytest finds the plugin as `gmhf` in the pytest11 group (so `-p no:gmhf` disables it)."""
    (point,) = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "gmhf"]
    assert point.value == "gmhf.testing._pytest_plugin"


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """Importing the plugin module loads neither torch, nor Hypothesis, nor gmhf's compiler."""
    code = ("import sys, gmhf.testing._pytest_plugin; heavy = [m for m in ('torch', 'hypothesis', 'lark', "
            "'pydantic', 'gmhf.core', 'gmhf.dsl', 'gmhf.api') if m in sys.modules]; print(heavy); "
            "assert not heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ the checks behind the items


class _Fickle(extras.Cap):
    """Accepts rows up to the batch's median: rows the sampler kept, another batch rejects."""

    keyword = "fickle"

    def accepts(self, theta: torch.Tensor) -> torch.Tensor:
        return theta[:, self.column] <= theta[:, self.column].median()


class _Register:
    @gmhf.hookimpl
    def gmhf_statements(self, register: Callable[..., None]) -> None:
        register(_Fickle)


def test_samples_that_break_a_hard_statement_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample check names the statement and an environment it rejects."""
    (tmp_path / "fickle.guide").write_text("domain toy\nfickle speed at 2\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with using_plugins(toy, _Register()):
        findings = check_spec_file(tmp_path / "fickle.guide", "fickle.guide", Options(examples=1))
    (finding,) = [f for f in findings if "environments sampled from the spec" in f.message]
    assert finding.where == "fickle.guide:2" and finding.statement == "fickle speed at 2"
    assert finding.counterexample is not None and finding.counterexample.startswith("speed=")


def test_stochastic_simulator_counterexample_keeps_other_factors_at_the_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sinusoid data are noisy (rows simulated one at a time, same seed). Shrinking trades the noise back to
    its source median 0.05 for a little more amplitude, so only amplitude stays away from the source."""
    text = "domain sinusoid\nshift amplitude in 3 .. 8\nprior noise between 0.1 and 0.3 with 90%\nexpect max(abs(y)) < 8\n"
    (tmp_path / "wave.guide").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    (finding,) = check_spec_file(tmp_path / "wave.guide", "wave.guide", Options())
    assert finding.where == "wave.guide:4" and finding.counterexample is not None
    values = dict(pair.split("=") for pair in finding.counterexample.split(", "))
    assert (values["phase"], values["frequency"], values["noise"]) == ("1.571", "1", "0.05")
    assert 7.8 <= float(values["amplitude"]) < 8  # 8 minus the noise's largest push over 50 points, at most ~0.2


def test_docs_failure_example_is_what_the_plugin_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/testing.md shows a spec and its failure; the plugin prints exactly that failure for it."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text(encoding="utf-8")
    (spec,) = re.findall(r"^```guide\n(.*?)^```", docs, re.M | re.S)
    shown = re.search(r"^```\n(specs/target\.guide:.*?)\n```", docs, re.M | re.S)
    assert shown is not None
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "target.guide").write_text(spec, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    findings = check_spec_file(tmp_path / "specs" / "target.guide", "specs/target.guide", Options())
    assert "\n\n".join(f.render() for f in findings) == shown.group(1)
