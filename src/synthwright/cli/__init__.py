"""The `synthwright` command line: one module per command group."""
