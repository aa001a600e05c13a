"""Model backends. See `base` for the contract and the registry."""
