"""deploy/compose.yaml and deploy/Dockerfile start what deploy/stack.py starts — the production
smoke test's command lines and environment — and what the README documents.

No Docker engine runs here, so these read the files: the compose file as Compose would after
interpolating deploy/.env, checked against the Compose Specification's JSON schema (vendored
next to this file) and against deploy/stack.py, the Makefile and the README.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dockerfile
import jsonschema
import pytest
import yaml

from deploy.stack import SETUP_COMMANDS, production_environment, service_commands
from grading.sandbox import isolation

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

# What an operator puts in deploy/.env: the values the compose file requires.
OPERATOR_ENV = {
    "CO_SECRET_KEY": "operator-secret",
    "CO_POSTGRES_PASSWORD": "operator-password",
    "CO_ALLOWED_HOSTS": "co.example.org",
}
CO_SERVICES = ("migrate", "web", "worker", "beat")
# Run learner or staff code: the sandbox's privileges (the others must not have them).
SANDBOXED_SERVICES = ("migrate", "web", "worker")
# Names a service may carry besides production_environment()'s, each documented in the README and
# passed through from deploy/.env without a value in the file (unset when the operator sets none).
OPTIONAL_ENVIRONMENT = {"CO_METRICS_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT"}
SANDBOX_SECURITY_OPTIONS = {"apparmor=unconfined", "seccomp=unconfined", "systempaths=unconfined"}


class MissingVariable(LookupError):
    """A `${NAME:?message}` whose variable the operator has not set: Compose refuses the file."""


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation of every string value (`$$`, `${X}`, `${X:-default}`, `${X-default}`,
    `${X:?error}`, `${X?error}`); keys are left as they are, as Compose leaves them."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        operator, argument = match.group("operator"), match.group("argument")
        current = env.get(name)
        missing = not current if operator and operator.startswith(":") else current is None
        if operator and operator.endswith("-"):
            return argument if missing else current
        if operator and operator.endswith("?") and missing:
            raise MissingVariable(f"{name}: {argument}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def compose(env: Mapping[str, str] = OPERATOR_ENV) -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def stack_environment_names() -> set[str]:
    """The names production_environment() sets, whatever its keyword arguments are."""
    arguments = {
        name: 1 if parameter.annotation in (int, "int") else "value"
        for name, parameter in inspect.signature(production_environment).parameters.items()
        if parameter.default is inspect.Parameter.empty
    }
    return set(production_environment(**arguments))


def readme_configuration_names() -> set[str]:
    """Every variable named in the first column of the README's configuration table."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Configuration", 1)[1].split("\n### ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) as BuildKit's parser reads them (it fails on a malformed file)."""
    return [(command.cmd.upper(), " ".join(command.value)) for command in dockerfile.parse_file(str(DOCKERFILE))]


def makefile_system_packages() -> set[str]:
    match = re.search(r"^SYSTEM_PACKAGES\s*:=\s*(.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match is not None, "the Makefile defines SYSTEM_PACKAGES"
    return {spec.split(":", 1)[0] for spec in match.group(1).split()}


def named_volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """{volume name: path in the container} of a service's named volumes."""
    targets = {}
    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        if not source.startswith((".", "/")):
            targets[source] = target
    return targets


# --- the file itself ---------------------------------------------------------------------------


def test_compose_file_is_valid_under_the_compose_specification_schema() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda error: list(error.path))
    assert [f"{list(error.path)}: {error.message}" for error in errors] == []


def test_schema_check_rejects_a_misspelt_service_key() -> None:
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    document = compose()
    document["services"]["web"]["healtcheck"] = document["services"]["web"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="healtcheck"):
        jsonschema.Draft201909Validator(schema).validate(document)


@pytest.mark.parametrize("variable", sorted(OPERATOR_ENV))
def test_compose_refuses_to_start_without_a_required_operator_setting(variable: str) -> None:
    env = {name: value for name, value in OPERATOR_ENV.items() if name != variable}
    with pytest.raises(MissingVariable, match=variable):
        compose(env)


def test_services_and_the_monitoring_profile(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {*CO_SERVICES, "postgres", "redis", "prometheus", "grafana"}
    assert {name: service.get("profiles") for name, service in services.items() if "profiles" in service} == {
        "prometheus": ["monitoring"],
        "grafana": ["monitoring"],
    }


# --- the same commands as deploy/stack.py ------------------------------------------------------


def test_migrate_runs_the_setup_commands_in_order_and_stops_at_the_first_failure(services: dict[str, dict[str, Any]]) -> None:
    shell, flags, script = services["migrate"]["command"]
    assert (shell, flags) == ("sh", "-ec")  # -e: a failed step fails the service, and nothing starts
    assert [tuple(shlex.split(line)) for line in script.splitlines() if line.strip()] == list(SETUP_COMMANDS)
    assert services["migrate"]["restart"] == "no"


def test_web_worker_and_beat_run_the_stack_commands(services: dict[str, dict[str, Any]]) -> None:
    beat_command = services["beat"]["command"]
    schedule = beat_command[beat_command.index("--schedule") + 1]
    expected = service_commands(worker_concurrency=2, beat_schedule=schedule)
    assert {name: tuple(services[name]["command"]) for name in expected} == expected
    # Beat's schedule outlives its container: it lies in the service's own volume.
    assert schedule.rsplit("/", 1)[0] in named_volume_targets(services["beat"]).values()


def test_worker_concurrency_is_the_operator_setting() -> None:
    worker = compose({**OPERATOR_ENV, "CO_WORKER_CONCURRENCY": "7"})["services"]["worker"]
    assert tuple(worker["command"]) == service_commands(worker_concurrency=7, beat_schedule="unused")["worker"]


def test_the_services_start_after_the_setup_succeeded(services: dict[str, dict[str, Any]]) -> None:
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


# --- the same environment as deploy/stack.py, documented in the README -------------------------


def test_each_service_gets_production_environment_names(services: dict[str, dict[str, Any]]) -> None:
    expected = stack_environment_names() | OPTIONAL_ENVIRONMENT
    for name in CO_SERVICES:
        assert set(services[name]["environment"]) == expected, name
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name in CO_SERVICES:
        optional = {key: value for key, value in raw[name]["environment"].items() if key in OPTIONAL_ENVIRONMENT}
        assert optional == dict.fromkeys(OPTIONAL_ENVIRONMENT), f"{name}: optional settings are passed through, unset by default"


def test_every_environment_name_is_in_the_readme_configuration_table(services: dict[str, dict[str, Any]]) -> None:
    names = set().union(*(services[name]["environment"] for name in CO_SERVICES))
    assert sorted(names - readme_configuration_names()) == []


def test_environment_values_point_at_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    environment = services["web"]["environment"]
    assert environment["CO_ENV"] == "production"
    database = urlsplit(environment["CO_DB_URL"])
    postgres = services["postgres"]["environment"]
    assert (database.scheme, database.hostname, database.port, database.path) == ("postgres", "postgres", 5432, "/co")
    assert (database.username, database.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    assert postgres["POSTGRES_PASSWORD"] == OPERATOR_ENV["CO_POSTGRES_PASSWORD"]
    assert postgres["POSTGRES_DB"] == "co"
    assert urlsplit(environment["CO_REDIS_URL"])[:2] == ("redis", "redis:6379")
    assert environment["CO_SECRET_KEY"] == OPERATOR_ENV["CO_SECRET_KEY"]
    # The operator's host, the health check's and the one Prometheus scrapes.
    assert environment["CO_ALLOWED_HOSTS"].split(",") == ["co.example.org", "127.0.0.1", "web"]
    # The issuer's key is a compose secret: a file path in the environment.
    assert environment["CO_JWT_PUBLIC_KEY"] == "/run/secrets/jwt_public_key"
    for name in CO_SERVICES:
        assert services[name]["secrets"] == ["jwt_public_key"]
        assert services[name]["environment"] == environment, name


# --- ports, health checks, volumes -------------------------------------------------------------


def test_web_publishes_its_bind_port_and_checks_health_on_it(services: dict[str, dict[str, Any]]) -> None:
    web = services["web"]
    port = web["environment"]["CO_WEB_BIND"].rsplit(":", 1)[1]
    assert web["environment"]["CO_WEB_BIND"] == f"0.0.0.0:{port}"
    assert web["ports"] == [f"8000:{port}"]
    assert f"http://127.0.0.1:{port}/health" in " ".join(web["healthcheck"]["test"])


def test_only_web_publishes_a_port_to_the_network(services: dict[str, dict[str, Any]]) -> None:
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {"web": ["8000:8000"], "prometheus": ["127.0.0.1:9090:9090"], "grafana": ["127.0.0.1:3000:3000"]}


def test_postgres_and_redis_are_healthy_before_anything_starts(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["healthcheck"]["test"] == ["CMD", "pg_isready", "-U", "co", "-d", "co"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_web_health_check_command_passes_on_200_and_fails_on_503(services: dict[str, dict[str, Any]]) -> None:
    """The probe exits 0 only on a 2xx: /health's 503 (database unreachable) marks web unhealthy."""
    kind, program, flag, code = services["web"]["healthcheck"]["test"]
    assert (kind, program, flag) == ("CMD", "python", "-c")
    for status, returncode in ((200, 0), (503, 1)):
        with _answering(status) as url:
            probe = code.replace("http://127.0.0.1:8000", url)
            assert probe != code
            result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30, check=False)
        assert result.returncode == returncode, result.stderr.decode()


@pytest.mark.requires_services
def test_worker_health_check_passes_while_the_worker_runs_and_fails_once_it_is_gone(
    services: dict[str, dict[str, Any]], settings, tmp_path: Path
) -> None:
    """The compose worker's own command on the test broker (one pool process; nothing is graded,
    so the embedded sandbox is not warmed up), checked with the compose health check."""
    command = compose({**OPERATOR_ENV, "CO_WORKER_CONCURRENCY": "1"})["services"]["worker"]["command"]
    kind, check = services["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    bin_dir = Path(sys.executable).parent
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("CO_")},
        "PATH": os.pathsep.join([str(bin_dir), os.environ["PATH"]]),
        "HOSTNAME": socket.gethostname(),  # as Docker sets it; the worker's node name has it
        "CO_ENV": "test",
        "CO_DB_URL": os.environ["CO_DB_URL"],
        "CO_REDIS_URL": settings.REDIS_URL,
        "CO_EVAL_BASE": "http://127.0.0.1:9",
    }

    def health_check() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["/bin/sh", "-c", check], env=env, capture_output=True, timeout=60, check=False)

    log = (tmp_path / "worker.log").open("ab")
    worker = subprocess.Popen(
        [str(bin_dir / command[0]), *command[1:]], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        result = health_check()
        for _ in range(30):  # Docker retries too; the worker needs a moment to connect
            if result.returncode == 0 or worker.poll() is not None:
                break
            result = health_check()
        assert result.returncode == 0, (result.stdout + result.stderr).decode() + (tmp_path / "worker.log").read_text()
        assert b"pong" in result.stdout
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()
    gone = health_check()
    assert gone.returncode != 0
    assert b"No nodes replied" in gone.stdout + gone.stderr


def test_volumes_are_declared_used_and_keep_state(services: dict[str, dict[str, Any]]) -> None:
    used = {volume: name for name, service in services.items() for volume in named_volume_targets(service)}
    assert set(used) == set(compose()["volumes"])
    assert named_volume_targets(services["postgres"]) == {"postgres-data": "/var/lib/postgresql/data"}
    assert named_volume_targets(services["redis"]) == {"redis-data": "/data"}
    # Course pack files written by seed and by the admin's uploads (MEDIA_ROOT's default under /app).
    for name in ("migrate", "web"):
        assert named_volume_targets(services[name])["media"] == "/app/var/media"
    # The metrics of the web's and the worker's processes, which a scrape of web adds up; no other
    # service's processes count there.
    assert {name for name, service in services.items() if "metrics" in named_volume_targets(service)} == {"web", "worker"}
    for name in ("web", "worker"):
        assert named_volume_targets(services[name])["metrics"] == services[name]["environment"]["CO_METRICS_DIR"]


def test_bind_mounted_files_exist() -> None:
    """Prometheus's and Grafana's configuration come from the repository."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    sources = [mount.split(":")[0] for service in raw.values() for mount in service.get("volumes", [])]
    files = [source for source in sources if source.startswith("./")]
    assert sorted(files) == [
        "./grafana/co.json",
        "./grafana/provisioning",
        "./prometheus/alerts.yml",
        "./prometheus/prometheus.yml",
    ]
    assert [source for source in files if not (DEPLOY / source).exists()] == []


# --- the sandbox's privileges ------------------------------------------------------------------


def test_services_that_run_code_get_the_sandbox_privileges(services: dict[str, dict[str, Any]]) -> None:
    for name in SANDBOXED_SERVICES:
        service = services[name]
        assert service["user"] == "root", name
        assert service["cap_add"] == ["SYS_ADMIN", "SYS_NICE"], name
        assert set(service["security_opt"]) == SANDBOX_SECURITY_OPTIONS, name
        assert service["init"] is True, name  # reaps what the sandbox helpers leave to pid 1
    for name in set(services) - set(SANDBOXED_SERVICES):
        assert not {"user", "cap_add", "security_opt", "privileged"} & set(services[name]), name


def test_containers_of_a_host_share_the_run_uid_locks(services: dict[str, dict[str, Any]]) -> None:
    """One lock directory per host, as on a machine without containers: two containers never hand
    out the same run uid at once."""
    # The container's temporary directory is /tmp (TMPDIR is unset there).
    locks = f"/tmp/{Path(isolation._SLOT_DIR).name}"
    for name in SANDBOXED_SERVICES:
        assert named_volume_targets(services[name])["sandbox-uid-slots"] == locks, name


# --- the image ---------------------------------------------------------------------------------


def test_image_is_a_debian_python_312_or_newer() -> None:
    base = next(arguments for keyword, arguments in dockerfile_instructions() if keyword == "FROM")
    match = re.fullmatch(r"python:3\.(\d+)-slim-(bookworm|trixie)", base)
    assert match is not None, base
    assert int(match.group(1)) >= 12


def test_image_installs_the_makefile_system_packages() -> None:
    installed = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword == "RUN" and "apt-get install" in arguments:
            for command in arguments.split("&&"):
                words = shlex.split(command)
                if words[:2] == ["apt-get", "install"]:
                    installed |= {word for word in words[2:] if not word.startswith("-")}
    assert installed == makefile_system_packages()


def test_image_installs_requirements_txt_alone_and_collects_static_files() -> None:
    instructions = dockerfile_instructions()
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert ("COPY", "requirements.txt /tmp/requirements.txt") in instructions
    assert any("pip install --requirement /tmp/requirements.txt" in run for run in runs)
    assert not any("requirements-dev" in arguments for _, arguments in instructions)
    assert any(run.endswith("python manage.py collectstatic --no-input") for run in runs)


def test_image_runs_as_an_unprivileged_user_by_default() -> None:
    """Numeric, so a runtime can tell it is not root without reading the image's /etc/passwd."""
    instructions = dockerfile_instructions()
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users == ["10001:10001"]
    run = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "groupadd --system --gid 10001 co" in run
    assert "useradd --system --uid 10001 --gid co" in run


def test_dockerfile_passes_hadolint() -> None:
    """Every finding, down to `info`, fails; an accepted one is ignored in the Dockerfile with its reason."""
    hadolint = Path(sys.executable).parent / "hadolint"
    command = [str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)]
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert (result.returncode, result.stdout.decode(), result.stderr.decode()) == (0, "", "")


def test_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = {line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if not line.startswith("#")}
    assert {".env", "**/.env", "deploy/secrets", "var", ".venv", ".git"} <= ignored
    build = yaml.safe_load(COMPOSE_FILE.read_text())["x-co-image"]["build"]
    assert build == {"context": "..", "dockerfile": "deploy/Dockerfile"}


# --- monitoring --------------------------------------------------------------------------------


def test_prometheus_scrapes_web_with_the_mounted_token_and_loads_the_alerts(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert "/etc/prometheus/alerts.yml" in [str(Path("/etc/prometheus") / path) for path in config["rule_files"]]
    web_jobs = [job for job in config["scrape_configs"] if any("web:8000" in group["targets"] for group in job["static_configs"])]
    assert len(web_jobs) == 1
    assert web_jobs[0].get("metrics_path", "/metrics") == "/metrics"
    assert web_jobs[0]["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert services["prometheus"]["secrets"] == ["metrics_token"]


def test_grafana_loads_the_dashboard_on_the_provisioned_data_source(services: dict[str, dict[str, Any]]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == ("prometheus", "http://prometheus:9090", True)
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "co.yml").read_text())["providers"]
    assert "./grafana/co.json:" + provider["options"]["path"] + "/co.json:ro" in services["grafana"]["volumes"]
    dashboard = json.loads((DEPLOY / "grafana" / "co.json").read_text())
    named = {uid for uid in _datasource_uids(dashboard) if not uid.startswith("$")}
    assert named <= {source["uid"]}


def _datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        datasource = node.get("datasource")
        if isinstance(datasource, dict) and "uid" in datasource:
            yield datasource["uid"]
        for value in node.values():
            yield from _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _datasource_uids(value)


@contextlib.contextmanager
def _answering(status: int) -> Iterator[str]:
    """A loopback server answering every GET with `status`; yields its URL."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
