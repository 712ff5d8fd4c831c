"""Peering: invitations, partner registries and their state, and the check of their signed
requests (routes → `service.Peering` → `store`)."""
