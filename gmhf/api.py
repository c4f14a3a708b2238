"""The front door: `load`, `parse` and `compile`, wired to the installed plugins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gmhf.dsl import ast
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gmhf.core.guidance import Guidance
    from gmhf.core.pooling import PooledBelief
    from gmhf.dsl.check import CheckedSpec

__all__ = ["check_text", "compile", "load", "parse", "pool", "read_spec", "spec_file"]

Spec = str | bytes | os.PathLike[str]


def read_spec(path_or_text: str | bytes | os.PathLike[str]) -> tuple[str, str, Path | None]:
    """(text, path for diagnostics, file) from a path or spec text.

    The rule (docs/language.md, "Files and text"): an `os.PathLike` is always a file. A `str` is a
    file when it is one line ending in `.guide` or an absolute path, or a non-empty string without
    whitespace (`a.guide`, `specs/a`, `./spec`); anything else is spec text. Every statement has a
    space after its keyword, so `"domain sinusoid"` is text even where a file of that name exists.
    `bytes` are spec text in UTF-8.

    Raises:
        UsageError: another type, bytes that are not UTF-8, or a file that is missing or a directory.
    """
    if isinstance(path_or_text, bytes):
        try:
            return path_or_text.decode("utf-8"), "<bytes>", None
        except UnicodeDecodeError as error:
            raise UsageError(f"`path_or_text` bytes must be spec text in UTF-8: {error}.") from None
    if not isinstance(path_or_text, str | os.PathLike):
        raise UsageError(f"`path_or_text` must be a str, bytes or os.PathLike, got {type(path_or_text).__name__}.")
    file = spec_file(path_or_text)
    if file is None:
        return str(path_or_text), "<string>", None
    from gmhf.dsl.source import not_a_spec_file, read_spec_file

    problem = not_a_spec_file(file)
    if not file.exists():
        raise UsageError(f"`path_or_text` names no spec file: {str(file)!r} does not exist.")
    if problem is not None:
        raise UsageError(f"`path_or_text` names {problem}: {str(file)!r}.")

    return read_spec_file(file, shown=str(path_or_text)), str(path_or_text), file


def spec_file(path_or_text: str | os.PathLike[str]) -> Path | None:
    """The file `path_or_text` names by `read_spec`'s rule (whether or not it exists); None for spec text."""
    if not isinstance(path_or_text, str):
        return Path(path_or_text)
    one_line = "\n" not in path_or_text and "\r" not in path_or_text
    if (one_line and (path_or_text.endswith(".guide") or os.path.isabs(path_or_text))) or (
            path_or_text != "" and not any(c.isspace() for c in path_or_text)):
        return Path(path_or_text)
    return None


def parse(path_or_text: str | bytes | os.PathLike[str]) -> ast.Spec:
    """Parse a spec (file or text) into its syntax tree, with every registered plugin keyword.

    Raises:
        SpecError: every syntax error of the file.
    """
    from gmhf.dsl.parse import parse as parse_text
    from gmhf.plugins.manager import plugin_host

    text, path, _ = read_spec(path_or_text)
    return parse_text(text, path=path, extensions=plugin_host().registry.extensions())


def check_text(text: str, *, path: str = "<string>", domain: str | None = None) -> CheckedSpec:
    """Parse and check spec text without torch; raise `SpecError` with every finding."""
    from gmhf.dsl.check import check
    from gmhf.dsl.errors import SpecError, by_position
    from gmhf.dsl.parse import parse_partial
    from gmhf.plugins.manager import plugin_host

    registry = plugin_host().registry
    spec, syntax = parse_partial(text, path=path, extensions=registry.extensions())
    try:
        checked = check(spec, registry, domain=domain, source=text)
    except SpecError as error:
        if not syntax:
            raise
        semantic = [d for d in error.diagnostics if d.message != "missing domain"]
        raise SpecError(by_position(syntax + semantic), {path: text, **error.sources}) from None
    if syntax:
        raise SpecError(syntax, {path: text})
    return checked


def compile(spec: ast.Spec, *, domain: str | None = None, source: str | None = None) -> Guidance:
    """Check a parsed spec and compile it into a `Guidance`.

    Raises:
        SpecError: a semantic mistake, or a `require` no probe sample satisfies.
    """
    from gmhf.core.guidance import compile_checked
    from gmhf.dsl.check import check
    from gmhf.plugins.manager import plugin_host

    registry = plugin_host().registry
    return compile_checked(check(spec, registry, domain=domain, source=source), registry)


def load(path_or_text: str | bytes | os.PathLike[str], *, domain: str | None = None) -> Guidance:
    """Load a guidance spec: parse, check against its domain, and compile it into torch modules.

    Args:
        path_or_text: a `.guide` file (path) or the spec text itself (`read_spec` gives the rule:
            a `Path`, or a str without whitespace or ending in `.guide`, is a file).
        domain: the domain to use when the spec has no `domain` statement.

    Returns:
        The compiled `Guidance`: `sample(n, seed=…)`, `log_prob(θ)`, `accepts(θ)`, `explain()`.

    Raises:
        SpecError: every mistake in the spec, each with `path:line:col`, or a `require` that none of
            10,000 probe samples satisfies.
        UsageError: `path_or_text` is not a str, bytes or path, or names a missing file or a directory.

    Example:
        >>> guidance = gmhf.load("examples/specs/sinusoid.guide")
        >>> theta = guidance.sample(1024, seed=0)
        >>> theta["amplitude"].shape
        torch.Size([1024])
    """
    from gmhf.core.guidance import compile_checked
    from gmhf.plugins.manager import plugin_host

    text, path, _ = read_spec(path_or_text)
    checked = check_text(text, path=path, domain=domain)
    return compile_checked(checked, plugin_host().registry)


def pool(*specs: Spec | Guidance | Sequence[Spec | Guidance], domain: str | None = None) -> Guidance | PooledBelief:
    """Load several specs of one domain and pool them into one belief, weighted by their `trust`.

    The pooled belief is the mixture q(θ) = Σ_i w_i q_i(θ), w_i = trust_i / Σ_j trust_j (docs/method.md,
    "Several specs"). It has what steering agents, task pools and `explain` read from a `Guidance`:
    `space`, `domain`, `trust`, `flagged`, `invariant`, `expects`, `sample`, `log_prob`, `accepts`.

    Args:
        *specs: `.guide` files or spec texts (as `load` takes them), or compiled `Guidance`s; a single
            list or tuple of them works too.
        domain: the domain for specs without a `domain` statement.

    Returns:
        The plain `Guidance` for one spec; a `PooledBelief` for several.

    Raises:
        UsageError: no spec, or specs of different domains (the message names both).
        SpecError: a mistake in one of the specs, with its `path:line:col`.

    Example:
        >>> belief = gmhf.pool("examples/specs/duffing.guide", "examples/specs/duffing_vague.guide")
        >>> belief.weights
        (0.5, 0.5)
    """
    from gmhf.core.guidance import Guidance
    from gmhf.core.pooling import PooledBelief

    if len(specs) == 1 and isinstance(specs[0], list | tuple):
        specs = tuple(specs[0])
    if not specs:
        raise UsageError("`pool` needs at least one spec, got none.")
    beliefs: list[Guidance] = []
    names: list[str] = []
    for index, spec in enumerate(specs):
        if isinstance(spec, Guidance):
            beliefs.append(spec)
            names.append(next(iter(spec.checked.sources), f"spec {index + 1}"))
        elif isinstance(spec, str | bytes | os.PathLike):
            beliefs.append(load(spec, domain=domain))
            is_file = not isinstance(spec, bytes) and spec_file(spec) is not None
            names.append(str(spec) if is_file else f"spec {index + 1}")
        else:
            raise UsageError(f"each spec must be a path, spec text or Guidance, got {type(spec).__name__} "
                             f"(spec {index + 1}).")
    if len(beliefs) == 1:
        return beliefs[0]
    return PooledBelief(beliefs, names=names)
