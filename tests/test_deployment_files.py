"""The Dockerfile and compose.yaml say what docs/operations.md says, without Docker.

`make test` never needs a Docker daemon: these read the files (PyYAML for compose.yaml, a small
parser for the Dockerfile) and check what a broken deployment would get wrong: the services and
their order (migrations before web and workers), the persistent volumes, Redis' persistence,
the env file, the health checks, a non-root user, no secret in the image, and the same command
as the Procfile. `make docker-test` (not part of `make test`) builds and runs the real thing.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from hotline.core import settings as settings_module

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
HOTLINE_SERVICES = ("migrate", "web", "worker")
#: Every setting the hotline reads from its environment (docs/operations.md's table).
SETTING_NAMES = {name for name, _default, _doc in settings_module.documented()}
#: Settings whose value is a secret: never in the image.
SECRET_SETTINGS = {"SECRET_KEY", "TWILIO_AUTH_TOKEN", "HOTLINE_SEAL_KEY",
                   "HOTLINE_CALLER_KEY_SECRET", "POSTGRES_PASSWORD"}


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {kind: shlex.split(command) for kind, command in
            (line.split(":", 1) for line in lines if line.strip())}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, rest = whole.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each from its FROM; ARGs before the first FROM aside."""
    result: list[list[tuple[str, str]]] = []
    for instruction in dockerfile():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def exec_form(arguments: str) -> list[str]:
    """A CMD or HEALTHCHECK CMD in exec (JSON) form: no shell between Docker and the process,
    so SIGTERM reaches gunicorn and the worker."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), arguments
    return parsed


# compose.yaml ----------------------------------------------------------------------------------

def test_compose_runs_web_worker_postgres_redis_and_a_one_shot_migration():
    assert set(SERVICES) == {"migrate", "web", "worker", "postgres", "redis"}
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["redis"]["image"].startswith("redis:")
    for name in HOTLINE_SERVICES:
        # One image for every hotline process, built from this Dockerfile.
        assert SERVICES[name]["build"] == "."
        assert SERVICES[name]["image"] == SERVICES["web"]["image"]
    assert SERVICES["migrate"]["command"] == ["hotline", "db", "upgrade"]
    # A one-shot: restarting it after its exit 0 would run it for ever.
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["web"]["restart"] == SERVICES["worker"]["restart"] == "unless-stopped"


def test_compose_commands_are_the_procfiles():
    lines = procfile()
    assert SERVICES["web"]["command"] == lines["web"]
    assert SERVICES["worker"]["command"] == lines["worker"]


def test_web_and_workers_start_only_after_the_migrations_succeeded():
    for name in ("web", "worker"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    # Those conditions need the stores' own health checks.
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]
    assert SERVICES["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_postgres_and_redis_keep_their_data_in_named_volumes():
    assert set(COMPOSE["volumes"]) == {"postgres-data", "redis-data"}
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "redis-data:/data" in SERVICES["redis"]["volumes"]
    for name in HOTLINE_SERVICES:
        # The hotline keeps nothing on its own disk: any container can be replaced.
        assert "volumes" not in SERVICES[name], name


def test_redis_persists_every_second_and_never_evicts():
    command = SERVICES["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2]))
    assert command[0] == "redis-server"
    assert options == {"--appendonly": "yes", "--appendfsync": "everysec",
                       "--maxmemory-policy": "noeviction"}


def test_settings_come_from_the_env_file_whose_template_is_the_example():
    for name in HOTLINE_SERVICES:
        # config/hotline.env, unless HOTLINE_ENV_FILE names another (make docker-test).
        assert SERVICES[name]["env_file"] == "${HOTLINE_ENV_FILE:-config/hotline.env}", name
        # Only the stores' addresses are set here, pointing at the services above.
        environment = SERVICES[name]["environment"]
        assert set(environment) == {"DATABASE_URL", "REDIS_URL"}
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
    # The database password is required, never defaulted in the file.
    assert "${POSTGRES_PASSWORD:?" in SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]
    example = (ROOT / "config" / "hotline.env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert names <= SETTING_NAMES, names - SETTING_NAMES
    assert "HOTLINE_ENV" in names
    # The filled-in copy is never committed nor copied into the image.
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "config/hotline.env" in ignored and ".env" in ignored


def test_web_is_health_checked_on_healthz_and_workers_are_not():
    test = SERVICES["web"]["healthcheck"]["test"]
    assert test[0] == "CMD" and "/healthz" in " ".join(test)
    for name in ("worker", "migrate"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}, name
    # Behind TLS on the host: the plain HTTP port is published on the loopback only.
    assert all(port.startswith("127.0.0.1:") for port in SERVICES["web"]["ports"])


def test_at_least_two_workers():
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    assert SERVICES["worker"]["stop_signal"] == "SIGTERM"


# Dockerfile -------------------------------------------------------------------------------------

def test_the_image_runs_gunicorn_as_the_procfiles_web_line():
    cmds = [arguments for keyword, arguments in final_stage() if keyword == "CMD"]
    assert len(cmds) == 1
    assert exec_form(cmds[0]) == procfile()["web"]
    assert not [1 for keyword, _ in final_stage() if keyword == "ENTRYPOINT"]


def test_the_image_runs_as_a_non_root_user():
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # ... and that user is created in the image, with a non-zero uid.
    runs = " ".join(arguments for keyword, arguments in final_stage() if keyword == "RUN")
    created = re.search(r"useradd\b.*?--uid (\d+)\b.*\b" + re.escape(user) + r"\b", runs)
    assert created and int(created.group(1)) > 0


def test_the_image_checks_healthz():
    checks = [arguments for keyword, arguments in final_stage() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    assert "/healthz" in " ".join(exec_form(command))


def test_the_image_is_slim_python_311_with_the_postgres_extra_only():
    froms = [stage[0][1] for stage in stages()]
    args = dict(arguments.split("=", 1) for keyword, arguments in dockerfile()
                if keyword == "ARG" and "=" in arguments)
    bases = {args.get(base.split()[0].strip("${}"), base.split()[0]) for base in froms}
    assert bases == {"python:3.11-slim-bookworm"}
    installs = [arguments for keyword, arguments in dockerfile()
                if keyword == "RUN" and "pip install" in arguments]
    assert installs == ['/opt/hotline/bin/pip install ".[postgres]"']


@pytest.mark.parametrize("keyword", ["COPY", "ADD"])
def test_no_secret_and_no_env_file_goes_into_the_image(keyword):
    for found, arguments in dockerfile():
        if found != keyword:
            continue
        sources = [a for a in shlex.split(arguments) if not a.startswith("--")][:-1]
        for source in sources:
            # No env file, and not the whole checkout (which would bring one if present).
            assert ".env" not in source and source not in (".", "./", "*"), arguments
    for found, arguments in dockerfile():
        if found in ("ENV", "ARG"):
            names = set(re.findall(r"([A-Z_][A-Z0-9_]*)=", arguments)) or {arguments.split()[0]}
            assert not names & SECRET_SETTINGS, arguments
            assert not names & (SETTING_NAMES - {"HOTLINE_ENV"}), (
                "settings come from the environment at run time: " + arguments)
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    # Everything is left out, then only what the image needs is let back in.
    assert rules[0] == "*"
    assert not [rule for rule in rules if rule.startswith("!") and "env" in rule]
    assert "**/*.env" in rules and "**/.env" in rules


def test_hadolint_basics():
    """The rules of hadolint that apply here, checked offline."""
    instructions = dockerfile()
    defaults = dict(arguments.split("=", 1) for keyword, arguments in instructions
                    if keyword == "ARG" and "=" in arguments)
    for keyword, arguments in instructions:
        assert keyword in {"ARG", "FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER", "EXPOSE",
                           "HEALTHCHECK", "CMD", "LABEL"}, keyword
        if keyword == "FROM":
            image = arguments.split()[0]
            image = defaults.get(image.strip("${}"), image)
            assert ":" in image and not image.endswith(":latest"), arguments  # DL3006/DL3007
        if keyword == "WORKDIR":
            assert arguments.startswith("/"), arguments  # DL3000
        if keyword == "RUN":
            assert "sudo " not in arguments and "cd " not in arguments  # DL3004, DL3003
            if "apt-get install" in arguments:
                assert "--no-install-recommends" in arguments  # DL3015
        if keyword == "COPY" and "--from=" in arguments:
            stage_names = {stage[0][1].split()[-1] for stage in stages() if " AS " in stage[0][1]}
            assert arguments.split("--from=")[1].split()[0] in stage_names  # DL3022
    # DL3042: no pip cache kept in a layer.
    assert any(k == "ENV" and "PIP_NO_CACHE_DIR=1" in a for k, a in instructions)
    # Multi-stage: the build stage is named, the final one is what runs.
    assert len(stages()) == 2 and stages()[0][0][1].endswith(" AS build")
