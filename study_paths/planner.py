"""The study-path planner: which tasks come next, as a pure function of plain data.

No ORM, no clock, no randomness: the plan is a function of the candidates (the catalogue the path
sees), the learner at the path's start, the config, the path's seed, the path's own history and
the due reviews handed in. Regenerating from the same inputs gives the same plan; the service
stores the seed and the algorithm version on the path so a path keeps its planner.

Algorithm v1 (the README describes it for learners and staff):

* Modules in the configured order. A module's pool is its unsolved problems in the difficulty
  range at or above the learner's level − 1, plus, for each of its topics that pool misses, the
  hardest unsolved problem on it (every topic is practised; strong learners skip the easy ones).
* Each next task is at most one above the previous task's difficulty (the first: one above the
  learner's level, or the range's minimum). Within that, candidates are scored with the config's
  weights (weakness, novelty, pacing, diversity; as the recommender's) and ties are broken by a
  hash of the seed and the problem, so two learners with one profile still get different orders.
* Topic rotation: a task shares no topic with the previous one when an allowed candidate that
  does not exists.
* After two consecutive failed tasks at difficulty d, the next task is below d (from the module,
  else any problem of the track, else a review of a solved one); only when nothing below d exists
  is it d + 1. Never a third consecutive failure at d.
* A failed problem stays in its module's pool; the module ends when its pool is solved. A
  skipped one leaves the pool.
* Due reviews (the learner's review queue, problems of this track) are injected as `review` tasks
  as soon as they fit the rules above, at most `review_cap_per_day` (the path's
  `max_reviews_per_day`) per day of the plan, counting the queue's reviews the learner already
  did or has open today (`reviews_today`): a backlog is spread over the following days. A problem
  with an open task in the history gets no second review task.
* Algorithm v2 (the default) reads the learner model at every replanning (`mastery_now`): once
  every pool is solved the path goes on with practice on the topics not yet mastered (score
  below `mastery_threshold`), so it ends when the learner model says the track is mastered, not
  when each problem was solved once. Where v1 waits for new content because everything left is
  more than one step above the last task (say, after stepping down from two misses at 5 to a
  review at 2), v2 climbs: the next task is a problem one step up, a `review` when already
  solved. v1 stays as it was for the paths created with it.
* The pending tail is a projection: `batch_size` tasks, each assuming the ones before it pass.
  A pass then leaves the tail as it was (one task is appended); a miss reshapes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

Outcome = Literal["passed", "failed", "skipped", "expired", "open"]
STREAK_LIMIT = 2
QUEUE_REVIEW_SOURCE = "review_queue"  # `review_source.source` of a review from the review queue
RECENT_TASKS = 3
TERMS = ("weakness", "novelty", "pacing", "diversity")


@dataclass(frozen=True)
class Candidate:
    """A problem the path may use (from the problem bank), in its module's authored order."""

    ref: str
    problem_id: str | None
    module: str
    difficulty: int
    topics: tuple[str, ...]
    slug: str = ""  # breaks ties: the same content re-imported under new ids plans the same

    @property
    def tie_key(self) -> str:
        return self.slug or self.ref


@dataclass(frozen=True)
class LearnerStart:
    """The learner model when the path was created."""

    level: int = 1
    mastery: Mapping[str, int] = field(default_factory=dict)  # topic → 0–100
    passed: frozenset[str] = frozenset()  # problem refs
    attempted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PlanConfig:
    difficulty_min: int = 1
    difficulty_max: int = 5
    modules: tuple[str, ...] = ()  # module keys, in order
    weights: Mapping[str, float] = field(
        default_factory=lambda: {"weakness": 0.35, "novelty": 0.25, "pacing": 0.3, "diversity": 0.1}
    )
    daily_target: int = 3
    review_cap_per_day: int = 2
    batch_size: int = 10
    mastery_threshold: int = 80  # a topic is mastered at this score (v2 plans until all are)


@dataclass(frozen=True)
class DueReview:
    ref: str
    reason: str
    bucket: int
    due_at: str  # ISO time: an ordering key and what the task's metadata shows
    item_id: int | None = None  # the learner's review item, named in the task's metadata

    @property
    def key(self) -> str:
        """One coming-due of one item: the same problem due again later is a new review."""
        return f"{self.ref}@{self.due_at}"


@dataclass(frozen=True)
class DoneTask:
    """A task of the path's history (or an open one, planned around as if it passes)."""

    ref: str
    module: str
    difficulty: int
    topics: tuple[str, ...]
    kind: str
    outcome: Outcome
    review_key: str | None = None  # `DueReview.key` of the queue entry a review task served


@dataclass(frozen=True)
class PlannedTask:
    ref: str
    problem_id: str | None
    module: str
    difficulty: int
    topics: tuple[str, ...]
    kind: str  # practice | review | challenge
    day: int  # days after the planning day it is due
    reasons: tuple[str, ...]
    review_source: Mapping[str, object] | None = None

    def identity(self) -> tuple[str, str]:
        """What makes two planned tasks the same task (a kept task keeps its row; its kind may change)."""
        return (self.ref, self.module)


@dataclass(frozen=True)
class Plan:
    tasks: tuple[PlannedTask, ...]
    complete: bool  # every module's pool is solved and no review is waiting
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """One decision of the planner, for explaining and for checking its rules: the options it
    had (every one within the rules), the previous task's difficulty and topics, the one taken."""

    previous_difficulty: int
    previous_topics: tuple[str, ...]
    blocked: int | None  # the difficulty two misses in a row rule out, if any
    options: tuple[Candidate, ...]
    chosen: Candidate


@dataclass
class _State:
    """Where the learner stands after the history (and, while projecting, after the tail so far)."""

    previous: int  # difficulty the next task is measured against
    level: int
    passed: set[str]
    attempted: set[str]
    left_pool: set[str]  # skipped by the learner: not offered again
    planned: set[str]  # in the tail already
    last_topics: tuple[str, ...] = ()
    recent_topics: list[tuple[str, ...]] = field(default_factory=list)
    streak_difficulty: int = 0
    streak: int = 0
    last_failed: bool = False
    started: bool = False  # the first task is paced at the learner's level, later ones stretch
    reviews_done: set[str] = field(default_factory=set)


def _tie(seed: int, ref: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{ref}".encode()).digest()[:8], "big")


def module_pools(candidates: Sequence[Candidate], learner: LearnerStart, config: PlanConfig) -> dict[str, list[Candidate]]:
    """Each module's pool (see the module docstring), in authored order."""
    pools: dict[str, list[Candidate]] = {}
    floor = max(config.difficulty_min, learner.level - 1)
    for module in config.modules:
        members = [
            c
            for c in candidates
            if c.module == module
            and config.difficulty_min <= c.difficulty <= config.difficulty_max
            and c.ref not in learner.passed
        ]
        pool = [c for c in members if c.difficulty >= floor]
        covered = {topic for c in pool for topic in c.topics}
        for topic in sorted({topic for c in members for topic in c.topics} - covered):
            hardest = max((c for c in members if topic in c.topics), key=lambda c: (c.difficulty, c.ref))
            if hardest not in pool:
                pool.append(hardest)
                covered.update(hardest.topics)
        order = {c.ref: index for index, c in enumerate(members)}
        pools[module] = sorted(pool, key=lambda c: order[c.ref])
    return pools


def _start_state(learner: LearnerStart, config: PlanConfig) -> _State:
    level = max(1, learner.level)
    return _State(
        previous=max(min(level, config.difficulty_max), config.difficulty_min - 1),
        level=level,
        passed=set(learner.passed),
        attempted=set(learner.attempted),
        left_pool=set(),
        planned=set(),
    )


def _apply(
    state: _State,
    *,
    ref: str,
    difficulty: int,
    topics: tuple[str, ...],
    kind: str,
    outcome: Outcome,
    review_key: str | None = None,
) -> None:
    """Move the state past one task (a finished one, or a projected pass)."""
    state.started = True
    state.previous = difficulty  # every task in the sequence is a link of the difficulty chain
    state.last_topics = topics
    state.recent_topics = [topics, *state.recent_topics][:RECENT_TASKS]
    if review_key:
        state.reviews_done.add(review_key)
    if outcome in ("skipped", "expired"):
        if outcome == "skipped" and kind != "review":
            state.left_pool.add(ref)
        return  # neither a pass nor a miss: the streak stands
    state.attempted.add(ref)
    if outcome in ("passed", "open"):
        state.passed.add(ref)
        state.streak = 0
        state.last_failed = False
        state.level = max(state.level, min(difficulty, state.level + 1))
    else:
        state.streak = state.streak + 1 if state.streak_difficulty == difficulty and state.streak else 1
        state.streak_difficulty = difficulty
        state.last_failed = True


def _pacing_target(state: _State) -> float:
    if state.streak >= STREAK_LIMIT:
        return state.previous - 1.0
    if state.last_failed or not state.started:
        return float(state.previous)
    return state.previous + 0.5


def _score(c: Candidate, state: _State, learner: LearnerStart, weights: Mapping[str, float]) -> float:
    known = [learner.mastery.get(topic, 50) for topic in c.topics] or [50]
    weakness = 1.0 - sum(known) / len(known) / 100.0
    novelty = 0.5 if c.ref in state.attempted else 1.0
    pacing = max(0.0, 1.0 - abs(c.difficulty - _pacing_target(state)) / 2.0)
    recent = {topic for topics in state.recent_topics for topic in topics}
    diversity = 1.0 - (len(set(c.topics) & recent) / len(c.topics) if c.topics else 0.0)
    values = {"weakness": weakness, "novelty": novelty, "pacing": pacing, "diversity": diversity}
    return round(sum(float(weights.get(name, 0.0)) * values[name] for name in TERMS), 9)


def _best(options: list[Candidate], state: _State, learner: LearnerStart, config: PlanConfig, seed: int) -> Candidate | None:
    """The highest-scoring option, rotating topics when an option allows it."""
    if not options:
        return None
    rotating = [c for c in options if not set(c.topics) & set(state.last_topics)]
    pick_from = rotating or options
    return max(pick_from, key=lambda c: (_score(c, state, learner, config.weights), -_tie(seed, c.tie_key)))


def _kind(c: Candidate, state: _State) -> str:
    return "challenge" if c.difficulty > state.level else "practice"


def _plan_tail(
    *,
    version: int,
    candidates: Sequence[Candidate],
    learner: LearnerStart,
    config: PlanConfig,
    seed: int,
    history: Sequence[DoneTask] = (),
    due_reviews: Sequence[DueReview] = (),
    mastery_now: Mapping[str, int] | None = None,
    observe: Callable[[Choice], None] | None = None,
    reviews_today: int = 0,
) -> Plan:
    """The pending tail after `history`: up to `batch_size` tasks. `observe` sees every choice;
    `reviews_today` review-queue tasks already count against the cap of the plan's first day.
    From version 2: `mastery_now` (the learner model today, topic → 0–100) keeps the path going
    until every topic is mastered (choices still score the mastery at the start, so a pass does
    not reshape the tail); nothing in reach → climb, not wait."""
    later = version >= 2
    in_range = [
        c for c in candidates if c.module in config.modules and config.difficulty_min <= c.difficulty <= config.difficulty_max
    ]
    to_master = (
        {t for c in in_range for t in c.topics if mastery_now.get(t, 0) < config.mastery_threshold}
        if later and mastery_now is not None
        else set()
    )
    by_ref = {c.ref: c for c in candidates}
    pools = module_pools(candidates, learner, config)
    state = _start_state(learner, config)
    for done in history:
        _apply(
            state,
            ref=done.ref,
            difficulty=done.difficulty,
            topics=done.topics,
            kind=done.kind,
            outcome=done.outcome,
            review_key=done.review_key,
        )

    reviews = sorted(
        (
            r
            for r in due_reviews
            if r.ref in by_ref and config.difficulty_min <= by_ref[r.ref].difficulty <= config.difficulty_max
        ),
        key=lambda r: (r.due_at, r.ref),
    )
    open_refs = {done.ref for done in history if done.outcome == "open"}
    reviews = [r for r in reviews if r.key not in state.reviews_done and r.ref not in open_refs]
    reviews_per_day: dict[int, int] = {0: reviews_today} if reviews_today > 0 else {}
    tasks: list[PlannedTask] = []
    notes: list[str] = []

    def allowed(difficulty: int, *, below: int | None = None) -> bool:
        if not (config.difficulty_min <= difficulty <= min(config.difficulty_max, state.previous + 1)):
            return False
        return below is None or difficulty < below

    def open_in(module: str) -> list[Candidate]:
        return [
            c
            for c in pools.get(module, ())
            if c.ref not in state.passed and c.ref not in state.planned and c.ref not in state.left_pool
        ]

    def track_unsolved(exclude_module: str | None = None) -> list[Candidate]:
        return [c for module in config.modules if module != exclude_module for c in open_in(module)]

    def emit(c: Candidate, kind: str, reasons: list[str], review_source: Mapping[str, object] | None = None) -> None:
        day = len(tasks) // max(1, config.daily_target)
        tasks.append(
            PlannedTask(
                ref=c.ref,
                problem_id=c.problem_id,
                module=c.module,
                difficulty=c.difficulty,
                topics=c.topics,
                kind=kind,
                day=day,
                reasons=tuple(reasons),
                review_source=review_source,
            )
        )
        if kind == "review":
            reviews_per_day[day] = reviews_per_day.get(day, 0) + 1
        state.planned.add(c.ref)
        _apply(state, ref=c.ref, difficulty=c.difficulty, topics=c.topics, kind=kind, outcome="open")

    def choose(options: list[Candidate], blocked: int | None) -> Candidate | None:
        chosen = _best(options, state, learner, config, seed)
        if chosen is not None and observe is not None:
            observe(Choice(state.previous, state.last_topics, blocked, tuple(options), chosen))
        return chosen

    # v2 with the learner model: once every pool is solved and every topic mastered the path is
    # done; due reviews go on in the review queue (a heavy-hint learner's never run dry).
    mastered = later and mastery_now is not None and not to_master

    while len(tasks) < config.batch_size:
        if mastered and not any(open_in(m) for m in config.modules):
            break
        blocked = state.streak_difficulty if state.streak >= STREAK_LIMIT else None
        day = len(tasks) // max(1, config.daily_target)

        # 1. A due review that fits, within the day's cap.
        if reviews and reviews_per_day.get(day, 0) < config.review_cap_per_day:
            fitting = [r for r in reviews if allowed(by_ref[r.ref].difficulty, below=blocked) and r.ref not in state.planned]
            if fitting:
                rotating = [r for r in fitting if not set(by_ref[r.ref].topics) & set(state.last_topics)]
                review = (rotating or fitting)[0]
                reviews.remove(review)
                if observe is not None:
                    options = tuple(by_ref[r.ref] for r in fitting)
                    observe(Choice(state.previous, state.last_topics, blocked, options, by_ref[review.ref]))
                emit(
                    by_ref[review.ref],
                    "review",
                    [f"A review is due (reason {review.reason}, bucket {review.bucket})."],
                    {
                        "source": QUEUE_REVIEW_SOURCE,
                        "key": review.key,
                        **({"review_item_id": review.item_id} if review.item_id is not None else {}),
                        "reason": review.reason,
                        "bucket": review.bucket,
                        "due_at": review.due_at,
                    },
                )
                continue

        module = next((m for m in config.modules if open_in(m)), None)
        if module is None and to_master:
            # (v2) Every pool is solved but topics are not mastered yet: practise them again.
            practice = [
                c
                for c in in_range
                if set(c.topics) & to_master
                and c.ref not in state.planned
                and c.ref not in state.left_pool
                and allowed(c.difficulty, below=blocked)
            ]
            choice = choose(practice, blocked)
            if choice is not None:
                topics = ", ".join(sorted(set(choice.topics) & to_master))
                emit(choice, _kind(choice, state), [f"Practising until mastered: {topics}."])
                continue
        elif module is None and not (later and reviews and config.review_cap_per_day):
            break  # every pool is solved (projected): reviews may still be waiting

        if module is not None:
            # 2. The current module, within the rules.
            choice = choose([c for c in open_in(module) if allowed(c.difficulty, below=blocked)], blocked)
            if choice is not None:
                reasons = (
                    ["Next in the module."] if blocked is None else [f"Stepping down after two misses at difficulty {blocked}."]
                )
                emit(choice, _kind(choice, state), reasons)
                continue

        # 3. Out of reach in the module: an unsolved problem elsewhere in the track that fits.
        choice = choose([c for c in track_unsolved(module) if allowed(c.difficulty, below=blocked)], blocked)
        if choice is not None:
            why = "Stepping down" if blocked is not None else "Preparing"
            emit(choice, _kind(choice, state), [f"{why}: the module's next problems are out of reach for now."])
            continue

        # 4. After two misses: a review of a solved problem below the blocked difficulty.
        solved = (
            []
            if blocked is None
            else [
                by_ref[ref]
                for ref in sorted(state.passed - state.planned)
                if ref in by_ref and allowed(by_ref[ref].difficulty, below=blocked)
            ]
        )
        choice = choose(solved, blocked)
        if choice is not None:
            emit(choice, "review", ["Consolidating a solved problem before trying again."], {"source": "step_down"})
            continue

        # 5. Nothing below the blocked difficulty: one above it, never a third try at it.
        if blocked is not None:
            choice = choose([c for c in open_in(module) if c.difficulty == blocked + 1 and allowed(c.difficulty)], blocked)
            if choice is None:
                choice = choose(
                    [c for c in track_unsolved(module) if c.difficulty == blocked + 1 and allowed(c.difficulty)], blocked
                )
            if choice is not None:
                emit(choice, _kind(choice, state), [f"No easier problem exists; moving off difficulty {blocked}."])
                continue

        # 6. (v2) Something is left that no rule above could serve from here (e.g. everything is
        # more than one step up after stepping down): climb through a problem one step up — a
        # review when solved — rather than wait.
        step = state.previous + 1
        targets = [
            *track_unsolved(),
            *(by_ref[r.ref] for r in reviews if config.review_cap_per_day),
            *(c for c in in_range if set(c.topics) & to_master and c.ref not in state.planned | state.left_pool),
        ]
        if later and targets:  # something is left that no rule could serve from here
            rungs = [
                c
                for c in candidates
                if c.difficulty == step
                and c.module in config.modules
                and allowed(c.difficulty)
                and c.difficulty != blocked
                and c.ref not in state.planned
                and c.ref not in state.left_pool
            ]
            choice = choose(rungs, blocked)
            if choice is not None:
                solved = choice.ref in state.passed
                emit(
                    choice,
                    "review" if solved else _kind(choice, state),
                    [f"Climbing back towards the problems left, one difficulty step at a time (now {step})."],
                    {"source": "climb"} if solved else None,
                )
                continue
        notes.append(f"Nothing within one step of difficulty {state.previous} is left; the path waits for new content.")
        break

    # v2: reviews a zero daily cap keeps out cannot hold the path open.
    waiting_reviews = bool(reviews) and (not later or config.review_cap_per_day > 0) and not mastered
    complete = not tasks and not waiting_reviews and not to_master and all(not open_in(m) for m in config.modules)
    return Plan(tasks=tuple(tasks), complete=complete, notes=tuple(notes))


Planner = Callable[..., Plan]

# v1 waits when everything left is more than one step above the last task; v2 climbs back up.
plan_tail_v1: Planner = partial(_plan_tail, version=1)
plan_tail_v2: Planner = partial(_plan_tail, version=2)

# Algorithm versions: a path is extended by the planner it was created with.
PLANNERS: dict[str, Planner] = {"v1": plan_tail_v1, "v2": plan_tail_v2}


def planner_for(version: str) -> Planner:
    try:
        return PLANNERS[version]
    except KeyError:
        raise LookupError(f"no study-path planner {version!r} (known: {', '.join(sorted(PLANNERS))})") from None
