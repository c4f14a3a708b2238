"""A compiled spec: the expert's believed target distribution q_H(θ) as batched torch code.

Sampling draws every factor from its marginal at once (inverse CDF, so truncation is free), then
applies the joint `require`s and plugin constraints by rejection and the `prefer` weights by
acceptance with probability exp(w·[E] − ceiling), ceiling = max(w, 0) unless E is provably always
or never true: an exact sampler of the density
q_H(θ) ∝ Π_f q_f(θ_f) · Π_require [θ ok] · Π_prefer exp(w·[E(θ)]). The joint acceptance rate is
measured on a fixed-seed probe of 10,000 draws at compile time, which also reports a `require`
that no draw satisfies and estimates the normaliser used by `log_prob` (by log-sum-exp: weights
are never exponentiated on their own).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gmhf.core import budget
from gmhf.core import distributions as D
from gmhf.core.constraints import CompileContext, Constraint, Expect
from gmhf.core.seeding import random_stream
from gmhf.core.theta import Theta
from gmhf.dsl import ast
from gmhf.dsl.errors import Diagnostic, SpecError, by_position
from gmhf.dsl.format import format_statement
from gmhf.errors import UsageError

if TYPE_CHECKING:
    from gmhf.core.domain import Domain
    from gmhf.core.registry import Registry
    from gmhf.dsl.check import CheckedSpec, FactorPlan, Located

__all__ = ["Guidance", "PROBE_SAMPLES", "compile_checked"]

PROBE_SAMPLES = 10_000


def marginal(plan: FactorPlan, registry: Registry) -> D.Distribution1D:
    """The believed distribution of one factor, from its checked plan."""
    name, args = plan.dist
    factor = plan.factor
    if factor.kind == "categorical":  # the factory gets the weights in level order
        built: D.Distribution1D = registry.distributions[name].build(args)
        return built
    if plan.levels is not None:  # integer factor restricted to listed values, within any `require` bounds
        values = torch.tensor([v for v in plan.levels if plan.low <= v <= plan.high], dtype=D.DTYPE)
        if plan.mode == "levels" and name == "uniform" and plan.dist == (factor.source.name, factor.source.args):
            return integer_choice(values, torch.zeros_like(values), "the listed values")
        return integer_choice(values, registry.distributions[name].build(args).log_prob(values), "the listed values")
    base = registry.distributions[name].build(args)
    if plan.offset != 0.0 or plan.scale != 1.0:
        base = D.Affine(base, plan.offset, plan.scale)
    if factor.kind == "integer":
        return discretize_log(base, math.ceil(plan.low), math.floor(plan.high))
    return D.truncate(base, plan.low, plan.high)


def discretize_log(base: D.Distribution1D, low: int, high: int) -> D.Choice:
    """An integer factor's distribution: P(k) ∝ density of `base` at k, for k in [low, high].

    The weights are formed in log space (log density minus its maximum), so a prior so narrow that
    every density underflows (`normal(5.5, 0.01)`) still gives the integers their true ratios.
    """
    values = torch.arange(low, high + 1, dtype=D.DTYPE)
    if isinstance(base, D.Uniform):
        log_w = torch.zeros_like(values).masked_fill((values < base.low) | (values > base.high), -math.inf)
    else:
        log_w = base.log_prob(values)
    return integer_choice(values, log_w, f"[{low}, {high}]")


def integer_choice(values: Tensor, log_weights: Tensor, where: str) -> D.Choice:
    """`Choice` over `values` with unnormalised `log_weights`; the values with weight 0 are dropped."""
    log_weights = log_weights.to(D.DTYPE).nan_to_num(nan=-math.inf)
    top = float(log_weights.max()) if len(values) else -math.inf
    if top == -math.inf:
        raise D.EmptyTruncation(f"no integer in {where} has positive probability")
    weights = (log_weights - top).exp()
    keep = weights > 0
    return D.Choice(values[keep], weights[keep])


class Guidance(torch.nn.Module):
    """A compiled spec: sample environments, score them, check them against the constraints.

    Build one with `gmhf.load`. `str(guidance)` is the spec's canonical text.

    Example:
        >>> g = gmhf.load("domain sinusoid\\nshift amplitude in 2 .. 4")
        >>> g.sample(3, seed=0)["amplitude"].shape
        torch.Size([3])
    """

    def __init__(self, checked: CheckedSpec, domain: Domain, registry: Registry) -> None:
        super().__init__()
        self.checked = checked
        self.domain = domain
        self.space = checked.space
        self.trust = checked.trust
        self.marginals = {name: self._marginal(plan, registry) for name, plan in checked.factors.items()}
        context = CompileContext(checked, registry)
        modules: list[Constraint] = []
        self._located: list[Located] = []  # the statement each module came from, in the same order
        for located in checked.statements:
            kind = registry.statements.get(getattr(located.statement, "keyword", ""))
            if kind is not None:
                modules.append(kind.load().from_statement(located, context))
                self._located.append(located)
        self.constraints = torch.nn.ModuleList(modules)
        self._modules_typed: list[Constraint] = modules  # the same modules, typed for iteration
        self._joint = [c for c in modules if c.role == "hard"]  # each class declares its role
        self._soft = [c for c in modules if c.role == "soft"]
        # Factors the joint terms read are drawn first; the rest only for the rows that survive.
        # (Marginals are independent, so the order of drawing does not change the distribution.)
        read = [c.factors for c in self._joint + self._soft]
        if any(not names for names in read):  # a plugin constraint that does not say what it reads
            self._first: tuple[int, ...] = tuple(range(len(self.space)))
        else:
            self._first = tuple(sorted({self.space.index(n) for names in read for n in names}))
        self._rest = tuple(i for i in range(len(self.space)) if i not in self._first)
        self.acceptance: dict[str, tuple[int, int]] = {}
        self._rate = 1.0
        self._log_z = 0.0
        self._probe()

    # ------------------------------------------------------------------ properties
    @property
    def flagged(self) -> tuple[str, ...]:
        """Factors the spec shifts or gives a prior: the ones the steerer refines."""
        return tuple(n for n, p in self.checked.factors.items() if p.flagged)

    @property
    def invariant(self) -> tuple[str, ...]:
        """Factors declared invariant: never moved by the steerer."""
        return tuple(n for n, p in self.checked.factors.items() if p.invariant)

    @property
    def expects(self) -> list[Expect]:
        """The `expect` constraints, to check on generated data."""
        return [c for c in self.constraints if isinstance(c, Expect)]

    # ------------------------------------------------------------------ sampling
    def _draw(self, n: int, generator: torch.Generator, columns: tuple[int, ...] | None = None,
              out: Tensor | None = None) -> Tensor:
        """Fill `columns` (default: all) of `out` (default: a new `[n, k]`) with independent draws."""
        names = self.space.names
        if out is None:
            out = torch.zeros(n, len(names), dtype=D.DTYPE)
        for i in range(len(names)) if columns is None else columns:
            out[:, i] = self.marginals[names[i]].sample(n, generator)
        return out

    def _log_weight(self, theta: Tensor) -> tuple[Tensor, float]:
        """The soft constraints' summed log-weight `[n]` and its ceiling (an upper bound of it)."""
        log_w = torch.zeros(theta.shape[0], dtype=theta.dtype)
        for constraint in self._soft:
            log_w = log_w + constraint.log_weight(theta)
        return log_w, sum((c.max_log_weight() for c in self._soft), 0.0)

    def _keep(self, theta: Tensor, generator: torch.Generator) -> Tensor:
        keep = torch.ones(theta.shape[0], dtype=torch.bool)
        for constraint in self._joint:
            keep &= constraint.accepts(theta)
        if self._soft:  # accept with probability exp(log_w − ceiling), compared in log space
            log_w, ceiling = self._log_weight(theta)
            keep &= torch.rand(theta.shape[0], generator=generator, dtype=theta.dtype).log() < log_w - ceiling
        return keep

    def _probe(self) -> None:
        generator = torch.Generator().manual_seed(0)
        theta = self._draw(PROBE_SAMPLES, generator)
        ok = torch.ones(PROBE_SAMPLES, dtype=torch.bool)
        problems = []
        for constraint in self._joint:
            accepted = constraint.accepts(theta)
            count = int(accepted.sum())
            self.acceptance[constraint.where] = (count, PROBE_SAMPLES)
            ok &= accepted
            if count == 0:
                problems.append(constraint.where)
        if problems:
            diagnostics = [self._diagnostic(where) for where in problems]
            raise SpecError(diagnostics, self.checked.sources)
        if not bool(ok.any()):
            raise SpecError([Diagnostic.at(self.checked.statements[0].path, None,
                                           "no sampled environment satisfies all `require`s together")],
                            self.checked.sources)
        # Log space throughout: a weight of ±700 is e^±700, and a sum of 10,000 of them overflows.
        log_w, ceiling = self._log_weight(theta)
        log_w = log_w.masked_fill(~ok, -math.inf)
        log_mean = float(torch.logsumexp(log_w, 0)) - math.log(PROBE_SAMPLES)
        self._rate = max(math.exp(min(log_mean - ceiling, 0.0)), 1.0 / PROBE_SAMPLES)
        self._log_z = log_mean

    def _marginal(self, plan: FactorPlan, registry: Registry) -> D.Distribution1D:
        try:
            return marginal(plan, registry)
        except D.EmptyTruncation as error:  # a belief that puts (numerically) nothing inside its support
            hint = _empty_hint(plan)
            diagnostics = [Diagnostic.at(loc.path, loc.statement.span, f"`{plan.factor.name}`: {error}",
                                         hint=hint, statement=getattr(loc.statement, "keyword", None))
                           for loc in plan.touched_by]
            raise SpecError(by_position(diagnostics) or [Diagnostic.at(self.checked.statements[0].path, None, str(error))],
                            self.checked.sources) from None

    def _diagnostic(self, where: str) -> Diagnostic:
        for located in self.checked.statements:
            if located.where == where:
                return Diagnostic.at(located.path, located.statement.span,
                                     f"no sample of {PROBE_SAMPLES:,} satisfies this `require`",
                                     hint="widen the shifted supports or relax the condition",
                                     statement=getattr(located.statement, "keyword", None))
        raise KeyError(where)

    def sample(self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None) -> Theta:
        """Draw `n` environments from the believed target distribution, as one batch.

        Args:
            n: how many environments.
            seed: makes the draw reproducible (ignored when `generator` is given); any int, negative or
                beyond 64 bits too, and distinct seeds give distinct streams (`random_stream`).
            generator: an explicit torch.Generator to draw from.

        Returns:
            A `Theta` of float64 values `[n, k]`, columns named by factor; categorical factors hold
            level codes (`theta.levels` names them).

        Raises:
            UsageError: a bad `n`, or a result over 4 GiB (`gmhf.core.budget`).
            GmhfError: the constraints accept so little that n draws need over 10^9 candidates;
                a draw over 10^7 warns first (`GmhfWarning`). Candidates come in rounds of ≤ 2^20.

        Example:
            >>> theta = guidance.sample(1024, seed=0)
            >>> theta["amplitude"].mean()
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise UsageError(f"`n` must be a non-negative int, got {n!r}.")
        budget.check_result_size(n, len(self.space))
        if generator is None:
            generator = random_stream(seed)  # unseeded: OS entropy, torch's global stream untouched
        constrained = bool(self._joint or self._soft)
        if constrained and n:
            budget.check_cost(n, self._rate, self._rarest)
        values = torch.empty(n, len(self.space), dtype=D.DTYPE)
        have, tried = 0, 0
        while have < n:  # rounds of at most CHUNK candidates: memory stays bounded whatever the acceptance
            m = min(int((n - have) / self._rate * 1.1) + 16, budget.CHUNK)
            if constrained:
                theta = self._draw(m, generator, self._first)
                theta = theta[self._keep(theta, generator)]
                self._draw(theta.shape[0], generator, self._rest, out=theta)
            else:
                theta = self._draw(m, generator)
            take = min(theta.shape[0], n - have)
            values[have:have + take] = theta[:take]
            have, tried = have + take, tried + m
            if have < n and tried >= 16 * budget.CHUNK:  # the probe's estimate may be far too high
                budget.check_cost(n - have, max(have, 1) / tried, self._rarest, seen=True)
        return self._theta(values)

    def _rarest(self) -> str:
        """The statement that accepts fewest probe draws, quoted with its place: "`require …` (a.guide:3)"."""
        if not self.acceptance:
            return "the spec's `prefer`s"
        where = min(self.acceptance, key=lambda w: self.acceptance[w][0])
        located = next((loc for loc in self._located if loc.where == where), None)
        return f"`{format_statement(located.statement)}` ({where})" if located else f"the constraint at {where}"

    def _theta(self, values: Tensor) -> Theta:
        levels = {f.name: f.levels for f in self.space if f.kind == "categorical"}
        integers = tuple(f.name for f in self.space if f.kind == "integer")
        return Theta(values, self.space.names, levels, integers)

    # ------------------------------------------------------------------ scoring
    def _values(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        names = self.space.names
        if isinstance(theta, Theta):
            if theta.names != names:
                raise UsageError(f"`theta` has the factors {list(theta.names)}, but this spec's domain "
                                 f"{self.checked.domain!r} has {list(names)}; score θ of the same domain.")
            return theta.values
        if isinstance(theta, dict):
            missing = [n for n in names if n not in theta]
            if missing:
                raise UsageError(f"`theta` lacks the factor(s) {', '.join(map(repr, missing))}; a dict needs "
                                 f"one column per factor: {list(names)}.")
            return torch.stack([torch.as_tensor(theta[n], dtype=D.DTYPE).reshape(-1) for n in names], 1)
        if not isinstance(theta, Tensor):
            raise UsageError(f"`theta` must be a Theta, a dict or a tensor, got {type(theta).__name__}.")
        if theta.ndim != 2 or theta.shape[1] != len(self.space):
            raise UsageError(f"`theta` must have shape [n, {len(self.space)}], got {list(theta.shape)}.")
        return theta.to(D.DTYPE)

    def accepts(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        """Boolean `[n]`: inside every factor's believed support and every hard constraint."""
        values = self._values(theta)
        keep = torch.ones(values.shape[0], dtype=torch.bool)
        for constraint in self._modules_typed:
            keep &= constraint.accepts(values)
        for i, name in enumerate(self.space.names):
            keep &= self.marginals[name].log_prob(values[:, i]) > -math.inf
        return keep

    def log_prob(self, theta: Theta | Tensor | dict[str, Any]) -> Tensor:
        """Log density `[n]` of q_H; `-inf` outside the support.

        The factor marginals are exact; the normaliser of joint `require`/`prefer` terms is the
        Monte Carlo estimate from the compile-time probe (10,000 draws).
        """
        values = self._values(theta)
        total = torch.zeros(values.shape[0], dtype=D.DTYPE)
        for i, name in enumerate(self.space.names):
            total = total + self.marginals[name].log_prob(values[:, i])
        for constraint in self._modules_typed:
            total = total + constraint.log_prob(values)
        return total - self._log_z

    # ------------------------------------------------------------------ explaining
    def explain(self) -> dict[str, Any]:
        """Per factor: source vs believed target and the statements that touched it; joint terms."""
        factors = []
        for name, plan in self.checked.factors.items():
            factors.append({
                "factor": name, "kind": plan.factor.kind, "bounds": plan.factor.bounds_text(),
                "unit": plan.factor.unit, "source": str(plan.factor.source), "target": _describe(plan),
                "mode": plan.mode, "flagged": plan.flagged, "invariant": plan.invariant,
                "statements": [loc.where for loc in plan.touched_by],
            })
        by_role: dict[str, list[dict[str, Any]]] = {"hard": [], "soft": [], "data": []}
        for module, loc in zip(self._modules_typed, self._located, strict=True):
            if module.role in by_role:
                by_role[module.role].append({"statement": format_statement(loc.statement), "where": loc.where})
        for entry in by_role["hard"]:
            entry["accepted"] = self.acceptance.get(entry["where"], (PROBE_SAMPLES,))[0] / PROBE_SAMPLES
        return {
            "domain": self.checked.domain, "trust": self.trust, "factors": factors, "joint": by_role["hard"],
            "truncate": [{"statement": format_statement(loc.statement), "where": loc.where}
                         for loc in self.checked.truncating],
            "prefer": by_role["soft"], "expect": by_role["data"], "acceptance_rate": self._rate,
        }

    def __repr__(self) -> str:
        return (f"Guidance(domain={self.checked.domain!r}, factors={len(self.space)}, "
                f"statements={len(self.checked.statements)}, trust={self.trust:g})")

    def __str__(self) -> str:
        from gmhf.dsl.format import format_spec

        return format_spec(ast.Spec(statements=tuple(loc.statement for loc in self.checked.statements)))


def _empty_hint(plan: FactorPlan) -> str:
    """What cut the belief's mass away: a `shift … in` support, a `require`'s bounds, or the physical bounds."""
    touched = [loc.statement for loc in plan.touched_by]
    limits = [what for kind, what in ((ast.ShiftIn, "shifted support"), (ast.Require, "`require` bounds"))
              if any(isinstance(s, kind) for s in touched)]
    if not limits:
        return (f"the prior lies far outside the physical bounds {plan.factor.bounds_text()}; centre it inside "
                f"them (check the units)")
    return f"the prior lies far outside the {' and '.join(limits)}; move one toward the other"


def _describe(plan: FactorPlan) -> str:
    name, args = plan.dist
    factor = plan.factor
    if factor.kind == "categorical":
        total = sum(args)
        return ", ".join(f"{lvl} {w / total:.0%}" for lvl, w in zip(factor.levels, args, strict=True) if w > 0)
    if plan.mode in ("source", "invariant"):
        text = "= source"
    elif plan.mode == "offset":
        text = f"source {'+' if plan.offset >= 0 else '-'} {abs(plan.offset):g}"
    elif plan.mode == "scale":
        text = f"source * {plan.scale:g}"
    elif plan.levels is not None:
        text = "one of " + ", ".join(f"{v:g}" for v in plan.levels if plan.low <= v <= plan.high)
    else:
        text = f"{name}(" + ", ".join(f"{a:.4g}" for a in args) + ")"
    truncated = any(isinstance(loc.statement, ast.Require) for loc in plan.touched_by)
    if (plan.mode not in ("source", "invariant") or truncated) and plan.levels is None:
        text += f" on [{plan.low:.4g}, {plan.high:.4g}]"
    return text


def compile_checked(checked: CheckedSpec, registry: Registry) -> Guidance:
    """Build the Guidance for a checked spec."""
    return Guidance(checked, registry.domains[checked.domain], registry)
