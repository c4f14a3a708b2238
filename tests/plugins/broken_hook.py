"""A plugin whose hook raises."""

from collections.abc import Callable

import gmhf


@gmhf.hookimpl
def gmhf_functions(register: Callable[..., None]) -> None:
    raise ValueError("registration blew up")
