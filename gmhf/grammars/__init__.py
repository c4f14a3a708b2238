"""The grammar of the guidance language (package data)."""
