"""Small pieces shared by the registry, the storage providers and federation.

Nothing here imports `registry`, `storage` or `federation`: each of them may import `common`.
"""
