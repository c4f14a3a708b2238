"""Semantic checks of a parsed spec against its domain, producing a torch-free plan to compile.

Every statement is checked; all findings of a file (and of the files it `use`s) are reported
together. The result, `CheckedSpec`, says per factor which distribution the expert believes in
(before truncation), the interval it is truncated to, and which statements touched it; plus the
joint `require`s, `prefer`s, `expect`s, plugin statements and `trust`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gmhf.dsl import ast
from gmhf.dsl.depth import too_deep
from gmhf.dsl.errors import SpecError, by_position, did_you_mean
from gmhf.dsl.expressions import ExprContext, single_factor_bounds
from gmhf.dsl.intervals import Truth
from gmhf.dsl.parse import parse_partial
from gmhf.dsl.plan import CheckedSpec, Checker, FactorPlan, Located
from gmhf.dsl.source import MAX_USE_DEPTH, not_a_spec_file, read_spec_file
from gmhf.dsl.statements import RULES, finalize

if TYPE_CHECKING:
    from gmhf.core.registry import Registry

__all__ = ["CheckedSpec", "FactorPlan", "Located", "check"]


def check(spec: ast.Spec, registry: Registry, *, domain: str | None = None, source: str | None = None,
          root: Path | None = None) -> CheckedSpec:
    """Check a parsed spec; raise `SpecError` with every finding, or return the plan.

    Args:
        spec: the parsed main file (its `path` is used in diagnostics and to resolve `use`).
        registry: the registered domains, statements, distributions and functions.
        domain: the domain to use when the spec has no `domain` statement.
        source: the main file's text, for rendering diagnostics.
        root: folder that `use` paths may not escape (default: each including file's own folder).
    """
    checker = _SpecChecker(registry, root)
    path = spec.path or "<string>"
    if source is not None:
        checker.sources[path] = source
    located = checker.gather(spec, path, [])
    result = checker.run(located, domain, path)
    if checker.errors:
        raise SpecError(by_position(checker.diagnostics), checker.sources)
    assert result is not None
    result.warnings = [d for d in checker.diagnostics if d.severity == "warning"]
    return result


class _SpecChecker(Checker):
    """The driver: gathers `use`d files, runs each statement's rule, then the joint checks."""

    def __init__(self, registry: Registry, root: Path | None) -> None:
        super().__init__(registry)
        self.root = root

    # ------------------------------------------------------------------ use
    def gather(self, spec: ast.Spec, path: str, stack: list[Path]) -> list[Located]:
        out: list[Located] = []
        for stmt in spec.statements:
            deep = too_deep(stmt, path)  # a tree built in Python has not met the parser's bound
            if deep is not None:
                self.diagnostics.append(deep)
            elif isinstance(stmt, ast.Use):
                out.extend(self._include(stmt, path, stack))
            else:
                out.append(Located(stmt, path))
        return out

    def _include(self, stmt: ast.Use, path: str, stack: list[Path]) -> list[Located]:
        here = Located(stmt, path)
        base = Path(path).parent if path != "<string>" else Path.cwd()
        root = self.root or base
        if "\x00" in stmt.path or not stmt.path.strip():
            self.error(here, stmt, f"`use` needs a file name, got {stmt.path!r}")
            return []
        target = (base / stmt.path).resolve()
        if not target.is_relative_to(root.resolve()):
            self.error(here, stmt, f'`use "{stmt.path}"` reaches outside the spec\'s folder',
                       hint="included files must sit in the including file's folder or below it")
            return []
        if target in stack or (path != "<string>" and target == Path(path).resolve()):
            cycle = " -> ".join(p.name for p in [*stack, target])
            self.error(here, stmt, f"`use` cycle: {cycle}")
            return []
        if (problem := not_a_spec_file(target)) is not None:
            self.error(here, stmt, f'`use "{stmt.path}"`: {problem}',
                       hint=f"{'found' if target.exists() else 'looked for'} {target}")
            return []
        if len(stack) >= MAX_USE_DEPTH:
            self.error(here, stmt, f"`use` chain too deep: more than {MAX_USE_DEPTH} files nested",
                       hint="include the files from one top-level spec instead of from each other")
            return []
        shown = str(Path(path).parent / stmt.path) if path != "<string>" else stmt.path
        try:
            text = read_spec_file(target, shown=shown)
        except OSError as error:
            self.error(here, stmt, f'`use "{stmt.path}"`: cannot read it ({type(error).__name__})')
            return []
        except SpecError as error:  # not UTF-8: say so at the `use`, naming the byte
            self.error(here, stmt, f'`use "{stmt.path}"`: {error.diagnostics[0].message}',
                       hint=f"save {stmt.path} as UTF-8")
            return []
        self.sources[shown] = text
        included, problems = parse_partial(text, path=shown, extensions=self.registry.extensions())
        self.diagnostics.extend(problems)
        me = [Path(path).resolve()] if path != "<string>" and not stack else []
        return self.gather(included, shown, [*stack, *me, target])

    # ------------------------------------------------------------------ statements
    def run(self, located: list[Located], domain_name: str | None, path: str) -> CheckedSpec | None:
        # Long: the order of the passes (domain, trust, statements, truncations, expressions) is the point.
        domain_stmt: Located | None = None
        trust: Located | None = None
        for item in located:
            stmt = item.statement
            if isinstance(stmt, ast.Domain):
                if domain_stmt is not None and stmt.name.id != domain_stmt.statement.name.id:  # type: ignore[union-attr]
                    self.conflict(item, stmt.name, f"a second domain `{stmt.name.id}`", domain_stmt,
                                  f"the domain was set to `{domain_stmt.statement.name.id}` here")  # type: ignore[union-attr]
                domain_stmt = domain_stmt or item
            elif isinstance(stmt, ast.Trust):
                if trust is not None:
                    self.conflict(item, stmt, "`trust` given twice", trust, "first given here")
                trust = trust or item
        if domain_stmt is not None:
            domain_name = domain_stmt.statement.name.id  # type: ignore[union-attr]
        if domain_name is None:
            if not self.errors:
                self.error(path, None, "missing domain", hint="start the spec with `domain NAME`, e.g. "
                           + " or ".join(f"`domain {d}`" for d in sorted(self.registry.domains)[:3]))
            return None
        if domain_name not in self.registry.domains:
            node = domain_stmt.statement.name if domain_stmt else None  # type: ignore[union-attr]
            self.error(domain_stmt or path, node, f"unknown domain `{domain_name}`",
                       did_you_mean(domain_name, self.registry.domains))
            return None
        space = self.registry.domains[domain_name].space
        plans = {f.name: FactorPlan(factor=f, low=f.low, high=f.high) for f in space}
        for plan in plans.values():
            self._source(plan)
        result = CheckedSpec(domain=domain_name, space=space, factors=plans, statements=located, requires=[],
                             truncating=[], prefers=[], expects=[], custom=[], sources=self.sources)
        if trust is not None:
            value = trust.statement.value.value  # type: ignore[union-attr]
            if not 0 < value <= 1:
                self.error(trust, trust.statement.value, f"trust must be in (0, 1], got {value:g}",  # type: ignore[union-attr]
                           hint="1 means the author is always right; 0.5 means a coin toss")
            result.trust = value
        claims: dict[str, Located] = {}
        priors: dict[str, Located] = {}
        for item in located:
            self._statement(item, result, claims, priors)
        finalize(self, result, priors)
        candidates, result.requires = result.requires, []
        for item in candidates:  # truncations first: they narrow the supports proven against
            if not self._truncate(item, result):
                result.requires.append(item)
        for item in result.requires:
            self._expression(item, result, joint=True)
        for item in result.truncating + result.prefers + result.expects:
            self._expression(item, result)
        return result

    def _statement(self, item: Located, spec: CheckedSpec, claims: dict[str, Located],
                   priors: dict[str, Located]) -> None:
        stmt = item.statement
        rule = RULES.get(type(stmt))
        if rule is not None:
            rule(self, item, spec, claims, priors)
        elif isinstance(stmt, ast.CustomStatement):
            self._custom(item, spec)

    def _custom(self, item: Located, spec: CheckedSpec) -> None:
        kind = self.registry.statements.get(item.statement.keyword)
        if kind is None:
            self.error(item, item.statement, f"unknown keyword `{item.statement.keyword}`")
            return
        spec.custom.append(item)
        cls = kind.load()
        validate = getattr(cls, "check", None)
        if validate is not None:
            for message, node in validate(item.statement, spec.space) or ():
                self.error(item, node or item.statement, message)

    def _source(self, plan: FactorPlan) -> None:
        source = plan.factor.source
        if plan.factor.kind == "categorical":
            plan.dist = ("choice", tuple(w for _, w in source.weights))
            return
        plan.dist = (source.name, source.args)

    def _truncate(self, item: Located, spec: CheckedSpec) -> bool:
        """Apply a single-factor bound as truncation; False if `item` is a joint constraint."""
        bounds = single_factor_bounds(item.statement.expr, spec.space)  # type: ignore[union-attr]
        if bounds is None:
            return False
        name, low, high = bounds
        plan = spec.factors[name]
        new_low, new_high = max(plan.low, low), min(plan.high, high)
        if not new_low <= new_high or (plan.factor.kind == "real" and new_low == new_high):
            self.error(item, item.statement, f"`require` leaves no value of `{name}`: its support "
                       f"[{plan.low:g}, {plan.high:g}] does not meet [{low:g}, {high:g}]")
            return True
        if plan.levels is not None and not any(new_low <= v <= new_high for v in plan.levels):
            listed = ", ".join(f"{v:g}" for v in plan.levels)
            self.error(item, item.statement, f"`require` leaves none of the listed values of `{name}`: "
                       f"[{listed}] does not meet [{new_low:g}, {new_high:g}]")
            return True
        plan.low, plan.high = new_low, new_high
        plan.touched_by.append(item)
        spec.truncating.append(item)
        return True

    def _expression(self, item: Located, spec: CheckedSpec, joint: bool = False) -> None:
        stmt = item.statement
        where = stmt.keyword  # type: ignore[union-attr]
        context = ExprContext(spec.space, self.registry, item.path, where,  # type: ignore[arg-type]
                              supports={name: plan.support for name, plan in spec.factors.items()})
        kind = context.check(stmt.expr)  # type: ignore[union-attr]
        if kind == "num":
            context.error(stmt.expr, f"`{where}` needs a condition, got a number",  # type: ignore[union-attr]
                          hint="compare it, e.g. `x < 1`")
        self.diagnostics.extend(context.diagnostics)
        if context.diagnostics or not joint:
            return
        if context.truth(stmt.expr) is Truth.FALSE:  # type: ignore[union-attr]
            mentioned = ast.names_in(stmt.expr)  # type: ignore[union-attr]
            supports = ", ".join(f"{n} in [{p.low:g}, {p.high:g}]" for n, p in spec.factors.items()
                                 if p.factor.kind != "categorical" and n in mentioned)
            self.error(item, stmt, "`require` can never hold: nothing in the supports satisfies it",
                       hint=f"with {supports}" if supports else None)
