"""The ``ltp`` command line: the parser (``parser``), what each subcommand does
(``commands``) and how results are printed (``output``)."""
