"""Review scheduling: how well do the fixed buckets and FSRS-6 predict recall, on the same logs?

Simulated learners with a known forgetting curve review problems from their review queue, through
the service every verdict uses (`personalization.services.attempt_record`, on a fresh SQLite
database), so the scheduler under test decides when each review happens and every review lands in
the ReviewLog with the driving scheduler's predicted recall.

The simulated memory (known to the bench, never to the schedulers): each problem has a stability
S (days) per learner; recall after t days is exp(−t / S). A problem enters the queue with a
failed first attempt, at S = S0 (log-normal, median 3 days). A successful review multiplies S
by the problem's growth factor (log-normal, median 2.5, higher when the review came late); a
failed one halves it (never below S0). A learner comes back to a due review after a random delay
(exponential, mean 1 day), so reviews fall at varied recall levels. The verdict of a review is a
draw from the true recall; a pass is timed and hinted like a learner who barely remembered
(recall < 0.6: heavy hints → Hard), remembered well (recall > 0.9: fast → Easy), or in between
(Good) — the verdict → rating mapping of personalization/scheduling.py.

Two runs, one driven by each scheduler (`CO_REVIEW_SCHEDULER`). On each run's log every predictor
is scored on the same reviews (first reviews, which have no prediction, excluded) by replaying
each card's logged ratings through it:

- buckets: p = 0.9 ^ (days since scheduled / the bucket's interval) — the bucket interval read as
  the time recall falls to 90% (personalization/scheduling.py); after retirement, as if the item
  stayed in its last bucket;
- FSRS-6: the package's retrievability, default parameters, desired retention 0.9;
- constant: the log's own average recall rate (an in-sample baseline: the best constant);
- oracle: the simulator's true recall (the floor no predictor can beat).

Printed: log-loss, RMSE (root mean squared error of p against the 0/1 outcome) and RMSE(bins)
(calibration: predicted vs observed recall in 20 equal-width bins of p, weighted by count), the
number of reviews and the recall rate. The replayed prediction of the driving scheduler is
checked equal to the one it logged. Usage:

    .venv/bin/python bench/review_scheduling.py [--learners 20] [--problems 20] [--days 120] [--seed 16]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import REPO, bench_env

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
EXPECTED_SECONDS = 15 * 60  # difficulty 2 (CO_EXPECTED_MINUTES)
BINS = 20


@dataclass
class Card:
    problem_id: object
    s0: float
    growth: float
    stability: float = 0.0
    last: datetime = START


def setup_django(workdir: Path) -> None:
    os.environ.update(bench_env(workdir, DJANGO_SETTINGS_MODULE="co_project.settings"))
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--no-input", verbosity=0)


def catalogue(problems: int) -> list[object]:
    from tracks.models import Module, Problem, Subject, Track

    track = Track.objects.create(slug="bench-reviews", subject=Subject.CODING, title="Bench reviews", published=True)
    module = Module.objects.create(track=track, slug="m", title="M", outcomes=["o"], position=0)
    rows = Problem.objects.bulk_create(
        Problem(
            slug=f"review-{n:03d}",
            subject=Subject.CODING,
            title=f"Problem {n}",
            statement="Solve it.",
            difficulty=2,
            module=module,
            position=n,
        )
        for n in range(problems)
    )
    return [row.id for row in rows]


def simulate(scheduler: str, *, learners: int, problem_ids: list[object], days: int, seed: int) -> dict[int, float]:
    """One run driven by `scheduler`; returns the true recall of every logged review, by log id."""
    from django.conf import settings
    from django.db import transaction

    from personalization.models import ReviewLog
    from personalization.services import ProblemFacts

    settings.CO_REVIEW_SCHEDULER = scheduler
    facts = ProblemFacts(difficulty=2, topics=("bench",), outcomes=())
    rng = random.Random(seed)
    horizon = START + timedelta(days=days)
    truth: dict[tuple[int, datetime], float] = {}
    for learner in range(learners):
        with transaction.atomic():  # one commit per learner: the bench measures predictions, not fsync
            _simulate_learner(f"{scheduler}-learner-{learner}", rng, problem_ids, horizon, facts, truth)
    logs = ReviewLog.objects.filter(scheduler=scheduler, learner_id__startswith=f"{scheduler}-")
    return {
        log_id: truth[(item_id, at)]
        for log_id, item_id, at in logs.values_list("id", "review_item_id", "reviewed_at")
        if (item_id, at) in truth
    }


def _simulate_learner(
    learner_id: str, rng: random.Random, problem_ids: list[object], horizon: datetime, facts: object, truth: dict
) -> None:
    """One learner's cards from their first miss to the horizon, each review when the scheduler
    has it due (plus the learner's delay); records the true recall of every review in `truth`."""
    from personalization.models import ReviewItem
    from personalization.services import GradedAttempt, attempt_record

    cards = [
        Card(problem_id=pid, s0=math.exp(rng.gauss(math.log(3.0), 0.5)), growth=math.exp(rng.gauss(math.log(2.5), 0.3)))
        for pid in problem_ids
    ]
    events: list[tuple[datetime, int]] = []
    for index, card in enumerate(cards):  # first attempts spread over the first two weeks: misses
        at = START + timedelta(days=rng.uniform(0, 14))
        attempt_record(
            attempt=GradedAttempt(
                learner_id=learner_id, problem_id=card.problem_id, passed=False, tests_total=4, seconds_taken=600, at=at
            ),
            problem=facts,
        )
        card.stability, card.last = card.s0, at
        events.append((at, index))
    while events:
        events.sort()
        _, index = events.pop(0)
        card = cards[index]
        item = ReviewItem.objects.get(learner_id=learner_id, problem_id=card.problem_id)
        if item.retired_at is not None:
            continue
        at = item.next_due_at + timedelta(days=rng.expovariate(1.0))
        if at > horizon:
            continue
        elapsed = (at - card.last).total_seconds() / 86400
        recall = math.exp(-elapsed / card.stability)
        passed = rng.random() < recall
        if passed:
            hints, seconds = (2, 1500) if recall < 0.6 else ((0, 300) if recall > 0.9 else (0, 600))
            card.stability *= card.growth * (1 + 0.2 * min(elapsed / card.stability, 2))
        else:
            hints, seconds = 0, 900
            card.stability = max(card.s0, card.stability * 0.5)
        card.last = at
        attempt_record(
            attempt=GradedAttempt(
                learner_id=learner_id,
                problem_id=card.problem_id,
                passed=passed,
                tests_passed=4 if passed else 1,
                tests_total=4,
                max_hint_level=hints,
                seconds_taken=seconds,
                at=at,
            ),
            problem=facts,
        )
        truth[(item.id, at)] = recall
        events.append((at, index))


def replay(scheduler_name: str, log_rows: list[tuple]) -> dict[int, float | None]:
    """Each card's logged ratings through one scheduler: its prediction before every review."""
    from personalization.models import ReviewRating
    from personalization.scheduling import MemoryState, review_scheduler

    scheduler = review_scheduler(scheduler_name)
    memory: dict[int, MemoryState | None] = defaultdict(lambda: None)
    predictions: dict[int, float | None] = {}
    for log_id, item_id, at, rating in log_rows:
        before = memory[item_id]
        predictions[log_id] = None if before is None else scheduler.predicted_recall(before, at)
        scheduled = scheduler.review(before, ReviewRating(rating), at)
        if scheduled.retire:  # the buckets: predict as if it stayed in its last bucket
            scheduled = type(scheduled)(bucket=scheduled.bucket, next_due_at=at + timedelta(days=21))
        memory[item_id] = MemoryState(
            bucket=scheduled.bucket,
            next_due_at=scheduled.next_due_at,
            last_reviewed_at=at,
            stability=scheduled.stability,
            difficulty=scheduled.difficulty,
        )
    return predictions


def scores(pairs: list[tuple[float, int]]) -> tuple[float, float, float]:
    eps = 1e-6
    loss = -sum(y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps)) for p, y in pairs) / len(pairs)
    rmse = math.sqrt(sum((p - y) ** 2 for p, y in pairs) / len(pairs))
    bins: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for p, y in pairs:
        bins[min(int(p * BINS), BINS - 1)].append((p, y))
    binned = math.sqrt(
        sum(len(b) * (sum(p for p, _ in b) / len(b) - sum(y for _, y in b) / len(b)) ** 2 for b in bins.values()) / len(pairs)
    )
    return loss, rmse, binned


def evaluate(driver: str, truth: dict[int, float]) -> None:
    from personalization.models import ReviewLog

    logs = ReviewLog.objects.filter(scheduler=driver, learner_id__startswith=f"{driver}-").order_by("reviewed_at", "id")
    rows = list(logs.values_list("id", "review_item_id", "reviewed_at", "rating"))
    logged = dict(logs.values_list("id", "predicted_recall"))
    outcome = {log_id: int(rating > 1) for log_id, _, _, rating in rows}
    predictors = {name: replay(name, rows) for name in ("buckets", "fsrs")}
    mismatch = sum(
        1
        for log_id, p in predictors[driver].items()
        if (p is None) != (logged[log_id] is None) or (p is not None and abs(p - logged[log_id]) > 1e-9)
    )
    scored = [log_id for log_id, p in predictors["buckets"].items() if p is not None and log_id in truth]
    average = sum(outcome[i] for i in scored) / len(scored)
    predictors["constant"] = dict.fromkeys(scored, average)
    predictors["oracle"] = truth
    print(f"\nlog driven by {driver}: {len(scored)} reviews scored ({len(rows)} logged), recall rate {average:.3f}")
    print(f"  replayed {driver} predictions that differ from the logged ones: {mismatch}")
    print(f"  {'predictor':<10} {'log-loss':>9} {'RMSE':>7} {'RMSE(bins)':>11} {'mean p':>7}")
    for name in ("buckets", "fsrs", "constant", "oracle"):
        pairs = [(predictors[name][i], outcome[i]) for i in scored]
        loss, rmse, binned = scores(pairs)
        mean_p = sum(p for p, _ in pairs) / len(pairs)
        print(f"  {name:<10} {loss:>9.4f} {rmse:>7.4f} {binned:>11.4f} {mean_p:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="co-bench-") as workdir:
        setup_django(Path(workdir))
        problem_ids = catalogue(args.problems)
        print(
            f"{args.learners} simulated learners × {args.problems} problems, {args.days} days, seed {args.seed}; "
            "true recall exp(−t/S)"
        )
        for driver in ("buckets", "fsrs"):
            started = time.perf_counter()
            truth = simulate(driver, learners=args.learners, problem_ids=problem_ids, days=args.days, seed=args.seed)
            print(f"\n[{driver}] simulated in {time.perf_counter() - started:.1f} s")
            evaluate(driver, truth)


if __name__ == "__main__":
    main()
