"""The problem bank: where a problem's full bundle (including hidden tests) comes from.

The database backend serves problems published from course packs. When `CO_PROBLEM_BANK_BASE`
is set, problems the database does not have are fetched from the remote bank
(`GET {base}/internal/problems/{id}/bundle`) with a timeout and bounded retries, and kept in the
shared cache sealed (encrypted and authenticated with a key from `SECRET_KEY`). The public API
only ever sees a bundle through `tracks.serializers.PublicProblemSerializer`, which has no field
for anything hidden.

Database bundles are memoized in process memory (never in the shared cache: they hold hidden
tests), keyed by the catalogue version that publishing, retiring and admin edits bump, so a
submission's two bundle reads cost no queries while the catalogue is unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import jsonschema
from django.conf import settings
from django.db.models import Prefetch

from co_project.errors import ProblemRepositoryNotReady
from co_project.sealed_cache import sealed_cache_get, sealed_cache_set
from grading.outbound import ServiceUnreachable, request_with_retries
from grading.problems import CodingProblem, HiddenCase, hidden_tests_encoded
from tracks.coursepacks import coursepack_schema
from tracks.memo import CatalogueMemo
from tracks.models import HiddenTest, Problem, ProblemLanguage
from tracks.selectors import catalogue_version_or_none, module_key

logger = logging.getLogger("co.problem_bank")


@dataclass(frozen=True, kw_only=True)
class ProblemBundle(CodingProblem):
    """Everything the platform knows about one problem: the coding problem the evaluators read
    (`CodingProblem`'s fields; `hidden_tests` is None unless asked for) and the rest."""

    id: str
    slug: str
    subject: str
    title: str
    statement: str
    difficulty: int
    topics: list[str]
    source: str  # "database" | "remote"
    track: dict[str, str] | None = None
    module: dict[str, Any] | None = None
    hints: list[str] = field(default_factory=list)
    remediation: dict[str, str] = field(default_factory=dict)
    math: dict[str, Any] | None = None
    rubric: dict[str, Any] | None = None
    rubric_expectations: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    def __repr__(self) -> str:
        # Which problem, and nothing staff-only (hidden tests, references, expectations): a
        # bundle that ends up in a log line or a traceback must not carry them there.
        return f"ProblemBundle(id={self.id!r}, slug={self.slug!r}, subject={self.subject!r}, source={self.source!r})"


@dataclass(frozen=True)
class ProblemMetadata:
    """What a planner needs of a problem, and nothing a learner may not see: no statement, tests,
    references or hints. Plain values, cheap to memoize and to compare."""

    id: str
    slug: str
    title: str
    subject: str
    difficulty: int
    topics: tuple[str, ...]
    module: str  # the module key (`module_key`), "" when the bank does not say
    source: str  # "database" | "remote"

    @classmethod
    def of(cls, bundle: ProblemBundle, *, module: str = "") -> ProblemMetadata:
        if not module and bundle.track and bundle.module:
            module = module_key(track_slug=bundle.track["slug"], module_slug=bundle.module["slug"])
        return cls(
            id=bundle.id,
            slug=bundle.slug,
            title=bundle.title,
            subject=bundle.subject,
            difficulty=bundle.difficulty,
            topics=tuple(bundle.topics),
            module=module,
            source=bundle.source,
        )


class ProblemBank(Protocol):
    def get(self, reference: str, *, include_hidden: bool = False) -> ProblemBundle | None: ...

    def problems_by_module(self, module: str, difficulty_range: tuple[int, int], limit: int = 10) -> list[ProblemMetadata]:
        """The module's published problems within the difficulty range (inclusive), in the
        module's authored order, at most `limit`."""
        ...

    def problem_metadata(self, reference: str) -> ProblemMetadata | None: ...


def _bundle_from_model(problem: Problem, *, include_hidden: bool) -> ProblemBundle:
    module, track = problem.module, problem.module.track
    math = None
    if problem.math_answer:
        math = {
            "variables": problem.math_variables,
            "answer": problem.math_answer,
            "form": problem.math_form,
            "steps": problem.math_steps,
            "dependent": problem.math_dependent or None,
            "positive": problem.math_positive,
        }
    rubric = None
    if problem.rubric_id:
        rubric = {"slug": problem.rubric.slug, "title": problem.rubric.title, "dimensions": problem.rubric.dimensions}
    return ProblemBundle(
        id=str(problem.id),
        slug=problem.slug,
        subject=problem.subject,
        title=problem.title,
        statement=problem.statement,
        difficulty=problem.difficulty,
        topics=[topic.slug for topic in problem.topics.all()],
        source="database",
        track={"id": str(track.id), "slug": track.slug, "title": track.title},
        module={"id": module.slug, "slug": module.slug, "title": module.title, "outcomes": module.outcomes},
        parameters=problem.parameters,
        languages={
            row.language: {"entrypoint": row.entrypoint, "starter": row.starter_code, "reference": row.reference_solution}
            for row in problem.languages.all()
        },
        comparison=problem.comparison,
        float_tolerance=problem.float_tolerance,
        time_limit_ms=problem.time_limit_ms,
        memory_limit_mb=problem.memory_limit_mb,
        visible_tests=problem.visible_tests,
        **(
            hidden_tests_encoded([HiddenCase(t.category, t.input, t.expected) for t in problem.hidden_tests.all()])
            if include_hidden
            else {}
        ),
        hints=problem.hints,
        remediation=problem.remediation,
        math=math,
        rubric=rubric,
        rubric_expectations=problem.rubric_expectations,
        content_hash=problem.content_hash,
    )


class _BundleMemo:
    """Database bundles by (reference, include_hidden, include_retired), each stored with the
    catalogue version it was read under. Callers get their own unpickled copy, so nothing they do
    to a bundle reaches the next caller. Entries also expire, which bounds staleness where an
    invalidation cannot arrive: a process-local cache (no Redis) while another process publishes,
    or a crash between a commit and its version bump. Size is bounded in bytes."""

    seconds = 60
    max_bytes = 16 * 1024 * 1024

    def __init__(self) -> None:
        self._entries: dict[tuple[str, bool, bool], tuple[int, float, bytes]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, bool, bool], version: int | None) -> ProblemBundle | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or entry[1] <= time.monotonic():
            return None
        return pickle.loads(entry[2])  # noqa: S301 - our own snapshot, taken in put() in this process

    def put(self, key: tuple[str, bool, bool], version: int, bundle: ProblemBundle) -> None:
        snapshot = pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._bytes + len(snapshot) > self.max_bytes:
                self._entries.clear()
                self._bytes = 0
            previous = self._entries.get(key)
            self._bytes += len(snapshot) - (len(previous[2]) if previous else 0)
            self._entries[key] = (version, time.monotonic() + self.seconds, snapshot)


_bundle_memo = _BundleMemo()


# Problem metadata of a whole track by module key: planning a path lists every module of a
# track, and one load (two queries) serves them all.
_track_listing_memo: CatalogueMemo[dict[str, tuple[ProblemMetadata, ...]]] = CatalogueMemo()


def _track_listing_load(track_slug: str) -> dict[str, tuple[ProblemMetadata, ...]]:
    """Published problems of the track's published modules by module key, in authored order."""
    problems = Problem.objects.filter(
        published=True, module__published=True, module__track__published=True, module__track__slug=track_slug
    )
    topics: dict[uuid.UUID, list[str]] = {}
    for problem_id, slug in (
        Problem.topics.through.objects.filter(problem__in=problems.values("id"))
        .order_by("topic__slug")
        .values_list("problem_id", "topic__slug")
    ):
        topics.setdefault(problem_id, []).append(slug)
    listing: dict[str, list[ProblemMetadata]] = {}
    rows = problems.order_by("module__position", "module__slug", "position", "slug").values_list(
        "id", "slug", "title", "subject", "difficulty", "module__slug"
    )
    for problem_id, slug, title, subject, difficulty, module_slug in rows:
        key = module_key(track_slug=track_slug, module_slug=module_slug)
        listing.setdefault(key, []).append(
            ProblemMetadata(
                id=str(problem_id),
                slug=slug,
                title=title,
                subject=subject,
                difficulty=difficulty,
                topics=tuple(topics.get(problem_id, ())),
                module=key,
                source="database",
            )
        )
    return {key: tuple(items) for key, items in listing.items()}


class DatabaseProblemBank:
    """Published problems from course packs, looked up by id (UUID) or slug."""

    def problems_by_module(self, module: str, difficulty_range: tuple[int, int], limit: int = 10) -> list[ProblemMetadata]:
        track_slug, _, _ = module.partition("/")
        version = catalogue_version_or_none()
        listing = _track_listing_memo.get(track_slug, version)
        if listing is None:
            listing = _track_listing_load(track_slug)
            if version is not None:
                _track_listing_memo.put(track_slug, version, listing)
        low, high = difficulty_range
        return [item for item in listing.get(module, ()) if low <= item.difficulty <= high][: max(limit, 0)]

    def problem_metadata(self, reference: str) -> ProblemMetadata | None:
        bundle = self.get(reference)
        return ProblemMetadata.of(bundle) if bundle is not None else None

    def get(self, reference: str, *, include_hidden: bool = False, include_retired: bool = False) -> ProblemBundle | None:
        key = (reference, include_hidden, include_retired)
        version = catalogue_version_or_none()  # read before the rows: a bump after this invalidates what we load
        bundle = _bundle_memo.get(key, version)
        if bundle is None:
            bundle = self._load(reference, include_hidden=include_hidden, include_retired=include_retired)
            if bundle is not None and version is not None:
                _bundle_memo.put(key, version, bundle)
        return bundle

    def _load(self, reference: str, *, include_hidden: bool, include_retired: bool) -> ProblemBundle | None:
        queryset = Problem.objects.select_related("module__track", "rubric")
        if not include_retired:
            queryset = queryset.filter(published=True)
        prefetches: list[Any] = ["topics", Prefetch("languages", queryset=ProblemLanguage.objects.order_by("language"))]
        if include_hidden:
            prefetches.append(Prefetch("hidden_tests", queryset=HiddenTest.objects.order_by("position")))
        queryset = queryset.prefetch_related(*prefetches)
        try:
            lookup = {"id": uuid.UUID(reference)}
        except ValueError:
            lookup = {"slug": reference}
        problem = queryset.filter(**lookup).first()
        return _bundle_from_model(problem, include_hidden=include_hidden) if problem else None


class ProblemBankUnavailable(Exception):
    """The remote bank could not answer (timeouts, 5xx, garbage) after the bounded retries."""


class HttpProblemBank:
    """The remote problem bank of seeds/000 §5, with timeouts, bounded retries and a cache."""

    def __init__(self, base_url: str, *, timeout: float, retries: int, cache_seconds: int, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.cache_seconds = cache_seconds
        self.token = token

    def _cache_key(self, reference: str) -> str:
        return f"problem-bank:v2:{hashlib.sha256(reference.encode()).hexdigest()}"

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET with the timeout and bounded retries; the response (any status) or ProblemBankUnavailable."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            return request_with_retries(
                "GET",
                f"{self.base_url}{path}",
                params=params,
                headers=headers,
                retries=self.retries,
                backoff_seconds=0.1,
                max_backoff_seconds=1.0,
                timeout=self.timeout,
            )
        except ServiceUnreachable as exc:
            raise ProblemBankUnavailable(f"problem bank {exc}") from exc

    def fetch(self, reference: str) -> dict[str, Any] | None:
        """The raw bundle, or None when the bank says it has no such problem (404). Cached
        sealed (co_project/sealed_cache.py): a bundle carries hidden tests and references, and
        the cache may be shared with more than this service."""
        cached = sealed_cache_get(self._cache_key(reference), max_age=self.cache_seconds)
        if cached is not None:
            return cached.get("bundle")
        response = self._get(f"/internal/problems/{quote(reference, safe='')}/bundle")
        if response.status_code == 404:
            sealed_cache_set(self._cache_key(reference), {"bundle": None}, timeout=min(30, self.cache_seconds))
            return None
        if response.status_code != 200:
            raise ProblemBankUnavailable(f"problem bank answered HTTP {response.status_code}")
        try:
            bundle = response.json()
        except ValueError as exc:
            raise ProblemBankUnavailable("problem bank answered with something that is not JSON") from exc
        if not isinstance(bundle, dict):
            raise ProblemBankUnavailable("problem bank answered with something that is not a bundle")
        sealed_cache_set(self._cache_key(reference), {"bundle": bundle}, timeout=self.cache_seconds)
        return bundle

    def get(self, reference: str, *, include_hidden: bool = False) -> ProblemBundle | None:
        raw = self.fetch(reference)
        return bundle_from_remote(raw, reference, include_hidden=include_hidden) if raw is not None else None

    def problem_metadata(self, reference: str) -> ProblemMetadata | None:
        """From the (cached) bundle: the bank has no lighter endpoint for one problem."""
        raw = self.fetch(reference)
        if raw is None:
            return None
        module = raw.get("module") if isinstance(raw.get("module"), str) else ""
        return ProblemMetadata.of(bundle_from_remote(raw, reference, include_hidden=False), module=module)

    def problems_by_module(self, module: str, difficulty_range: tuple[int, int], limit: int = 10) -> list[ProblemMetadata]:
        """`GET {base}/internal/modules/{module}/problems?difficulty_min=&difficulty_max=&limit=`
        → `{"items": [{id, slug, title, subject, difficulty, topics}]}`; a 404 is an empty module.
        Cached like bundles (sealed: the cache may be shared)."""
        low, high = difficulty_range
        key = f"problem-bank:module:v1:{hashlib.sha256(f'{module}|{low}|{high}|{limit}'.encode()).hexdigest()}"
        cached = sealed_cache_get(key, max_age=self.cache_seconds)
        if cached is None:
            response = self._get(
                f"/internal/modules/{quote(module, safe='')}/problems",
                {"difficulty_min": low, "difficulty_max": high, "limit": limit},
            )
            if response.status_code == 404:
                items: list[dict[str, Any]] = []
            elif response.status_code != 200:
                raise ProblemBankUnavailable(f"problem bank answered HTTP {response.status_code}")
            else:
                items = _module_listing_items(response, module)
            cached = {"items": items}
            sealed_cache_set(key, cached, timeout=self.cache_seconds if items else min(30, self.cache_seconds))
        listed = [
            ProblemMetadata(
                id=str(item["id"]),
                slug=str(item.get("slug") or item["id"]),
                title=item.get("title") or str(item["id"]),
                subject=item.get("subject", "coding"),
                difficulty=item["difficulty"],
                topics=tuple(item.get("topics", ())),
                module=module,
                source="remote",
            )
            for item in cached["items"]
        ]
        # The bank is asked for the range, and held to it: a bank that ignores the filter must
        # not put a difficulty outside it into a plan.
        return [item for item in listed if low <= item.difficulty <= high][: max(limit, 0)]


_MODULE_LISTING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "difficulty"],
                "properties": {
                    "id": {"type": ["string", "integer"]},
                    "slug": {"type": "string", "minLength": 1},
                    "title": {"type": "string"},
                    "subject": {"enum": ["coding", "math", "systems"]},
                    "difficulty": {"type": "integer", "minimum": 1, "maximum": 5},
                    "topics": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100}},
                },
            },
        }
    },
}


def _module_listing_items(response: Any, module: str) -> list[dict[str, Any]]:
    """The listing's items, or ProblemBankUnavailable when it is not JSON of the expected shape."""
    try:
        body = response.json()
    except ValueError as exc:
        raise ProblemBankUnavailable("problem bank answered with something that is not JSON") from exc
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_MODULE_LISTING_SCHEMA).iter_errors(body))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(listing)"
        raise ProblemBankUnavailable(f"module listing for {module[:100]!r} is malformed at {where}: {error.message[:200]}")
    return body["items"]


def _remote_bundle_schema() -> dict[str, Any]:
    """What we accept from the remote bank: the course pack problem shape, loosely (a bank may
    omit fields and may use the older seeds/000 §5 `expect` / `hidden_spec` names)."""
    return {
        "$defs": coursepack_schema()["$defs"],
        "type": "object",
        "properties": {
            "id": {"type": ["string", "integer"]},
            "slug": {"type": "string", "minLength": 1},
            "title": {"type": "string"},
            "statement": {"type": "string"},
            "subject": {"$ref": "#/$defs/subject"},
            "difficulty": {"type": "integer", "minimum": 1, "maximum": 5},
            "topics": {"type": "array", "items": {"type": "string"}},
            "parameters": {"$ref": "#/$defs/parameters"},
            "languages": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["entrypoint"],
                    "properties": {k: {"type": "string"} for k in ("entrypoint", "starter", "reference")},
                },
            },
            "comparison": {"enum": ["exact", "unordered", "float"]},
            "float_tolerance": {"type": "number", "exclusiveMinimum": 0},
            "limits": {"type": "object", "properties": {k: {"type": "integer", "minimum": 1} for k in ("time_ms", "memory_mb")}},
            "hidden_spec": {
                "type": "object",
                "properties": {k: {"type": "integer", "minimum": 1} for k in ("time_limit_ms", "mem_limit_mb")},
            },
            "visible_tests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["input"],
                    "properties": {"input": {"type": "object"}},
                    "anyOf": [{"required": ["expected"]}, {"required": ["expect"]}],
                },
            },
            "hidden_tests": {"$ref": "#/$defs/hiddenTests"},
            "hints": {"type": "array", "items": {"type": "string"}},
            "remediation": {"type": "object", "additionalProperties": {"type": "string"}},
            "math": {"$ref": "#/$defs/math"},
        },
    }


def bundle_from_remote(raw: dict[str, Any], reference: str, *, include_hidden: bool) -> ProblemBundle:
    """Map a remote bundle (the course pack problem shape, or the older seeds/000 §5 shape) to ours.
    A bundle that does not match is treated like an unreachable bank, never a 500."""
    errors = sorted(
        jsonschema.Draft202012Validator(_remote_bundle_schema()).iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(bundle)"
        raise ProblemBankUnavailable(f"remote bundle for {reference[:100]!r} is malformed at {where}: {errors[0].message[:200]}")
    visible = [
        {"input": case.get("input", {}), "expected": case["expected"] if "expected" in case else case.get("expect")}
        for case in raw.get("visible_tests", [])
    ]
    hidden_spec = raw.get("hidden_spec") or {}
    limits = raw.get("limits") or {}
    hidden_raw = raw.get("hidden_tests", [])
    return ProblemBundle(
        id=str(raw.get("id") or raw.get("slug") or reference),
        slug=str(raw.get("slug") or raw.get("id") or reference),
        subject=raw.get("subject", "coding"),
        title=raw.get("title") or str(raw.get("id") or reference),
        statement=raw.get("statement", ""),
        difficulty=int(raw.get("difficulty", 3)),
        topics=list(raw.get("topics", [])),
        source="remote",
        parameters=list(raw.get("parameters") or (visible[0]["input"].keys() if visible else [])),
        languages={
            name: {
                "entrypoint": spec.get("entrypoint", ""),
                "starter": spec.get("starter", ""),
                "reference": spec.get("reference", ""),
            }
            for name, spec in (raw.get("languages") or {}).items()
        },
        comparison=raw.get("comparison", "exact"),
        float_tolerance=raw.get("float_tolerance"),
        time_limit_ms=int(limits.get("time_ms") or hidden_spec.get("time_limit_ms") or 1000),
        memory_limit_mb=int(limits.get("memory_mb") or hidden_spec.get("mem_limit_mb") or 256),
        visible_tests=visible,
        **(
            hidden_tests_encoded([HiddenCase(c["category"], c["input"], c["expected"]) for c in hidden_raw])
            if include_hidden
            else {}
        ),
        hints=list(raw.get("hints", [])),
        remediation=dict(raw.get("remediation", {})),
        math=raw.get("math"),
    )


class CompositeProblemBank:
    """Database first; then the remote bank when one is configured."""

    def __init__(self, banks: list[ProblemBank]) -> None:
        self.banks = banks

    def get(self, reference: str, *, include_hidden: bool = False) -> ProblemBundle | None:
        for bank in self.banks:
            bundle = bank.get(reference, include_hidden=include_hidden)
            if bundle is not None:
                return bundle
        return None

    def problems_by_module(self, module: str, difficulty_range: tuple[int, int], limit: int = 10) -> list[ProblemMetadata]:
        """The database's problems first, then the remote bank's that the database lacks (by slug),
        until `limit`; the remote bank is not asked when the database fills the limit."""
        found: list[ProblemMetadata] = []
        seen: set[str] = set()
        for bank in self.banks:
            if len(found) >= limit:
                break
            for item in bank.problems_by_module(module, difficulty_range, limit):
                if item.slug not in seen and len(found) < limit:
                    seen.add(item.slug)
                    found.append(item)
        return found

    def problem_metadata(self, reference: str) -> ProblemMetadata | None:
        for bank in self.banks:
            metadata = bank.problem_metadata(reference)
            if metadata is not None:
                return metadata
        return None


def problem_bank() -> ProblemBank:
    banks: list[ProblemBank] = [DatabaseProblemBank()]
    if settings.CO_PROBLEM_BANK_BASE:
        banks.append(
            HttpProblemBank(
                settings.CO_PROBLEM_BANK_BASE,
                timeout=settings.CO_PROBLEM_BANK_TIMEOUT_SECONDS,
                retries=settings.CO_PROBLEM_BANK_RETRIES,
                cache_seconds=settings.CO_PROBLEM_BANK_CACHE_SECONDS,
                token=settings.CO_PROBLEM_BANK_TOKEN,
            )
        )
    return CompositeProblemBank(banks)


def problem_bundle_get(*, reference: str, include_hidden: bool = False) -> ProblemBundle | None:
    """The bundle, or None when no bank has the problem. Raises ProblemRepositoryNotReady when
    the remote bank cannot answer."""
    try:
        return problem_bank().get(reference, include_hidden=include_hidden)
    except ProblemBankUnavailable as exc:
        logger.warning("problem bank unavailable", extra={"problem": reference[:100], "reason": str(exc)})
        raise ProblemRepositoryNotReady(
            "Problem repository not ready: the problem bank could not be reached. Try again shortly."
        ) from exc


def problems_by_module(*, module: str, difficulty_range: tuple[int, int], limit: int) -> list[ProblemMetadata]:
    """Candidates for a plan from every bank; 409 (ProblemRepositoryNotReady) when the remote
    bank cannot answer."""
    try:
        return problem_bank().problems_by_module(module, difficulty_range, limit)
    except ProblemBankUnavailable as exc:
        logger.warning("problem bank unavailable", extra={"problem_module": module[:100], "reason": str(exc)})
        raise ProblemRepositoryNotReady(
            "Problem repository not ready: the problem bank could not be reached. Try again shortly."
        ) from exc


def problem_bundle_for_grading(*, problem_id: uuid.UUID | None, reference: str) -> ProblemBundle:
    """The full bundle (hidden tests included) of a problem a learner already submitted to: by
    row when it came from the database (even if retired since), else from the banks."""
    if problem_id is not None:
        bundle = DatabaseProblemBank().get(str(problem_id), include_hidden=True, include_retired=True)
        if bundle is not None:
            return bundle
    return problem_bundle_require(reference=reference, include_hidden=True)


def problem_bundle_require(*, reference: str, include_hidden: bool = False) -> ProblemBundle:
    """For callers that need the problem (submissions, sessions): 409 when no bank has it."""
    bundle = problem_bundle_get(reference=reference, include_hidden=include_hidden)
    if bundle is None:
        raise ProblemRepositoryNotReady(fields={"problem_id": [f"The problem bank has no problem '{reference[:100]}'."]})
    return bundle
