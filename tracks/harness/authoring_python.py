"""Authoring harness (Python): runs staff-authored generators and reference solutions.

Run by `tracks.authoring` in a separate process (`python -I -S`, empty environment, resource
limits). Reads one JSON job list on stdin, writes one JSON result on stdout. It is never used
for learner code: that goes through the submissions sandbox.
"""

import json
import random
import sys


def run_job(job):
    result = {"generated": [], "outputs": [], "error": None, "error_at": None}
    namespace = {"__name__": "reference"}
    try:
        exec(compile(job["reference"], "<reference>", "exec"), namespace)
    except BaseException as exc:
        result["error"] = f"reference does not load: {type(exc).__name__}: {exc}"
        return result
    function = namespace.get(job["entrypoint"])
    if not callable(function):
        result["error"] = f"'{job['entrypoint']}' is not defined in the reference solution"
        return result
    inputs = list(job["inputs"])
    for generator_index, generator in enumerate(job.get("generators", [])):
        generator_namespace = {"__name__": "generator"}
        try:
            exec(compile(generator["source"], "<generator>", "exec"), generator_namespace)
            generate = generator_namespace["generate"]
            for index in range(generator["count"]):
                case = generate(random.Random(f"{generator['seed']}:{index}"), index)  # noqa: S311 - reproducible test data
                case = json.loads(json.dumps(case))
                result["generated"].append({"generator": generator_index, "input": case})
                inputs.append(case)
        except BaseException as exc:
            result["error"] = f"generator failed: {type(exc).__name__}: {exc}"
            result["error_at"] = f"hidden_generators[{generator_index}]"
            return result
    for case in inputs:
        try:
            if not isinstance(case, dict) or set(case) != set(job["parameters"]):
                raise ValueError(f"input keys {sorted(case) if isinstance(case, dict) else case!r} != parameters")
            value = function(*[case[name] for name in job["parameters"]])
            result["outputs"].append({"ok": True, "value": json.loads(json.dumps(value))})
        except BaseException as exc:
            result["outputs"].append({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
    return result


def main():
    jobs = json.load(sys.stdin)
    json.dump({key: run_job(job) for key, job in jobs.items()}, sys.stdout)


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    main()
