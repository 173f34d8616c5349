//! nodetel-config: loads, expands and validates the YAML config and builds the pipelines.
