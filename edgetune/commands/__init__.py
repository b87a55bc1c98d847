"""One module per `edgetune` subcommand (see edgetune/cli.py for the shared protocol)."""
