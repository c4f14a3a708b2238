"""The drawing behind `from_guidance`: compiled specs cached, coordinates drawn, rows redrawn."""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

import torch
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from gmhf.core.guidance import Guidance
from gmhf.testing._environments import RESOLUTION, Sampler

if TYPE_CHECKING:
    from gmhf.plugins.manager import PluginHost

__all__ = ["Record", "coordinates", "count", "from_guidance", "sampler_for"]

#: One environment as plain values: floats, ints for integer factors, level names for categorical ones.
Record = dict[str, float | int | str]


def count(name: str, value: object, *, minimum: int = 0) -> int:
    """`value` if it is an int >= `minimum`; else InvalidArgument naming the argument."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidArgument(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    return value


_SAMPLERS: weakref.WeakKeyDictionary[Guidance, Sampler] = weakref.WeakKeyDictionary()
_LOADED: dict[tuple[str, str, str | None], tuple[PluginHost, Guidance]] = {}


def _guidance(spec: object, domain: object) -> Guidance:
    """The compiled spec: as given, or loaded once per text and plugin host."""
    if isinstance(spec, Guidance):
        return spec
    if not isinstance(spec, str | os.PathLike):
        raise InvalidArgument(f"`guidance` must be a Guidance, a spec path or spec text, got {spec!r}.")
    if domain is not None and not isinstance(domain, str):
        raise InvalidArgument(f"`domain` must be a domain name or None, got {domain!r}.")
    import gmhf
    from gmhf.api import read_spec
    from gmhf.plugins.manager import plugin_host

    text, path, _ = read_spec(spec)
    host, key = plugin_host(), (text, path, domain)
    cached = _LOADED.get(key)
    if cached is None or cached[0] is not host:
        cached = _LOADED[key] = (host, gmhf.load(spec, domain=domain))
    return cached[1]


def sampler_for(guidance: Guidance) -> Sampler:
    """The coordinate map of a compiled spec, built once per Guidance."""
    sampler = _SAMPLERS.get(guidance)
    if sampler is None:
        sampler = _SAMPLERS[guidance] = Sampler(guidance)
    return sampler


@st.composite
def coordinates(draw: st.DrawFn, sampler: Sampler, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`rows` accepted environments: their integer coordinates `[rows, k]` and values `[rows, k]`.

    Rows the spec rejects are drawn again, up to `sampler.attempts` times, then the example is rejected.
    """
    k = len(sampler.axes)
    coords = torch.zeros(rows, k, dtype=torch.long)
    values = torch.zeros(rows, k, dtype=torch.float64)
    done = torch.zeros(rows, dtype=torch.bool)
    integers = st.integers(-RESOLUTION, RESOLUTION)
    for _ in range(sampler.attempts):
        pending = (~done).nonzero().flatten()
        if not len(pending):
            break
        trial = torch.tensor([[draw(integers) for _ in range(k)] for _ in pending], dtype=torch.long)
        trial = trial.reshape(len(pending), k)
        found = sampler.values(trial)
        ok = sampler.accepts(found)
        kept = pending[ok]
        coords[kept], values[kept], done[kept] = trial[ok], found[ok], True
    if not bool(done.all()):
        reject()
    return coords, values


@st.composite
def from_guidance(draw: st.DrawFn, guidance: object, *, batch: object = None, domain: object = None) -> Any:
    """See `gmhf.testing.strategies.from_guidance`; named so that the strategy's repr reads the same."""
    compiled = _guidance(guidance, domain)
    if batch is not None:
        count("batch", batch, minimum=1)
    sampler = sampler_for(compiled)
    _, values = draw(coordinates(sampler, 1 if batch is None else int(batch)))  # type: ignore[call-overload]
    theta = sampler.theta(values)
    return theta if batch is not None else theta.to_records()[0]
