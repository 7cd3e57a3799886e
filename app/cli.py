"""The `ltp` command: the library's subcommands plus `ltp serve`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ltp import cli as ltp_cli


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def cmd_serve(args: argparse.Namespace) -> dict:
    import uvicorn

    from app.main import create_app
    from app.settings import Settings

    overrides = {k: v for k, v in vars(args).items()
                 if k in Settings.model_fields and v is not None}
    settings = Settings(**overrides)
    if settings.log_json:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_config=None if settings.log_json else uvicorn.config.LOGGING_CONFIG,
                timeout_graceful_shutdown=30)
    return {}


def build_parser() -> argparse.ArgumentParser:
    parser = ltp_cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.add_parser("serve", help="run the HTTP service (settings also from LTP_* variables)")
    p.add_argument("--models-dir")
    p.add_argument("--default-model")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--threads", type=int)
    p.add_argument("--workers", type=int, help="batches run side by side")
    p.add_argument("--max-batch-size", type=int)
    p.add_argument("--max-batch-tokens", type=int)
    p.add_argument("--max-wait-ms", type=float)
    p.add_argument("--request-timeout-s", type=float)
    p.add_argument("--api-key")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--log-json", action="store_true", default=None)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    return ltp_cli.main(argv, parser=build_parser())


if __name__ == "__main__":
    sys.exit(main())
