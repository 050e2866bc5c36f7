"""compose.yaml and the Dockerfile, checked without Docker (CI here cannot run containers): every service's
command is a real `mixpilot` sub-command, every MIXPILOT_* variable a `Settings` field (and the whole
environment a valid production `Settings`), URLs point at services on the ports they listen on, every
long-running service has a health check and every dependency waits on one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
#: ${VAR}, ${VAR:-default}, ${VAR:?message}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def _ours(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("mixpilot")


def _by_command(services, sub: str) -> dict[str, Any]:
    found = [s for s in services.values() if _ours(s) and (s.get("command") or [None])[0] == sub]
    assert len(found) == 1, f"one service runs `mixpilot {sub}`"
    return found[0]


def _resolve(value: str) -> str:
    """Compose's interpolation with an empty shell: defaults taken, required values given a strong stand-in."""

    def one(m: re.Match) -> str:
        name, kind, rest = m.groups()
        if kind == "-":
            return rest
        return f"{name.lower()}-" + "x7Q2mZ9pL4vR8sT1" * 3  # `:?` must be set: a long random-looking value

    return INTERPOLATION.sub(one, value)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _resolve(str(v)) for k, v in env.items()}


def _settings_env_names() -> set[str]:
    from pydantic import AliasChoices

    from app.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    names = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(c).upper() for c in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def test_the_roles_are_all_there(services):
    _by_command(services, "serve")
    _by_command(services, "worker")
    _by_command(services, "migrate")
    images = {name: str(s.get("image", "")) for name, s in services.items()}
    for needed in ("postgres", "redis", "chromadb/chroma", "minio/minio", "minio/mc"):
        assert any(img.startswith(needed) for img in images.values()), f"no {needed} service"


def test_every_command_is_a_real_cli_command(services, dockerfile):
    from app.cli import COMMANDS, build_parser

    assert re.search(r'^ENTRYPOINT \["mixpilot"\]', dockerfile, re.M), "the image's entrypoint is `mixpilot`"
    default = re.search(r"^CMD (\[.*\])", dockerfile, re.M)
    assert default is not None
    parser = build_parser()
    commands = [yaml.safe_load(default.group(1))]
    commands += [s["command"] for s in services.values() if _ours(s)]
    assert len(commands) >= 5
    for argv in commands:
        assert isinstance(argv, list) and argv[0] in COMMANDS, argv
        args = parser.parse_args(argv)  # SystemExit (a failure) on an unknown option or value
        assert args.command == argv[0]


def test_environment_names_are_settings_fields_and_make_valid_production_settings(services, monkeypatch):
    from app.settings import Settings

    known = _settings_env_names()
    envs = [_env(s) for s in services.values() if _ours(s)]
    assert envs and all(envs)
    for env in envs:
        ours = {k: v for k, v in env.items() if k.startswith("MIXPILOT_")}
        unknown = sorted(set(ours) - known)
        assert not unknown, f"not Settings fields: {unknown}"
        for name in list(__import__("os").environ):
            if name.startswith("MIXPILOT_"):
                monkeypatch.delenv(name)
        for k, v in ours.items():
            monkeypatch.setenv(k, v)
        settings = Settings(_env_file=None)
        assert settings.environment == "production"
        settings.api_secret()  # production refuses a weak or missing secret
        assert settings.database_url and settings.redis_url and settings.chroma_url and settings.storage_url
        assert settings.retention_days > 0 and int(settings.user_quota_bytes) >= 1024**3


def test_urls_point_at_services_on_the_ports_they_listen_on(services):
    env = _env(_by_command(services, "serve"))

    def listening(host: str) -> set[int]:
        assert host in services, f"{host} is not a service"
        return {int(p) for p in services[host].get("expose") or []}

    for var, default in (
        ("MIXPILOT_DATABASE_URL", 5432),
        ("MIXPILOT_REDIS_URL", 6379),
        ("MIXPILOT_CHROMA_URL", 8000),
        ("MIXPILOT_STORAGE_ENDPOINT_URL", 9000),
    ):
        u = urlparse(env[var])
        assert u.hostname and (u.port or default) in listening(u.hostname), var
    minio = services[urlparse(env["MIXPILOT_STORAGE_ENDPOINT_URL"]).hostname]
    assert f":{urlparse(env['MIXPILOT_STORAGE_ENDPOINT_URL']).port}" in minio["command"]
    # the bucket MIXPILOT_STORAGE_URL names is the one the one-shot creates
    bucket = urlparse(env["MIXPILOT_STORAGE_URL"]).netloc
    creators = [s for s in services.values() if str(s.get("image", "")).startswith("minio/mc")]
    assert creators and any(f"/{bucket}" in " ".join(s["command"]) for s in creators)
    # the bucket creator signs in with the credentials the services use
    assert env["MIXPILOT_STORAGE_ACCESS_KEY_ID"] == _env(minio)["MINIO_ROOT_USER"]
    assert env["MIXPILOT_STORAGE_SECRET_ACCESS_KEY"] == _env(minio)["MINIO_ROOT_PASSWORD"]


def test_the_api_port_is_the_one_it_serves_and_checks(services, dockerfile):
    from app.cli import build_parser

    api = _by_command(services, "serve")
    port = build_parser().parse_args(api["command"]).port
    assert build_parser().parse_args(["serve"]).port == port  # the CLI's default: the documented 8000
    published = [str(p).rsplit(":", 1)[-1] for p in api["ports"]]
    assert published == [str(port)]
    assert f"EXPOSE {port}" in dockerfile
    assert f"127.0.0.1:{port}/health" in dockerfile and f"127.0.0.1:{port}/health" in " ".join(
        api["healthcheck"]["test"]
    )
    host = _by_command(services, "serve")["command"]
    assert host[host.index("--host") + 1] == "0.0.0.0"  # reachable from outside its container


def test_health_checks_and_dependencies(services):
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        if not one_shot:
            test = (service.get("healthcheck") or {}).get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, how in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = (
                "service_completed_successfully"
                if services[dep].get("restart") == "no"
                else "service_healthy"
            )
            assert how.get("condition") == wanted, f"{name} -> {dep}: {how}"
    for role in ("serve", "worker"):
        deps = set(_by_command(services, role)["depends_on"])
        assert {"postgres", "redis", "chroma", "minio", "migrate"} <= deps


def test_workers_scale(services):
    worker = _by_command(services, "worker")
    assert "container_name" not in worker and "ports" not in worker  # N copies may run side by side
    assert int(worker["deploy"]["replicas"]) >= 1


def test_the_dockerfile(dockerfile):
    import tomllib

    froms = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert froms and all(re.fullmatch(r"python:3\.\d+-slim", f) for f in froms)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK ", dockerfile, re.M)
    extras = re.search(r"^ARG EXTRAS=(\S+)", dockerfile, re.M)
    assert extras is not None
    wanted = set(extras.group(1).split(","))
    assert {"api", "memory", "agent", "s3"} <= wanted
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert wanted <= set(declared)
    assert "[${EXTRAS}]" in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


def test_resolve_follows_compose_interpolation():
    assert _resolve("a${X:-b}c") == "abc"
    assert _resolve("${SECRET:?set it}").startswith("secret-")
    assert shlex.split(_resolve("x ${Y:-1 2}")) == ["x", "1", "2"]
