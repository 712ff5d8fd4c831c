"""Federation: find other registries, their keys and identity providers; validate tokens."""
