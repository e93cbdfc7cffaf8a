"""Tutor context preparation (CO-003-015): what a tutor may know about the problem and the learner.

The context is built field by field from an allow-list — never by copying a bundle or a result
and deleting what looks secret — so a field added to a bundle later stays out until someone adds
it here. It holds: the statement and constraints, the visible tests and starter code, the
authored hints up to the requested level, the remediation of the categories the learner last
failed, the module's outcomes, the learner's current code and question, their past results on
the problem (visible details, hidden counts and failed hidden *categories*) and their mastery.
Hidden test inputs and expected outputs, reference solutions, generators, math answers and rubric
expectations are never read into it.
"""

from __future__ import annotations

import json
from typing import Any

from submissions.selectors import visible_failures
from tracks.problem_bank import ProblemBundle

LEVEL_NAMES = {1: "nudge", 2: "approach", 3: "near-solution"}
MAX_CODE_CHARS = 64 * 1024
MAX_VISIBLE_TESTS = 5


def _problem_part(bundle: ProblemBundle, hint_level: int) -> dict[str, Any]:
    return {
        "slug": bundle.slug,
        "title": bundle.title,
        "subject": bundle.subject,
        "statement": bundle.statement,
        "difficulty": bundle.difficulty,
        "topics": list(bundle.topics),
        "parameters": list(bundle.parameters),
        "constraints": {"time_limit_ms": bundle.time_limit_ms, "memory_limit_mb": bundle.memory_limit_mb},
        "visible_tests": [
            {"input": test.get("input"), "expected": test.get("expected")} for test in bundle.visible_tests[:MAX_VISIBLE_TESTS]
        ],
        # Starter code and entry points are what the learner's editor already shows.
        "languages": {
            language: {"entrypoint": spec.get("entrypoint", ""), "starter": spec.get("starter", "")}
            for language, spec in bundle.languages.items()
        },
        "hints": [str(hint) for hint in bundle.hints[:hint_level]],
    }


def _reported_result(last_eval: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the client says the learner's last evaluation showed (already shape-checked by the
    serializer); used only when the server has no result of its own."""
    if not last_eval:
        return None
    visible = last_eval.get("visible") or {}
    hidden = last_eval.get("hidden") or {}
    return {
        "kind": "reported",
        "status": last_eval.get("status", ""),
        "visible": {
            "passed": visible.get("passed"),
            "total": visible.get("total"),
            "failing": visible_failures(visible.get("details")),
        },
        "hidden": {"passed": hidden.get("passed"), "total": hidden.get("total"), "failed_categories": []},
    }


def context_prepare(
    *,
    bundle: ProblemBundle,
    hint_level: int,
    message: str,
    code: str,
    language: str,
    last_eval: dict[str, Any] | None,
    past_results: list[dict[str, Any]],
    mastery: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole context, JSON-serialisable, stored with the turn and given to the tutor."""
    graded = [result for result in past_results if result["kind"] == "submit"]
    failed_categories = graded[0]["hidden"]["failed_categories"] if graded else []
    last_result = past_results[0] if past_results else _reported_result(last_eval)
    module = bundle.module or {}
    return {
        "hint_level": hint_level,
        "hint_kind": LEVEL_NAMES[hint_level],
        "problem": _problem_part(bundle, hint_level),
        "module": {"title": str(module.get("title", "")), "outcomes": [str(o) for o in module.get("outcomes") or []]},
        "learner": {
            "message": message,
            "language": language,
            "code": code[:MAX_CODE_CHARS],
            "code_is_starter": bool(code.strip())
            and any(code.strip() == spec.get("starter", "").strip() for spec in bundle.languages.values()),
        },
        "last_result": last_result,
        "past_results": past_results,
        # Remediation is learner-facing only for a category the learner failed (as in a result).
        "remediation": {
            category: str(bundle.remediation[category]) for category in failed_categories if category in bundle.remediation
        },
        "mastery": mastery,
    }


def context_render(context: dict[str, Any]) -> str:
    """The context as the user message of an LLM prompt: labelled sections, JSON where exact."""
    problem, learner = context["problem"], context["learner"]
    sections = [
        f"# Problem: {problem['title']} ({problem['subject']}, difficulty {problem['difficulty']}/5)",
        problem["statement"],
        f"Topics: {', '.join(problem['topics']) or '-'}. Constraints: {json.dumps(problem['constraints'])}.",
    ]
    if problem["parameters"]:
        sections.append(f"Parameters: {', '.join(problem['parameters'])}.")
    if problem["visible_tests"]:
        sections.append("## Visible examples\n" + "\n".join(json.dumps(test, default=str) for test in problem["visible_tests"]))
    module = context["module"]
    if module["outcomes"]:
        sections.append(f"## Module '{module['title']}' outcomes\n" + "\n".join(f"- {o}" for o in module["outcomes"]))
    hints = problem["hints"]
    sections.append(
        "## Authored hint ladder up to the requested level\n"
        + "\n".join(f"{index}. ({LEVEL_NAMES[index]}) {hint}" for index, hint in enumerate(hints, start=1))
    )
    if context["last_result"]:
        sections.append("## The learner's last result\n" + json.dumps(context["last_result"], default=str))
    if len(context["past_results"]) > 1:
        summary = [
            {"status": r["status"], "kind": r["kind"], "failed_categories": r["hidden"]["failed_categories"]}
            for r in context["past_results"][1:]
        ]
        sections.append("## Earlier results (newest first)\n" + json.dumps(summary))
    if context["remediation"]:
        sections.append(
            "## Remediation for the categories the learner last failed\n"
            + "\n".join(f"- {category}: {text}" for category, text in context["remediation"].items())
        )
    if context["mastery"]:
        sections.append(
            "## Learner mastery (0-100)\n" + "\n".join(f"- {m['kind']} {m['key']}: {m['score']}" for m in context["mastery"])
        )
    if learner["code"]:
        starter_note = " (unchanged starter code)" if learner["code_is_starter"] else ""
        language = learner["language"] or "unknown language"
        sections.append(f"## The learner's current code ({language}){starter_note}\n```\n{learner['code']}\n```")
    sections.append(f"## The learner asks\n{learner['message'] or 'Give me a hint.'}")
    return "\n\n".join(sections)
