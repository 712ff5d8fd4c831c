"""Federation: discovery of other registries, their keys and identity providers, and token validation."""
