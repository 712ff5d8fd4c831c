"""SQL for the registry. Functions take a connection; the caller owns the transaction."""
