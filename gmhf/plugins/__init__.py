"""The plugin API (hookspecs), the plugin host, and the built-in plugins."""
