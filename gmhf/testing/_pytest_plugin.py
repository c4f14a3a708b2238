"""gmhf's pytest plugin (entry point `gmhf` in the group `pytest11`): `.guide` files as tests, two fixtures.

pytest imports this module on every run in every environment where gmhf is installed, so it
imports only pytest and the standard library (`gmhf` and `gmhf.testing` themselves are lazy);
torch, Hypothesis and the compiler load inside the hooks that need them, and spec files are
collected only with `--gmhf-specs` or `gmhf_specs = true`. Disable it with `-p no:gmhf`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gmhf.core.guidance import Guidance
    from gmhf.plugins.manager import PluginHost

_MARKERS = (
    "gmhf_spec(path_or_text, *, domain=None): the spec the `gmhf_guidance` fixture loads (a path is relative "
    "to the test file)",
    "gmhf_plugins(*plugins): plugins for the `gmhf_plugins` fixture besides the built-ins: objects, "
    "'module[:attribute]' strings or names of installed gmhf entry points",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--gmhf-specs`, `--gmhf-fmt`, `--gmhf-examples` and their ini options."""
    group = parser.getgroup("gmhf", "gmhf guidance specs")
    group.addoption("--gmhf-specs", action="store_true", default=None, dest="gmhf_specs",
                    help="collect *.guide files as tests: they check and load, every statement's support is "
                         "non-empty, samples satisfy every require, expects hold on generated data.")
    group.addoption("--gmhf-fmt", action="store_true", default=None, dest="gmhf_fmt",
                    help="with --gmhf-specs, also fail spec files that `gmhf fmt` would change.")
    group.addoption("--gmhf-examples", type=int, default=None, dest="gmhf_examples", metavar="N",
                    help="Hypothesis examples per spec for the expect check, each a batch of 32 environments "
                         "(default 8).")
    parser.addini("gmhf_specs", type="bool", default=False, help="collect *.guide files as tests (--gmhf-specs).")
    parser.addini("gmhf_fmt", type="bool", default=False, help="also check that spec files are formatted.")
    parser.addini("gmhf_examples", default="8", help="Hypothesis examples per spec for the expect check.")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers (so that `--strict-markers` accepts them); check `gmhf_examples` early."""
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    if _setting(config, "gmhf_specs"):
        _examples(config)


def _examples(config: pytest.Config) -> int:
    raw = _setting(config, "gmhf_examples")
    try:
        examples = int(raw)
    except ValueError:
        examples = 0
    if examples < 1:
        raise pytest.UsageError(f"gmhf_examples must be a positive integer, got {raw!r}")
    return examples


def _setting(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    return config.getini(name) if value is None else value


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A `.guide` file becomes a `GuideFile` when spec collection is on."""
    if file_path.suffix != ".guide" or not _setting(parent.config, "gmhf_specs"):
        return None
    return GuideFile.from_parent(parent, path=file_path)


class GuideFile(pytest.File):
    """A spec file: one test item that runs every check on it."""

    def collect(self) -> Iterator[pytest.Item]:
        """The file's single item, `path::spec`."""
        yield GuideItem.from_parent(self, name="spec")


class SpecCheckFailed(Exception):
    """The findings of a spec file, already rendered: reported without a Python traceback."""


class GuideItem(pytest.Item):
    """Checks one spec file; fails with every finding (file, line, statement, shrunk counterexample)."""

    def runtest(self) -> None:
        """Run the checks of `gmhf.testing._spec_checks` and fail with their findings."""
        from gmhf.testing._spec_checks import Options, check_spec_file

        try:
            display = os.path.relpath(self.path)
        except ValueError:  # another drive
            display = str(self.path)
        options = Options(examples=_examples(self.config), fmt=bool(_setting(self.config, "gmhf_fmt")))
        findings = check_spec_file(self.path, display, options)
        if findings:
            raise SpecCheckFailed("\n\n".join(f.render() for f in findings))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The findings as they are; other errors (a plugin's bug) with their traceback."""
        if isinstance(excinfo.value, SpecCheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int | None, str]:
        """Where the item comes from, for `-v` and failure headers."""
        return self.path, None, f"gmhf spec {self.path.name}"


@pytest.fixture
def gmhf_plugins(request: pytest.FixtureRequest) -> Iterator[PluginHost]:
    """A plugin host with only the built-ins and the plugins of `@pytest.mark.gmhf_plugins(...)`.

    Installed entry points are ignored unless named in the marker; the process-wide host is
    restored after the test. Yields the `PluginHost` (`host.failures` lists plugin errors).
    """
    from gmhf.testing._fixtures import isolated_plugins

    marker = request.node.get_closest_marker("gmhf_plugins")
    with isolated_plugins(marker.args if marker else ()) as host:
        yield host


@pytest.fixture
def gmhf_guidance(request: pytest.FixtureRequest) -> Guidance:
    """The spec named by `@pytest.mark.gmhf_spec("path.guide")`, compiled (`gmhf.load`).

    A path is relative to the test file's folder; `domain=` is passed to `gmhf.load`. When the test
    also uses `gmhf_plugins`, the spec is loaded with those plugins.
    """
    from gmhf.testing._fixtures import load_marked

    marker = request.node.get_closest_marker("gmhf_spec")
    if marker is None or len(marker.args) != 1:
        pytest.fail("the `gmhf_guidance` fixture needs `@pytest.mark.gmhf_spec(\"path/to/spec.guide\")` "
                    "(or spec text) on the test", pytrace=False)
    if "gmhf_plugins" in request.fixturenames:
        request.getfixturevalue("gmhf_plugins")
    return load_marked(marker.args[0], request.path.parent, marker.kwargs.get("domain"))
