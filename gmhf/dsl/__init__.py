"""The guidance language: parse, check and format specs (torch-free)."""
