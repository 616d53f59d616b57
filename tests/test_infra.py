"""Deployment files, checked without Docker or Kubernetes: the Dockerfile, the Compose file and the Helm chart.

The chart's templates are rendered by a small interpreter of the Go-template subset they use (include,
define, if/else, pipelines with quote, toYaml, nindent, default, printf, required, dict, add, trunc,
trimSuffix, not). It is strict where Helm is lenient: a `.Values` path missing from values.yaml or an
unknown function is an error, so a typo in a template fails here rather than rendering an empty string.
Environment variable names are checked against the real settings (backend.core.settings.Settings)."""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.core.settings import Settings
from backend.runs.backends.redis import RedisRunQueue

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "infra" / "Dockerfile"
COMPOSE = ROOT / "infra" / "docker-compose.yml"
CHART = ROOT / "infra" / "helm" / "prompt-playground"

# Read by the backend directly rather than through Settings (checked below to be real).
ENV_READ_OUTSIDE_SETTINGS = {"PLAYGROUND_LOG_LEVEL", "PLAYGROUND_LOG_FORMAT"}


def setting_env_names() -> set[str]:
    """Every environment variable Settings reads: PLAYGROUND_<FIELD>, or a field's own alias."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


def valid_env_names() -> set[str]:
    return setting_env_names() | ENV_READ_OUTSIDE_SETTINGS


def test_env_names_come_from_settings() -> None:
    names = setting_env_names()
    assert {"PLAYGROUND_DATABASE_URL", "PLAYGROUND_REDIS_URL", "PLAYGROUND_MASTER_KEY"} <= names
    assert {"PLAYGROUND_WORKER_METRICS_HOST", "PLAYGROUND_WORKER_GRACE_SECONDS", "ANTHROPIC_API_KEY"} <= names
    assert "PLAYGROUND_DATABSE_URL" not in names
    sources = "\n".join(p.read_text() for p in (ROOT / "backend").rglob("*.py"))
    for name in ENV_READ_OUTSIDE_SETTINGS:
        assert f'"{name}"' in sources, f"{name} is no longer read by the backend"


def assert_env_names(names: list[str], where: str) -> None:
    valid = valid_env_names()
    unknown = sorted(set(names) - valid)
    assert not unknown, f"{where}: not settings of the product: {unknown}"


# --- Dockerfile -------------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages(text: str) -> list[dict[str, Any]]:
    stages: list[dict[str, Any]] = []
    for keyword, args in dockerfile_instructions(text):
        if keyword == "FROM":
            words = args.split()
            image = next(w for w in words if not w.startswith("--"))
            name = words[words.index("AS") + 1] if "AS" in words else (words[words.index("as") + 1] if "as" in words
                                                                     else None)
            stages.append({"image": image, "name": name, "instructions": []})
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1]["instructions"].append((keyword, args))
    return stages


def instruction_args(stage: dict[str, Any], keyword: str) -> list[str]:
    return [args for kw, args in stage["instructions"] if kw == keyword]


def test_dockerfile_stages_and_runtime() -> None:
    text = DOCKERFILE.read_text()
    stages = dockerfile_stages(text)
    assert len(stages) >= 2, "multi-stage: a frontend build and a runtime at least"
    frontend = stages[0]
    assert frontend["image"].startswith("node:20"), frontend["image"]
    runs = " && ".join(instruction_args(frontend, "RUN"))
    assert "npm ci" in runs and "npm run build" in runs

    runtime = stages[-1]
    assert runtime["image"].startswith("python:3.11-slim"), runtime["image"]
    users = instruction_args(runtime, "USER")
    assert users, "the runtime stage must switch to an unprivileged user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"runs as {user}"
    assert json.loads(instruction_args(runtime, "ENTRYPOINT")[-1]) == ["playground"]
    cmd = json.loads(instruction_args(runtime, "CMD")[-1])
    assert cmd[0] == "api" and "0.0.0.0" in cmd
    assert "8000" in instruction_args(runtime, "EXPOSE")[-1].split()
    healthcheck = instruction_args(runtime, "HEALTHCHECK")[-1]
    assert "/healthz" in healthcheck and "python" in healthcheck and "curl" not in healthcheck

    # The frontend build reaches the runtime, placed where backend/web/spa.py serves it from.
    stage_names = {s["name"] for s in stages}
    copies_from = [re.search(r"--from=(\S+)", a) for s in stages for a in instruction_args(s, "COPY")]
    assert {m.group(1) for m in copies_from if m} >= {frontend["name"]}
    assert all(m.group(1) in stage_names for m in copies_from if m)
    assert "DEFAULT_DIST" in text
    from backend.web import spa

    assert spa.DEFAULT_DIST.parts[-2:] == ("frontend", "dist")
    # The project without dev extras.
    installs = [a for s in stages for a in instruction_args(s, "RUN") if "pip install" in a]
    assert installs and not any("[dev]" in a for a in installs)


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for needed in ("**/node_modules", ".venv", "data", "dist", ".git"):
        assert needed in ignored, f".dockerignore should leave out {needed}"
    for stage in dockerfile_stages(DOCKERFILE.read_text()):
        for args in instruction_args(stage, "COPY"):
            if "--from=" in args:
                continue
            sources = shlex.split(args)[:-1]
            for source in sources:
                top = source.rstrip("/").split("/")[0]
                assert (ROOT / source).exists(), f"COPY {source}: no such path"
                assert top not in ignored and source.rstrip("/") not in ignored, f"COPY {source} is in .dockerignore"


# --- Compose ----------------------------------------------------------------------------------------------

APP_SERVICES = ("migrate", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service["depends_on"].items()}


def test_compose_services_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", *APP_SERVICES}
    assert services["postgres"]["image"].startswith("postgres:")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert depends(services["migrate"]) == {"postgres": "service_healthy"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"].get("restart") in ("no", None)
    for name in ("api", "worker"):
        assert depends(services[name]) == {"migrate": "service_completed_successfully", "redis": "service_healthy"}
    assert any(str(p).endswith(":8000") or str(p) == "8000" for p in services["api"]["ports"])
    assert services["api"]["command"][:1] == ["api"] and "0.0.0.0" in services["api"]["command"]
    worker = services["worker"]["command"]
    assert worker[0] == "worker" and worker[worker.index("--concurrency") + 1] == "100"
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_redis_is_durable_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    command = " ".join(command) if isinstance(command, list) else command
    assert re.search(r"--appendonly\s+yes", command)
    assert re.search(r"--maxmemory-policy\s+noeviction", command)
    assert redis["volumes"], "append-only without a volume loses the queue with the container"


def test_compose_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "api", "worker"):
        check = services[name]["healthcheck"]
        assert not check.get("disable") and check["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert any("/readyz" in part or "/healthz" in part for part in services["api"]["healthcheck"]["test"])
    assert any(":9464/metrics" in part for part in services["worker"]["healthcheck"]["test"])
    assert services["migrate"]["healthcheck"]["disable"] is True  # a one-shot: the image's api check is moot


def test_compose_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert isinstance(env, dict), f"{name}: environment as a mapping"
        assert_env_names(list(env), f"compose service {name}")
        assert env["PLAYGROUND_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["PLAYGROUND_DATABASE_URL"]
        assert env["PLAYGROUND_REDIS_URL"].startswith("redis://redis:")
        # Required from infra/.env, never a default baked into the file.
        assert env["PLAYGROUND_MASTER_KEY"].startswith("${PLAYGROUND_MASTER_KEY:?")
    worker = services["worker"]
    assert worker["environment"]["PLAYGROUND_WORKER_METRICS_HOST"] == "0.0.0.0"
    grace = float(worker["environment"].get("PLAYGROUND_WORKER_GRACE_SECONDS",
                                            Settings.model_fields["worker_grace_seconds"].default))
    stop = worker["stop_grace_period"]
    assert stop.endswith("s") and float(stop[:-1]) > grace


# --- Helm chart: a renderer for the template subset the chart uses ---------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:("(?:\\.|[^"\\])*")|(\()|(\))|(\|)|(-?\d+(?:\.\d+)?)|(\.[\w.]*)|(\$[\w.]*)|([A-Za-z_]\w*))')


class TemplateError(Exception):
    pass


def _go_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        raise TemplateError(f"a {type(value).__name__} printed as text; use toYaml")
    return str(value)


def _truthy(value: Any) -> bool:
    return not (value is None or value is False or value == 0 or value == "" or value == {} or value == [])


def _indent(n: int, text: str) -> str:
    return "\n".join((" " * n + line) if line else line for line in text.split("\n"))


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def _required(message: str, value: Any) -> Any:
    if value is None or value == "":
        raise TemplateError(f"required: {message}")
    return value


class Chart:
    """Parses the templates once; renders them for a given set of values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = yaml.safe_load((path / "Chart.yaml").read_text())
        self.defaults = yaml.safe_load((path / "values.yaml").read_text())
        self.templates = {p.name: self._parse(p.read_text(), p.name) for p in sorted((path / "templates").iterdir())}
        self.defines: dict[str, list] = {}
        for tree in self.templates.values():
            self._collect_defines(tree)

    # Parsing: text and actions into a tree of ("text", s) / ("expr", e) / ("if", branches, else) / ("define", n, b).
    def _parse(self, source: str, name: str) -> list:
        pieces: list[tuple[str, str]] = []
        position = 0
        for match in _ACTION.finditer(source):
            text = source[position:match.start()]
            if match.group(1):
                text = text.rstrip()
            pieces.append(("text", text))
            pieces.append(("action", match.group(2).strip()))
            position = match.end()
            if match.group(3):
                rest = source[position:]
                position += len(rest) - len(rest.lstrip())
        pieces.append(("text", source[position:]))
        tree, rest = self._block(pieces, 0, name, top=True)
        return tree

    def _block(self, pieces: list[tuple[str, str]], i: int, name: str, top: bool = False) -> tuple[list, int]:
        nodes: list = []
        while i < len(pieces):
            kind, body = pieces[i]
            if kind == "text":
                if body:
                    nodes.append(("text", body))
                i += 1
                continue
            if body.startswith("/*"):
                if not body.endswith("*/"):
                    raise TemplateError(f"{name}: unterminated comment")
                i += 1
                continue
            word = body.split(None, 1)[0]
            if word in ("end", "else"):
                if top:
                    raise TemplateError(f"{name}: unexpected {{{{ {body} }}}}")
                return nodes, i
            if word == "if":
                branches = []
                condition = body[2:].strip()
                otherwise: list = []
                i += 1
                while True:
                    block, i = self._block(pieces, i, name)
                    branches.append((condition, block))
                    if i >= len(pieces):
                        raise TemplateError(f"{name}: if without end")
                    closing = pieces[i][1]
                    i += 1
                    if closing == "end":
                        break
                    if closing.startswith("else if "):
                        condition = closing[len("else if "):].strip()
                        continue
                    if closing == "else":
                        otherwise, i = self._block(pieces, i, name)
                        if i >= len(pieces) or pieces[i][1] != "end":
                            raise TemplateError(f"{name}: else without end")
                        i += 1
                        break
                    raise TemplateError(f"{name}: unexpected {closing!r}")
                nodes.append(("if", branches, otherwise))
                continue
            if word == "define":
                define_name = json.loads(body.split(None, 1)[1])
                block, i = self._block(pieces, i + 1, name)
                if i >= len(pieces) or pieces[i][1] != "end":
                    raise TemplateError(f"{name}: define without end")
                nodes.append(("define", define_name, block))
                i += 1
                continue
            if word in ("range", "with", "template", "block", "break", "continue"):
                raise TemplateError(f"{name}: {word} is outside the subset this test renders; keep templates simple")
            nodes.append(("expr", body))
            i += 1
        if not top:
            raise TemplateError(f"{name}: block without end")
        return nodes, i

    def _collect_defines(self, nodes: list) -> None:
        for node in nodes:
            if node[0] == "define":
                self.defines[node[1]] = node[2]

    # Evaluation.
    def _functions(self) -> dict[str, Any]:
        return {
            "include": lambda name, ctx: self._render_nodes(self.defines[name], ctx),
            "default": lambda fallback, value=None: value if _truthy(value) else fallback,
            "quote": lambda value: json.dumps(_go_str(value)),
            "toYaml": _to_yaml,
            "nindent": lambda n, text: "\n" + _indent(int(n), text),
            "indent": lambda n, text: _indent(int(n), text),
            "trunc": lambda n, text: text[: int(n)],
            "trimSuffix": lambda suffix, text: text[: -len(suffix)] if suffix and text.endswith(suffix) else text,
            "printf": lambda fmt, *args: re.sub(r"%[sdv]", "{}", fmt).format(*(_go_str(a) for a in args)),
            "required": _required,
            "dict": lambda *kv: dict(zip(kv[::2], kv[1::2], strict=True)),
            "add": lambda *numbers: sum(int(n) for n in numbers),
            "not": lambda value: not _truthy(value),
        }

    def _tokens(self, expression: str) -> list[tuple[str, Any]]:
        tokens: list[tuple[str, Any]] = []
        position = 0
        expression = expression.rstrip()
        while position < len(expression):
            match = _TOKEN.match(expression, position)
            if not match or match.end() == position:
                raise TemplateError(f"cannot read {expression[position:]!r}")
            string, opening, closing, pipe, number, field, variable, ident = match.groups()
            if string is not None:
                tokens.append(("value", json.loads(string)))
            elif opening:
                tokens.append(("(", None))
            elif closing:
                tokens.append((")", None))
            elif pipe:
                tokens.append(("|", None))
            elif number is not None:
                tokens.append(("value", float(number) if "." in number else int(number)))
            elif field is not None:
                tokens.append(("field", field))
            elif variable is not None:
                tokens.append(("root", variable))
            elif ident in ("true", "false"):
                tokens.append(("value", ident == "true"))
            else:
                tokens.append(("func", ident))
            position = match.end()
        return tokens

    def _pipeline(self, tokens: list, i: int, ctx: Any, root: Any) -> tuple[Any, int]:
        value: Any = None
        piped = False
        while True:
            command: list = []
            while i < len(tokens) and tokens[i][0] not in ("|", ")"):
                if tokens[i][0] == "(":
                    inner, i = self._pipeline(tokens, i + 1, ctx, root)
                    if i >= len(tokens) or tokens[i][0] != ")":
                        raise TemplateError("unbalanced parentheses")
                    command.append(("value", inner))
                else:
                    command.append(tokens[i])
                i += 1
            value = self._command(command, ctx, root, value, piped)
            if i < len(tokens) and tokens[i][0] == "|":
                piped = True
                i += 1
                continue
            return value, i

    def _command(self, command: list, ctx: Any, root: Any, piped_value: Any, piped: bool) -> Any:
        if not command:
            raise TemplateError("empty command")
        if command[0][0] == "func":
            name = command[0][1]
            functions = self._functions()
            if name not in functions:
                raise TemplateError(f"function {name!r} is outside the subset this test renders")
            args = [self._term(t, ctx, root) for t in command[1:]]
            if piped:
                args.append(piped_value)
            return functions[name](*args)
        if piped or len(command) != 1:
            raise TemplateError(f"cannot apply {command!r}")
        return self._term(command[0], ctx, root)

    def _term(self, token: tuple[str, Any], ctx: Any, root: Any) -> Any:
        kind, value = token
        if kind == "value":
            return value
        if kind == "func":
            return self._command([token], ctx, root, None, False)
        base, path = (ctx, value) if kind == "field" else (root, value[1:])
        current = base
        for part in [p for p in path.split(".") if p]:
            if not isinstance(current, dict) or part not in current:
                raise TemplateError(f"{value}: no {part!r} here (missing from values.yaml?)")
            current = current[part]
        return current

    def _evaluate(self, expression: str, ctx: Any) -> Any:
        tokens = self._tokens(expression)
        root = ctx.get("__root__", ctx) if isinstance(ctx, dict) else ctx
        value, i = self._pipeline(tokens, 0, ctx, root)
        if i != len(tokens):
            raise TemplateError(f"unbalanced parentheses in {expression!r}")
        return value

    def _render_nodes(self, nodes: list, ctx: Any) -> str:
        out: list[str] = []
        for node in nodes:
            if node[0] == "text":
                out.append(node[1])
            elif node[0] == "expr":
                out.append(_go_str(self._evaluate(node[1], ctx)))
            elif node[0] == "if":
                for condition, block in node[1]:
                    if _truthy(self._evaluate(condition, ctx)):
                        out.append(self._render_nodes(block, ctx))
                        break
                else:
                    out.append(self._render_nodes(node[2], ctx))
        return "".join(out)

    def render(self, overrides: dict[str, Any] | None = None) -> dict[str, str]:
        values = _merge(self.defaults, overrides or {})
        ctx = {
            "Values": values,
            "Chart": {"Name": self.meta["name"], "Version": self.meta["version"],
                      "AppVersion": self.meta["appVersion"]},
            "Release": {"Name": "pp", "Namespace": "playground", "Service": "Helm"},
        }
        rendered = {}
        for name, tree in self.templates.items():
            text = self._render_nodes(tree, ctx)
            assert "{{" not in text and "}}" not in text, f"{name}: template syntax left after rendering"
            rendered[name] = text
        return rendered

    def manifests(self, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        documents = []
        for name, text in self.render(overrides).items():
            if not name.endswith((".yaml", ".yml")):
                continue
            for document in yaml.safe_load_all(text):
                if document is not None:
                    assert {"apiVersion", "kind", "metadata"} <= set(document), f"{name}: not a manifest"
                    documents.append(document)
        return documents


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = json.loads(json.dumps(base))
    for key, value in overrides.items():
        if key not in merged:
            raise KeyError(f"override {key!r} is not in values.yaml")
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged[key], dict) else value
    return merged


KEDA_ON = {"keda": {"redis": {"address": "redis.example:6379"}}}


def overrides(*parts: dict[str, Any]) -> dict[str, Any]:
    """Deep-merges override dicts (later wins), like several `--set`s."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = overrides(merged[key], value)
            else:
                merged[key] = value
    return merged


@pytest.fixture(scope="module")
def chart() -> Chart:
    return Chart(CHART)


@pytest.fixture(scope="module")
def manifests(chart: Chart) -> dict[tuple[str, str], dict[str, Any]]:
    by_key = {}
    for document in chart.manifests(KEDA_ON):
        key = (document["kind"], document["metadata"]["name"])
        assert key not in by_key, f"two {key}"
        by_key[key] = document
    return by_key


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"]


def container(document: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(document)["containers"]
    assert len(containers) == 1
    return containers[0]


def test_chart_metadata_and_values(chart: Chart) -> None:
    assert chart.meta["apiVersion"] == "v2" and chart.meta["name"] == "prompt-playground"
    assert chart.meta["version"] and chart.meta["appVersion"]
    values = chart.defaults
    assert values["secrets"]["existingSecret"] and values["secrets"]["create"] is False
    assert values["config"]["redisPrefix"] == Settings.model_fields["redis_prefix"].default
    assert values["worker"]["metricsPort"] == Settings.model_fields["worker_metrics_port"].default
    for component in ("api", "worker", "migrate"):
        assert {"cpu", "memory"} <= set(values[component]["resources"]["requests"]), component


def test_chart_renders_the_expected_objects(manifests: dict) -> None:
    assert set(manifests) == {
        ("Deployment", "pp-prompt-playground-api"),
        ("Service", "pp-prompt-playground-api"),
        ("HorizontalPodAutoscaler", "pp-prompt-playground-api"),
        ("Deployment", "pp-prompt-playground-worker"),
        ("ScaledObject", "pp-prompt-playground-worker"),
        ("Job", "pp-prompt-playground-migrate"),
        ("PodDisruptionBudget", "pp-prompt-playground-api"),
        ("PodDisruptionBudget", "pp-prompt-playground-worker"),
    }


def assert_hardened_pod(document: dict[str, Any], chart: Chart) -> None:
    spec = pod_spec(document)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    main = container(document)
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert main["image"] == f"prompt-playground:{chart.meta['appVersion']}"
    assert main["envFrom"] == [{"secretRef": {"name": chart.defaults["secrets"]["existingSecret"]}}]
    assert_env_names([e["name"] for e in main["env"]], document["metadata"]["name"])
    assert {"cpu", "memory"} <= set(main["resources"]["requests"])
    assert {"cpu", "memory"} <= set(main["resources"]["limits"])


def test_api_deployment(manifests: dict, chart: Chart) -> None:
    api = manifests[("Deployment", "pp-prompt-playground-api")]
    assert_hardened_pod(api, chart)
    main = container(api)
    assert main["args"][:1] == ["api"] and "0.0.0.0" in main["args"]
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["ports"][0]["containerPort"] == 8000 and main["ports"][0]["name"] == "http"
    assert "replicas" not in api["spec"], "the HPA owns the replica count"
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert api["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = manifests[("Service", "pp-prompt-playground-api")]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    hpa = manifests[("HorizontalPodAutoscaler", "pp-prompt-playground-api")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "pp-prompt-playground-api"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_worker_deployment(manifests: dict, chart: Chart) -> None:
    worker = manifests[("Deployment", "pp-prompt-playground-worker")]
    assert_hardened_pod(worker, chart)
    main = container(worker)
    assert main["args"] == ["worker", "--concurrency", str(chart.defaults["worker"]["concurrency"])]
    assert main["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["PLAYGROUND_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert env["PLAYGROUND_WORKER_METRICS_PORT"] == "9464"
    probe = " ".join(main["livenessProbe"]["exec"]["command"])
    assert "http://127.0.0.1:9464/metrics" in probe and "PLAYGROUND_METRICS_TOKEN" in probe
    grace = float(env["PLAYGROUND_WORKER_GRACE_SECONDS"])
    assert pod_spec(worker)["terminationGracePeriodSeconds"] > grace
    assert pod_spec(worker)["terminationGracePeriodSeconds"] > Settings.model_fields["worker_grace_seconds"].default
    assert "replicas" not in worker["spec"], "KEDA owns the replica count"
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert worker["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_keda_scales_workers_on_the_run_queue(manifests: dict, chart: Chart) -> None:
    scaled = manifests[("ScaledObject", "pp-prompt-playground-worker")]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "pp-prompt-playground-worker"
    assert scaled["spec"]["minReplicaCount"] >= 1, "workers also run the reconciler: never scale to zero"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    metadata = trigger["metadata"]
    prefix = chart.defaults["config"]["redisPrefix"]
    queue = RedisRunQueue(None, prefix)  # type: ignore[arg-type]  # only its key names are read
    assert metadata["stream"] == queue._key == f"{prefix}runs:queue"
    assert metadata["address"] == "redis.example:6379"
    # XLEN is the backlog only because the workers' group acks AND deletes an entry when its run is claimed;
    # with a consumerGroup KEDA would count pending entries instead, which acking at once keeps near zero.
    assert queue._group == "workers"
    assert "xdel" in inspect.getsource(RedisRunQueue.ack) and "xdel" in inspect.getsource(RedisRunQueue.ack_many)
    assert "consumerGroup" not in metadata and "pendingEntriesCount" not in metadata
    assert int(metadata["streamLength"]) > 0
    env = {e["name"]: e["value"] for e in container(manifests[("Deployment", "pp-prompt-playground-worker")])["env"]}
    assert env["PLAYGROUND_REDIS_PREFIX"] == prefix


def test_migrate_job_is_a_pre_install_and_pre_upgrade_hook(manifests: dict, chart: Chart) -> None:
    job = manifests[("Job", "pp-prompt-playground-migrate")]
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    assert container(job)["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert_hardened_pod(job, chart)


def test_disruption_budgets_cover_both_deployments(manifests: dict) -> None:
    for component in ("api", "worker"):
        pdb = manifests[("PodDisruptionBudget", f"pp-prompt-playground-{component}")]
        assert pdb["apiVersion"] == "policy/v1"
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]
        deployment = manifests[("Deployment", f"pp-prompt-playground-{component}")]
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    api_selector = manifests[("PodDisruptionBudget", "pp-prompt-playground-api")]["spec"]["selector"]
    assert api_selector["matchLabels"]["app.kubernetes.io/component"] == "api"


def test_chart_variants(chart: Chart) -> None:
    plain = {(d["kind"], d["metadata"]["name"]): d
             for d in chart.manifests({"keda": {"enabled": False}, "api": {"hpa": {"enabled": False}}})}
    assert not any(kind in ("ScaledObject", "HorizontalPodAutoscaler") for kind, _ in plain)
    assert plain[("Deployment", "pp-prompt-playground-worker")]["spec"]["replicas"] == 2
    assert plain[("Deployment", "pp-prompt-playground-api")]["spec"]["replicas"] == 2
    assert not any(kind == "Secret" for kind, _ in plain), "by default the secrets live in an existing Secret"

    with pytest.raises(TemplateError, match=r"keda\.redis\.address"):
        chart.manifests()  # KEDA on without the Redis address it watches

    inline = {"secrets": {"create": True, "masterKey": "a2V5", "databaseUrl": "postgresql+asyncpg://u:p@db/pp",
                          "redisUrl": "redis://r:6379/0", "metricsToken": "t"}}
    documents = {(d["kind"], d["metadata"]["name"]): d for d in chart.manifests(overrides(KEDA_ON, inline))}
    secret = documents[("Secret", "pp-prompt-playground")]
    assert_env_names(list(secret["stringData"]), "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    job = documents[("Job", "pp-prompt-playground-migrate")]
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]), "the Secret must exist before the migrate hook"
    assert container(job)["envFrom"] == [{"secretRef": {"name": "pp-prompt-playground"}}]
    with pytest.raises(TemplateError, match="masterKey"):
        chart.manifests(overrides(KEDA_ON, {"secrets": {"create": True}}))

    extra = chart.manifests(overrides(KEDA_ON, {"extraEnv": [{"name": "PLAYGROUND_SIGNUP_TYPO", "value": "x"}]}))
    api = next(d for d in extra if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api"))
    with pytest.raises(AssertionError, match="PLAYGROUND_SIGNUP_TYPO"):
        assert_env_names([e["name"] for e in container(api)["env"]], "api")


def test_notes_render(chart: Chart) -> None:
    notes = chart.render(KEDA_ON)["NOTES.txt"]
    assert "pp-prompt-playground-api" in notes and "pp:runs:queue" in notes
    assert "master key" in notes.lower()


def test_the_renderer_is_strict(tmp_path: Path) -> None:
    """A broken template fails: a misspelt value path, an unknown function, an unclosed block."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: t\nversion: 0.1.0\nappVersion: '1'\n")
    (tmp_path / "values.yaml").write_text("worker:\n  concurrency: 100\n")
    cases = {
        "replicas: {{ .Values.wroker.concurrency }}\n": "wroker",
        "replicas: {{ .Values.worker.concurrency | toJsn }}\n": "toJsn",
        "{{- if .Values.worker.concurrency }}\nreplicas: 1\n": "without end",
    }
    for source, message in cases.items():
        (tmp_path / "templates" / "t.yaml").write_text(source)
        with pytest.raises(TemplateError, match=message):
            Chart(tmp_path).render()
    (tmp_path / "templates" / "t.yaml").write_text(
        'apiVersion: v1\nkind: X\nmetadata: {name: {{ printf "%s-%s" "a" "b" | quote }}}\n'
        "spec:\n  n: {{ add .Values.worker.concurrency 5 }}\n"
    )
    assert Chart(tmp_path).manifests() == [{"apiVersion": "v1", "kind": "X", "metadata": {"name": "a-b"},
                                            "spec": {"n": 105}}]
