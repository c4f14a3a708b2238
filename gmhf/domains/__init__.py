"""Built-in domains: `sinusoid` and `duffing`.

They register through the same `gmhf_domains` hook as a third-party domain would (the plugin host
lists them in `BUILTIN_PLUGINS`), so they are worked examples of the plugin API. The core never
imports them; only the plugin host does, by module path.
"""
