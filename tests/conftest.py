"""Test set-up: one torch thread, no installed plugins, the toy test plugins registered."""

from __future__ import annotations

import os

# Installed entry points must not leak into tests; tests add plugins themselves.
os.environ["GMHF_LOAD_PLUGINS"] = ""
os.environ.pop("GMHF_DISABLE_PLUGINS", None)
os.environ.pop("GMHF_STRICT_PLUGINS", None)

import pytest  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def toy_plugins():
    """Every test sees the built-ins plus the toy domain and the extras plugin, nothing installed."""
    from gmhf.plugins.manager import using_plugins
    from tests.plugins import extras, toy

    with using_plugins(toy, extras) as host:
        yield host
