"""The provisioning commands, through click's runner over a real instance folder."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from contigo import create_app
from contigo.auth.models import User
from contigo.cli import main
from contigo.db import session_scope


def _secret(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    return str(path)


def _init(tmp_path: Path, runner: CliRunner) -> tuple[str, str]:
    inst = str(tmp_path / "inst")
    pw = _secret(tmp_path, "pw", "supervisor-secret-1")
    result = runner.invoke(
        main,
        [
            "--instance",
            inst,
            "init",
            "--site-code",
            "PE-LIM",
            "--site-name",
            "Lima",
            "--country",
            "PE",
            "--elevation",
            "150",
            "--username",
            "Rosa",
            "--password-file",
            pw,
        ],
        env={"CONTIGO_SCRYPT_N": "1024"},
    )
    assert result.exit_code == 0, result.output
    return inst, pw


def test_init_then_user_add_then_backup(tmp_path: Path) -> None:
    runner = CliRunner()
    inst, pw = _init(tmp_path, runner)
    new_pw = _secret(tmp_path, "new", "worker-secret-22")
    result = runner.invoke(
        main,
        [
            "--instance",
            inst,
            "user",
            "add",
            "--username",
            "luis",
            "--role",
            "health_worker",
            "--site",
            "PE-LIM",
            "--language",
            "pt",
            "--password-file",
            new_pw,
            "--as",
            "rosa",
            "--as-password-file",
            pw,
        ],
        env={"CONTIGO_SCRYPT_N": "1024"},
    )
    assert result.exit_code == 0, result.output
    app = create_app({"INSTANCE_PATH": inst, "IDLE_WATCH": False})
    with session_scope(app) as s:
        users = {u.username: u for u in s.scalars(select(User))}
    assert users["rosa"].role == "supervisor"
    assert users["luis"].language == "pt"
    result = runner.invoke(main, ["--instance", inst, "backup"])
    assert result.exit_code == 0, result.output
    assert list((Path(inst) / "backups").glob("contigo-*-manual.sqlite3"))
    result = runner.invoke(main, ["--instance", inst, "db", "upgrade"])
    assert result.exit_code == 0 and "revision" in result.output


def test_init_twice_fails_with_a_one_line_reason(tmp_path: Path) -> None:
    runner = CliRunner()
    inst, pw = _init(tmp_path, runner)
    result = runner.invoke(
        main,
        [
            "--instance",
            inst,
            "init",
            "--site-code",
            "X",
            "--site-name",
            "X",
            "--country",
            "PE",
            "--username",
            "y",
            "--password-file",
            pw,
        ],
    )
    assert result.exit_code != 0
    assert "already initialised" in result.output.lower() or "ya está" in result.output


def test_user_add_with_a_wrong_supervisor_password_fails(tmp_path: Path) -> None:
    runner = CliRunner()
    inst, _pw = _init(tmp_path, runner)
    bad = _secret(tmp_path, "bad", "not-the-password")
    new_pw = _secret(tmp_path, "new", "worker-secret-22")
    result = runner.invoke(
        main,
        [
            "--instance",
            inst,
            "user",
            "add",
            "--username",
            "eva",
            "--role",
            "health_worker",
            "--site",
            "PE-LIM",
            "--password-file",
            new_pw,
            "--as",
            "rosa",
            "--as-password-file",
            bad,
        ],
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1


def test_serve_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--instance", str(tmp_path), "serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "127.0.0.1" in result.output


def test_the_commands_are_also_flask_commands(tmp_path: Path) -> None:
    from contigo import create_app as factory

    app = factory({"INSTANCE_PATH": str(tmp_path / "f"), "IDLE_WATCH": False})
    for name in ("init", "serve", "demo", "db", "user", "backup", "zscore"):
        assert name in app.cli.commands
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
