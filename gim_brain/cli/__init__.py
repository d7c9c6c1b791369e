"""The ``gim-brain`` command line: one entry point, one module per subcommand."""
