"""One module per scenario, each with ``add_arguments(parser)`` and ``main(args) -> exit
status``; ``python -m loadtest`` dispatches to them by name."""
