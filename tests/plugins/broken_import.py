"""A plugin that fails when imported."""

raise RuntimeError("this plugin cannot be imported")
