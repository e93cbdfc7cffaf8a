"""Reading and checking course pack files (format 1; see docs/coursepack-format.md).

`check_coursepack` turns raw bytes into a `PackCheck`: the parsed document, every finding
(each naming the problem and field it is about) and the hidden test cases the pack
materializes (authored cases plus generated ones, whose expected outputs come from the Python
reference). It writes nothing; `tracks.services` decides what to do with the result.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from django.conf import settings

from tracks import authoring
from tracks.models import HiddenTestOrigin, Problem, Rubric, Subject
from tracks.pack_loader import PackStructureRefused, load_pack_text
from tracks.reference_check import ReferenceCase, ReferenceProblem, check_references

SCHEMA_PATH = Path(settings.BASE_DIR) / "docs" / "coursepack.schema.json"


@functools.cache
def coursepack_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def schema_validator(definition: str | None = None) -> jsonschema.protocols.Validator:
    """A validator for the whole pack or for one `$defs` entry (used by the admin's JSON editors)."""
    schema = coursepack_schema()
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


@dataclass(frozen=True)
class Finding:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class MaterializedHiddenTest:
    category: str
    input: dict[str, Any]
    expected: Any
    origin: str


@dataclass
class PackCheck:
    document: dict[str, Any] | None = None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    hidden_tests: dict[str, list[MaterializedHiddenTest]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and self.document is not None

    def error(self, path: str, message: str) -> None:
        self.errors.append(Finding(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(Finding(path, message))

    def report(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        if self.document is not None and isinstance(self.document.get("track"), dict):
            track = self.document["track"]
            problems = self.document.get("problems") or []
            summary = {
                "track": track.get("slug"),
                "version": track.get("version"),
                "modules": len(track.get("modules") or []),
                "problems": len(problems) if isinstance(problems, list) else 0,
                "hidden_tests": sum(len(cases) for cases in self.hidden_tests.values()),
            }
        return {
            "ok": self.ok,
            "errors": [finding.as_dict() for finding in self.errors],
            "warnings": [finding.as_dict() for finding in self.warnings],
            "summary": summary,
        }


def _json_path(document: dict[str, Any], parts: list[Any]) -> str:
    """['problems', 3, 'languages'] → 'problems[two-sum].languages' (slugs where we have them)."""
    path, node = "", document
    for part in parts:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            slug = item.get("slug") if isinstance(item, dict) else None
            path += f"[{slug}]" if isinstance(slug, str) and path in {"problems", "rubrics", "track.modules"} else f"[{part}]"
            node = item
        else:
            path += f".{part}" if path else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return path or "(pack)"


def parse_coursepack(raw: bytes, check: PackCheck) -> dict[str, Any] | None:
    limit = settings.CO_COURSEPACK_MAX_BYTES
    if len(raw) > limit:
        check.error("(file)", f"is {len(raw)} bytes; a course pack may be at most {limit} bytes")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        check.error("(file)", "is not UTF-8 text")
        return None
    try:
        document, _nodes = load_pack_text(text)
    except PackStructureRefused as exc:
        mark = exc.problem_mark
        check.error("(file)", f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        check.error("(file)", f"is not valid YAML/JSON{where}: {getattr(exc, 'problem', None) or exc}")
        return None
    if not isinstance(document, dict):
        check.error("(file)", "must contain a mapping with 'format', 'track' and 'problems'")
        return None
    return document


def _check_schema(document: dict[str, Any], check: PackCheck) -> set[int] | None:
    """Report schema errors. Returns the indexes of problems with structural errors, or None
    when the pack's frame (format, track, rubrics, the problems list itself) is broken."""
    broken: set[int] = set()
    frame_ok = True
    for error in sorted(schema_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        parts = list(error.absolute_path)
        check.error(_json_path(document, parts), error.message)
        if len(parts) >= 2 and parts[0] == "problems" and isinstance(parts[1], int):
            broken.add(parts[1])
        else:
            frame_ok = False
    return broken if frame_ok else None


def _check_references(document: dict[str, Any], check: PackCheck) -> None:
    track = document["track"]
    module_slugs = [module["slug"] for module in track["modules"]]
    for slug in {s for s in module_slugs if module_slugs.count(s) > 1}:
        check.error(f"track.modules[{slug}]", "module slug appears more than once")

    rubrics: dict[str, dict[str, Any]] = {}
    for rubric in document.get("rubrics", []):
        if rubric["slug"] in rubrics:
            check.error(f"rubrics[{rubric['slug']}]", "rubric slug appears more than once")
        rubrics[rubric["slug"]] = rubric
        ids = [dimension["id"] for dimension in rubric["dimensions"]]
        for dimension_id in {i for i in ids if ids.count(i) > 1}:
            check.error(f"rubrics[{rubric['slug']}].dimensions", f"dimension id '{dimension_id}' appears more than once")

    slugs = [problem["slug"] for problem in document["problems"]]
    for slug in {s for s in slugs if slugs.count(s) > 1}:
        check.error(f"problems[{slug}]", "problem slug appears more than once")
    owners = dict(
        Problem.objects.filter(slug__in=slugs)
        .exclude(module__track__slug=track["slug"])
        .values_list("slug", "module__track__slug")
    )
    for slug, owner in owners.items():
        check.error(f"problems[{slug}].slug", f"'{slug}' already belongs to track '{owner}'; problem slugs are unique")

    for problem in document["problems"]:
        path = f"problems[{problem['slug']}]"
        subject = problem.get("subject", track["subject"])
        if problem["module"] not in module_slugs:
            check.error(f"{path}.module", f"'{problem['module']}' is not a module of track '{track['slug']}'")
        for block, owner_subject in (("languages", Subject.CODING), ("math", Subject.MATH), ("systems", Subject.SYSTEMS)):
            if subject == owner_subject and block not in problem:
                check.error(f"{path}.{block}", f"is required for a {subject} problem")
            elif subject != owner_subject and block in problem:
                check.error(f"{path}.{block}", f"does not belong on a {subject} problem")
        if subject == Subject.CODING:
            _check_coding_shape(problem, path, check)
        elif subject == Subject.SYSTEMS and "systems" in problem:
            _check_systems(problem, path, rubrics, check)


def _check_coding_shape(problem: dict[str, Any], path: str, check: PackCheck) -> None:
    parameters = problem.get("parameters")
    if not parameters:
        check.error(f"{path}.parameters", "is required for a coding problem")
        return
    if not problem.get("visible_tests"):
        check.error(f"{path}.visible_tests", "a coding problem needs at least one visible test")
    for group in ("visible_tests", "hidden_tests"):
        for index, case in enumerate(problem.get(group, [])):
            if set(case["input"]) != set(parameters):
                check.error(
                    f"{path}.{group}[{index}].input",
                    f"keys {sorted(case['input'])} must be exactly the parameters {parameters}",
                )
    if problem.get("comparison") == "float" and "float_tolerance" not in problem:
        check.error(f"{path}.float_tolerance", "is required when comparison is 'float'")
    if problem.get("hidden_generators") and "python" not in problem.get("languages", {}):
        check.error(f"{path}.hidden_generators", "need a Python reference solution to compute expected outputs")
    categories = {case["category"] for case in problem.get("hidden_tests", [])} | {
        generator["category"] for generator in problem.get("hidden_generators", [])
    }
    if not categories:
        check.warn(f"{path}.hidden_tests", "has no hidden tests: submissions are graded on visible tests only")
    remediation = problem.get("remediation", {})
    for category in sorted(categories - set(remediation)):
        check.error(f"{path}.remediation", f"has no entry for hidden category '{category}'")
    for category in sorted(set(remediation) - categories):
        check.warn(f"{path}.remediation.{category}", "is not a category of any hidden test")


def _check_systems(problem: dict[str, Any], path: str, rubrics: dict[str, dict[str, Any]], check: PackCheck) -> None:
    slug = problem["systems"]["rubric"]
    rubric = rubrics.get(slug)
    if rubric is None:
        published = Rubric.objects.filter(slug=slug).values("dimensions").first()
        rubric = {"dimensions": published["dimensions"]} if published else None
    if rubric is None:
        check.error(f"{path}.systems.rubric", f"'{slug}' is neither in this pack nor published")
        return
    dimension_ids = {dimension["id"] for dimension in rubric["dimensions"]}
    expectations = set(problem["systems"]["expectations"])
    for missing in sorted(dimension_ids - expectations):
        check.error(f"{path}.systems.expectations", f"has no expectations for rubric dimension '{missing}'")
    for unknown in sorted(expectations - dimension_ids):
        check.error(f"{path}.systems.expectations.{unknown}", f"is not a dimension of rubric '{slug}'")


def _check_math(document: dict[str, Any], check: PackCheck) -> None:
    """Staff-authored math is read by the learners' whitelist parser, nothing else: a SymPy parse
    of the raw text (`sympify`, `parse_expr`) can evaluate arbitrary Python in this process."""
    from grading.evaluators.math import ExpressionRejected, canonical_expression, check_variables

    for problem in document["problems"]:
        if "math" not in problem:
            continue
        block = problem["math"]
        path = f"problems[{problem['slug']}].math"
        dependent = block.get("dependent")
        variables_error = check_variables(block["variables"], dependent=dependent, positive=block.get("positive"))
        if variables_error is not None:
            check.error(f"{path}.variables", variables_error)
            continue
        for field_path, text in [("answer", block["answer"])] + [
            (f"steps[{index}]", step) for index, step in enumerate(block.get("steps", []))
        ]:
            try:
                canonical_expression(text, block["variables"], dependent=dependent)
            except ExpressionRejected as exc:
                check.error(f"{path}.{field_path}", f"is not a valid expression: {exc}")


def _generate_hidden_tests(document: dict[str, Any], check: PackCheck) -> None:
    """Each coding problem's hidden tests: the authored ones, then the generated ones with the
    Python reference's outputs as expectations (both run in the learner sandbox: see
    `tracks.authoring`). A problem whose generation failed gets none, and a finding."""
    coding = [p for p in document["problems"] if "languages" in p and p.get("parameters")]
    generating = [p for p in coding if p.get("hidden_generators") and "python" in p["languages"]]

    def generate(problem: dict[str, Any]) -> authoring.Generation:
        limits = problem.get("limits", {})
        return authoring.generate_hidden_cases(
            path=f"problems[{problem['slug']}]",
            generators=problem["hidden_generators"],
            parameters=problem["parameters"],
            reference=problem["languages"]["python"],
            time_limit_ms=limits.get("time_ms", 1000),
            memory_limit_mb=limits.get("memory_mb", 256),
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        generations = dict(zip([p["slug"] for p in generating], pool.map(generate, generating), strict=True))
    for problem in coding:
        generation = generations.get(problem["slug"], authoring.Generation([], []))
        for path, message in generation.findings:
            check.error(path, message)
        if generation.findings:
            continue
        generators = problem.get("hidden_generators", [])
        check.hidden_tests[problem["slug"]] = [
            MaterializedHiddenTest(case["category"], case["input"], case["expected"], HiddenTestOrigin.AUTHORED)
            for case in problem.get("hidden_tests", [])
        ] + [
            MaterializedHiddenTest(generators[case.generator]["category"], case.input, case.expected, HiddenTestOrigin.GENERATED)
            for case in generation.cases
        ]


def _check_references_in_sandbox(document: dict[str, Any], check: PackCheck) -> None:
    """Last stage: every reference, in every language, against all its tests in the learner
    sandbox with the problem's own limits (a reference too slow for its limits is refused)."""
    flagged = {finding.path.split("]", 1)[0] + "]" for finding in check.errors}
    node_missing = not authoring.javascript_available()
    problems = []
    for problem in document["problems"]:
        path = f"problems[{problem['slug']}]"
        if "languages" not in problem or path in flagged:
            continue
        limits = problem.get("limits", {})
        hidden = check.hidden_tests.get(problem["slug"], [])
        problems.append(
            ReferenceProblem(
                path=path,
                languages={
                    name: spec for name, spec in problem["languages"].items() if not (name == "javascript" and node_missing)
                },
                parameters=problem["parameters"],
                comparison=problem.get("comparison", "exact"),
                float_tolerance=problem.get("float_tolerance"),
                time_limit_ms=limits.get("time_ms", 1000),
                memory_limit_mb=limits.get("memory_mb", 256),
                cases=[
                    ReferenceCase(f"visible_tests[{i}]", c["input"], c["expected"])
                    for i, c in enumerate(problem["visible_tests"])
                ]
                + [ReferenceCase(f"hidden test #{i + 1} ({c.category})", c.input, c.expected) for i, c in enumerate(hidden)],
            )
        )
    if node_missing and any("javascript" in problem["languages"] for problem in document["problems"] if "languages" in problem):
        check.warn("problems", "Node.js is not installed here: JavaScript reference solutions were not checked")
    for path, message in check_references(problems):
        check.error(path, message)


def check_coursepack(raw: bytes) -> PackCheck:
    check = PackCheck()
    document = parse_coursepack(raw, check)
    if document is None:
        return check
    check.document = document
    broken = _check_schema(document, check)
    if broken is None:  # the frame is wrong: nothing below can be checked meaningfully
        return check
    # Report every mistake in one pass: structurally sound problems are checked further even
    # when others are broken; references run only for problems with no findings so far.
    sound = {**document, "problems": [p for i, p in enumerate(document["problems"]) if i not in broken]}
    _check_references(sound, check)
    _check_math(sound, check)
    if any(not finding.path.startswith("problems[") for finding in check.errors):
        return check
    flagged = {finding.path.split("]", 1)[0] + "]" for finding in check.errors}
    runnable = [p for p in sound["problems"] if f"problems[{p['slug']}]" not in flagged]
    _generate_hidden_tests({**sound, "problems": runnable}, check)
    _check_references_in_sandbox({**sound, "problems": runnable}, check)
    return check
