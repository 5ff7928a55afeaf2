"""The shipped workflow templates (YAML files)."""
