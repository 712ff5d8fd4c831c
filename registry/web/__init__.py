"""The web UI: server-rendered pages over the services the JSON API uses."""
