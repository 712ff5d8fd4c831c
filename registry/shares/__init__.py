"""Cross-domain shares (Open Cloud Mesh): what we share with a peer's users, and what peers
share with ours."""
