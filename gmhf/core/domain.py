"""Base class for domains: a factor space, a simulator, what `expect` can observe, and how to show it."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gmhf.core.factors import FactorSpace

__all__ = ["Domain"]

#: Panels the default `view` draws at most (one per array observable).
VIEW_PANELS = 4


class Domain(abc.ABC):
    """Base class for domains; a plugin registers an instance through `gmhf_domains`.

    Subclasses set `name`, `description` and `space` (a class attribute, or a cached property so
    that merely loading the plugin stays cheap), and implement `simulate` and `observe`; `examples`
    (to meta-train), `view` (to show an expert) and `truth_spec` (to benchmark) have defaults. Keep
    torch and matplotlib imports inside methods: domains are loaded by `gmhf check`, which must stay
    torch-free.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Keys of the data that `simulate` returns once for the whole batch rather than per environment
    #: (such as Duffing's time grid `t`, `[t]` instead of `[n, t]`). Code that slices a batch into
    #: environments (tasks, `check_domain`, views) keeps these entries whole. Default: none.
    shared: ClassVar[tuple[str, ...]] = ()
    #: For dynamical domains, the factors that are the initial state, in state-component order
    #: (Duffing: `x0`, `v0`; data entries `x`, `v`). Naming them lets a cNODE twin replace the
    #: simulator (`gmhf train --generator cnode`). Default: none (no twin).
    state_factors: ClassVar[tuple[str, ...]] = ()
    #: The factor giving the angular frequency of a periodic forcing, if any: the twin then sees
    #: cos(ωt), sin(ωt) instead of t. Default: None.
    forcing_frequency: ClassVar[str | None] = None
    space: FactorSpace

    @abc.abstractmethod
    def simulate(self, theta: torch.Tensor, *, generator: torch.Generator | None = None, **options: Any) -> Any:
        """Generate data for a batch of environments θ `[n, k]` (columns in `space.names` order)."""

    @abc.abstractmethod
    def observe(self, theta: torch.Tensor, data: Any) -> dict[str, torch.Tensor]:
        """The observables of generated data, each `[n]` or `[n, t]`, for `expect` statements."""

    def examples(self, theta: torch.Tensor, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Input/target pairs `[n, P, ·]` of each environment, from which few-shot tasks are cut.

        Targets are real for regression, integer class labels `[n, P]` for classification. A domain
        that does not override this cannot be meta-trained on.
        """
        from gmhf.errors import UsageError

        raise UsageError(f"domain {self.name!r} does not turn its data into examples, so it cannot be "
                         f"meta-trained on; its plugin must define `examples(theta, data)`.")

    def model(self, inputs: tuple[int, ...], outputs: int, *, hidden: tuple[int, ...],
              generator: torch.Generator) -> nn.Module | None:
        """The network meta-trained on this domain's tasks, or None (the default) for an MLP with `hidden` layers.

        `inputs` is one example's input shape (`(3,)` for vectors, `(3, 32, 32)` for pictures),
        `outputs` the width of the last layer (targets, classes, or a learner's embedding), `hidden`
        the user's `--hidden` widths (interpret them as suits the network), `generator` the stream
        the initial weights must come from. Override it when an MLP on flat vectors does not fit the
        data, as the scenes domain does with a small CNN.
        """
        return None

    def view(self, theta: torch.Tensor, data: Any, index: int = 0, *, fmt: str = "png") -> bytes:
        """A picture of environment `index` of a generated batch (θ `[n, k]`, its data), for an expert to judge.

        Returns PNG bytes, or SVG bytes with `fmt="svg"`. The default draws each array observable
        of that environment against its position (at most `VIEW_PANELS`, `shared` ones left out;
        θ as bars when there is none), with θ in the title. Override it with the picture an expert of
        the domain would recognise; a domain that cannot be drawn raises `UsageError` saying so.
        """
        from gmhf.core.figures import caption, check_format, new_figure, render
        from gmhf.errors import UsageError

        check_format(fmt)
        if not 0 <= index < theta.shape[0]:
            raise UsageError(f"`index` must be in [0, {theta.shape[0]}), got {index!r}.")
        arrays = [o.name for o in self.space.observables
                  if o.shape == "array" and o.name not in self.shared][:VIEW_PANELS]
        figure = new_figure((3.5 * max(1, len(arrays)), 2.8))
        axes = figure.subplots(1, max(1, len(arrays)), squeeze=False)[0]
        if arrays:
            observed = self.observe(theta, data)
            for ax, name in zip(axes, arrays, strict=False):
                ax.plot(observed[name][index].tolist(), linewidth=1.0)
                ax.set_xlabel("position")
                ax.set_ylabel(name)
        else:
            axes[0].barh(list(self.space.names), theta[index].tolist())
            axes[0].set_xlabel("value")
        figure.suptitle(caption(self.space, theta[index]), fontsize=9)
        return render(figure, fmt)

    def truth_spec(self) -> str | None:
        """The text of the domain's benchmark truth spec (`domain <name>` …), or None if it has none.

        A benchmark's simulated experts answer by it and its target data are drawn from it; a real
        run needs none. The default is None.
        """
        return None

    def __repr__(self) -> str:
        return f"<Domain {self.name!r} factors={len(self.space)}>"
