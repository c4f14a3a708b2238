"""The docs keep step with the code: every hook, every keyword, every example spec, every command option."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click
import pytest

from gmhf.cli import COMMANDS, resolve
from gmhf.dsl.parse import BUILTIN_KEYWORDS
from gmhf.plugins import hookspecs
from gmhf.plugins.manager import build_host, using_plugins

DOCS = Path(__file__).resolve().parent.parent / "docs"
HOOK_HEADING = re.compile(r"^## (gmhf_\w+)\(([^)]*)\)\s*$", re.M)
GUIDE_BLOCK = re.compile(r"^```guide[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def _read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _hook_headings() -> dict[str, list[str]]:
    return {name: [a.strip() for a in args.split(",") if a.strip()]
            for name, args in HOOK_HEADING.findall(_read("plugins.md"))}


def _first_statement(block: str) -> str:
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return ""


def _guide_examples() -> list[tuple[str, str]]:
    examples = []
    for name in ("language.md", *(f"domains/{p.name}" for p in sorted((DOCS / "domains").glob("*.md")))):
        for index, block in enumerate(GUIDE_BLOCK.findall(_read(name))):
            if _first_statement(block).split()[:1] == ["domain"]:
                examples.append((f"{name}[{index}]", block))
    return examples


@pytest.mark.parametrize("hook", hookspecs.HOOKS)
def test_hook_has_heading_with_its_real_arguments(hook: str) -> None:
    """Each hook in HOOKS has a `## gmhf_x(args)` heading in docs/plugins.md naming its real parameters."""
    headings = _hook_headings()
    assert hook in headings, f"docs/plugins.md has no `## {hook}(...)` heading"
    parameters = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert headings[hook] == parameters


def test_no_heading_for_a_hook_that_does_not_exist() -> None:
    """Every `## gmhf_x(...)` heading in docs/plugins.md names a hook in HOOKS."""
    assert sorted(set(_hook_headings()) - set(hookspecs.HOOKS)) == []


def test_every_statement_keyword_has_a_section() -> None:
    """Each built-in and built-in-plugin keyword has a "## `keyword`" section in docs/language.md."""
    registry = build_host(entry_points=[], env={}).registry
    keywords = set(BUILTIN_KEYWORDS) | set(registry.statements)
    text = _read("language.md")
    missing = sorted(k for k in keywords if not re.search(rf"^## `{re.escape(k)}`\s*$", text, re.M))
    assert missing == []


def test_docs_have_guide_examples() -> None:
    """docs/language.md has complete ```guide examples (so the check below is not vacuous)."""
    assert sum(name.startswith("language.md") for name, _ in _guide_examples()) >= len(BUILTIN_KEYWORDS)


@pytest.mark.parametrize("name, block", _guide_examples(), ids=[name for name, _ in _guide_examples()])
def test_guide_example_passes_check(name: str, block: str) -> None:
    """Every ```guide block that starts with `domain` passes `gmhf.api.check_text`."""
    from gmhf.api import check_text

    with using_plugins(entry_points=[], env={}):
        check_text(block, path=f"docs/{name}")


def test_every_builtin_learner_has_a_row_in_the_learner_docs() -> None:
    """docs/learners.md's table names each learner the built-in plugin registers."""
    text = (DOCS / "learners.md").read_text(encoding="utf-8")
    learners = build_host(entry_points=[], env={}).registry.learners
    assert learners, "no built-in learner registered"
    for name in learners:
        assert f"| `{name}`" in text, name


def _cli_sections() -> dict[str, str]:
    parts = re.split(r"^## gmhf (\w+)\s*$", _read("cli.md"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_doc_section_names_every_option(name: str) -> None:
    """docs/cli.md has a `## gmhf NAME` section for each built-in command that names each of its --help options."""
    sections = _cli_sections()
    assert name in sections, f"docs/cli.md has no `## gmhf {name}` section"
    options = [opt for param in resolve(COMMANDS[name]).params if isinstance(param, click.Option)
               for opt in param.opts if opt.startswith("--")]
    assert [opt for opt in options if not re.search(rf"{re.escape(opt)}(?![\w-])", sections[name])] == []
