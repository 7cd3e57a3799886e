"""The ``ltp`` command (the console script's entry point): the library's subcommands plus
``ltp serve``.

The entry point lives here, in the service, because ``serve`` is the one command that needs
``app``: ``app`` imports ``ltp``, and ``ltp`` never imports ``app``. Building the parser is
cheap on both sides: ``ltp.cli.parser`` only declares arguments (each command imports its library
modules when it runs) and ``app.settings`` needs neither torch nor the training code, so
``ltp serve`` loads the service and the pruned forward, and nothing of training, data
loading or benchmarking (``tests/app/test_cli.py`` checks this).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from app.settings import Settings
from ltp.cli import parser as ltp_cli


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the flags given; a flag not given leaves the LTP_* variable or the default."""
    overrides = {k: v for k, v in vars(args).items()
                 if k in Settings.model_fields and v is not None}
    return Settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> dict:
    import uvicorn

    from app.server import Server, server_config
    from ltp.core.artifact import ArtifactError, resolve_device

    settings = settings_from_args(args)
    try:  # a device that is not there stops here, in one line, before the server starts
        resolve_device(settings.device)
    except ArtifactError as exc:
        raise SystemExit(f"ltp serve: {exc}; LTP_DEVICE=cpu (or --device cpu) serves on the CPU") from None
    if settings.log_json:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    config = server_config(settings, log_config=None if settings.log_json
                           else uvicorn.config.LOGGING_CONFIG)
    server = Server(config)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's exit status when the server did not start
    return {}


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``Settings`` field, with its type, default and description as help.

    Flags default to None so that a flag not given leaves the LTP_* variable or the default.
    """
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = ",".join(default) if isinstance(default, list) else default
        shown = "" if shown in (None, "") else f"default: {shown}; "  # nothing to show: no noise
        helptext = f"{field.description} ({shown}env LTP_{name.upper()})"
        flag = "--" + name.replace("_", "-")
        kind = field.annotation
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=helptext)
        elif kind == list[str]:
            parser.add_argument(flag, type=lambda v: [x for x in v.split(",") if x],
                                default=None, help=helptext)
        else:
            convert = kind if kind in (int, float, Path) else str
            parser.add_argument(flag, type=convert, default=None, help=helptext)


def build_parser() -> argparse.ArgumentParser:
    """The library's parser with ``serve`` added."""
    parser = ltp_cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    help = "run the HTTP service (settings also from LTP_* variables)"
    p = sub.add_parser("serve", help=help, description=help, formatter_class=ltp_cli.HelpFormatter)
    add_settings_flags(p)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    return ltp_cli.main(argv, parser=build_parser())


if __name__ == "__main__":
    sys.exit(main())
