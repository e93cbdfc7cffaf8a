"""Staff-authored code at validation and publish time: hidden-test generators, and the Python
reference that gives the cases they generate their expected outputs.

Staff code is untrusted too (DESIGN §5): a pack comes from an upload, and a generator or a
reference is a program like any learner's. So it runs only in the learner sandbox, through its
public API (`run_in_sandbox`): its own unprivileged uid, no network, an empty environment, a
read-only root with a private scratch dir, rlimits, the run's processes killed with it — and in
production without namespace isolation not at all (the pack is then invalid, saying why).

A generator is run as a program whose entrypoint is a small function appended to its source,
one sandbox test per case: each case gets the sandbox's per-test limits, its value comes back as
JSON, and a failure names the generator. Syntax errors are the sandbox's own, with line numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from grading.evaluators.coding import run_time_rechecked
from grading.sandbox import SandboxResult, SandboxRun, SandboxUnavailable, run_in_sandbox
from grading.sandbox.isolation import current_config

GENERATOR_ENTRYPOINT = "co_generated_case"
# Appended to a generator's source (after it, so its line numbers stay the author's). The seed
# string is made on the trusted side: "{seed}:{index}", as the pack format documents.
_GENERATOR_CALL = f"""

def {GENERATOR_ENTRYPOINT}(seed, index):
    import random
    generate = globals().get("generate")
    if not callable(generate):
        raise NameError("the generator defines no function generate(rng, index)")
    return generate(random.Random(seed), index)
"""
GENERATED_CASE_MAX_BYTES = 8 * 1024 * 1024  # one generated input, as JSON


@dataclass(frozen=True)
class GeneratedCase:
    generator: int  # its index in the problem's `hidden_generators`
    input: dict[str, Any]
    expected: Any


@dataclass(frozen=True)
class Generation:
    """A problem's generated hidden cases, or the findings (path, message) that stopped them."""

    cases: list[GeneratedCase]
    findings: list[tuple[str, str]]


def javascript_available() -> bool:
    """Whether the sandbox has Node to run JavaScript references with."""
    node = current_config().node
    return bool(node and os.path.exists(node))


def _run(run: SandboxRun, *, time_rechecked: bool = False) -> SandboxResult | str:
    """The sandbox's result, or why the code was not run (never run outside the sandbox). A
    reference runs as learner code is graded: a time limit is re-checked once (time_rechecked)."""
    try:
        return run_time_rechecked(run) if time_rechecked else run_in_sandbox(run)
    except SandboxUnavailable as exc:
        return f"could not be run: {exc}"
    except ValueError as exc:  # the run breaks the sandbox's contract (e.g. source over its size)
        return f"could not be run in the sandbox: {exc}"


def _generate(generator: dict[str, Any], parameters: list[str]) -> tuple[list[dict], str | None]:
    """(the generator's inputs, None) or ([], why it failed)."""
    result = _run(
        SandboxRun(
            language="python",
            code=generator["source"].rstrip("\n") + "\n" + _GENERATOR_CALL,
            entrypoint=GENERATOR_ENTRYPOINT,
            parameters=["seed", "index"],
            inputs=[{"seed": f"{generator['seed']}:{case}", "index": case} for case in range(generator["count"])],
            time_limit_ms=int(settings.CO_GENERATOR_TIME_LIMIT_SECONDS * 1000),
            memory_limit_mb=settings.CO_GENERATOR_MEMORY_LIMIT_MB,
            output_limit_bytes=GENERATED_CASE_MAX_BYTES,
        )
    )
    if isinstance(result, str):
        return [], f"generator {result}"
    if result.status == "syntax_error":
        return [], f"generator does not compile: {result.error}"
    if result.status != "completed":
        return [], f"generator could not be run in the sandbox: {result.error}"
    inputs = []
    for case, test in enumerate(result.tests):
        if test.outcome != "ok":
            return [], f"generator failed: {test.error or test.outcome}"
        if not isinstance(test.value, dict) or set(test.value) != set(parameters):
            shown = sorted(test.value) if isinstance(test.value, dict) else type(test.value).__name__
            return [], f"case {case} is {shown}, not an input with exactly the parameters {parameters}"
        inputs.append(test.value)
    return inputs, None


def generate_hidden_cases(
    *,
    path: str,
    generators: list[dict[str, Any]],
    parameters: list[str],
    reference: dict[str, str],
    time_limit_ms: int,
    memory_limit_mb: int,
) -> Generation:
    """Run a problem's generators, then its Python reference (`{entrypoint, reference}`) on what
    they generated, under the problem's own limits: the reference's values become the expected
    outputs. Findings point at the generator a case came from."""
    findings: list[tuple[str, str]] = []
    generated: list[tuple[int, dict[str, Any]]] = []
    for index, generator in enumerate(generators):
        inputs, error = _generate(generator, parameters)
        if error is not None:
            findings.append((f"{path}.hidden_generators[{index}]", error))
        generated += [(index, case) for case in inputs]
    if findings or not generated:
        return Generation([], findings)

    result = _run(
        SandboxRun(
            language="python",
            code=reference["reference"],
            entrypoint=reference["entrypoint"],
            parameters=parameters,
            inputs=[case for _, case in generated],
            time_limit_ms=time_limit_ms,
            memory_limit_mb=memory_limit_mb,
        ),
        time_rechecked=True,
    )
    where = f"{path}.languages.python"
    if isinstance(result, str):
        return Generation([], [(where, f"reference {result}")])
    if result.status == "syntax_error":
        return Generation([], [(where, f"reference does not compile: {result.error}")])
    if result.status != "completed":
        return Generation([], [(where, f"reference could not be run in the sandbox: {result.error}")])
    cases = []
    for (index, case), test in zip(generated, result.tests, strict=True):
        if not test.ran:
            continue  # after a case over the time limit: reported there
        if test.outcome == "ok":
            cases.append(GeneratedCase(index, case, test.value))
            continue
        if test.outcome == "time_limit":
            message = f"python reference exceeded the time limit ({time_limit_ms} ms) on a generated case"
        else:
            message = f"python reference failed on a generated case: {test.error or test.outcome}"
        findings.append((f"{path}.hidden_generators[{index}]", message))
    return Generation([] if findings else cases, findings)
