"""What every area's commands share: the app for the root ``--instance``, secrets read without
argv, and a failure reported on one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo

from contigo.errors import ContigoError

#: Where the root command keeps the app factory (the command line's composition root,
#: :mod:`contigo.cli`, puts it there; under ``flask --app contigo`` the loaded app carries it).
APP_FACTORY = "contigo.app_factory"


def app_for(ctx: click.Context, **overrides: Any) -> Flask:
    """The app of the root command's ``--instance`` (disposed of when the command ends)."""
    root = ctx.find_root()
    factory: Callable[[dict[str, Any]], Flask] | None = root.meta.get(APP_FACTORY)
    if factory is None:  # a command of `flask --app contigo`: the factory of the app it loaded
        factory = ctx.ensure_object(ScriptInfo).load_app().extensions[APP_FACTORY]
    instance = root.params.get("instance")
    config: dict[str, Any] = {"IDLE_WATCH": False, **overrides}
    if instance:
        config["INSTANCE_PATH"] = instance
    app = factory(config)
    ctx.call_on_close(app.extensions["contigo.engine"].dispose)
    return app


def read_secret(path: str | None, env: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from a file, else an environment variable, else an interactive prompt."""
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        raise click.UsageError(f"give --password-file or set {env}")
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


def fail(exc: ContigoError) -> None:
    """Exit non-zero with the error's message and its fields on one line."""
    detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
    raise click.ClickException(f"{exc.message()} {detail}".strip())
