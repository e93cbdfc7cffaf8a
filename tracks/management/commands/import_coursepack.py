"""Import a course pack file: validate it, store it, and publish it with --publish.

Goes through the same services as the admin, so both give the same database state.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tracks.coursepacks import PackCheck
from tracks.services import CoursePackTooLarge, coursepack_dry_run, coursepack_import, coursepack_read_file


def render_report(check: PackCheck) -> str:
    report = check.report()
    lines = []
    summary = report["summary"]
    if summary:
        lines.append(
            f"track {summary['track']} {summary['version']}: {summary['modules']} modules, "
            f"{summary['problems']} problems, {summary['hidden_tests']} hidden tests"
        )
    lines += [f"ERROR   {item['path']}: {item['message']}" for item in report["errors"]]
    lines += [f"WARNING {item['path']}: {item['message']}" for item in report["warnings"]]
    lines.append("valid" if report["ok"] else f"invalid: {len(report['errors'])} error(s); nothing was published")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Validate and import a course pack (YAML or JSON); --dry-run writes nothing, --publish publishes it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Only validate; write nothing.")
        parser.add_argument("--publish", action="store_true", help="Publish the pack when it is valid.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: object, path: Path, dry_run: bool, publish: bool, json: bool, **options: object) -> None:
        if dry_run and publish:
            raise CommandError("--dry-run and --publish exclude each other.")
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        try:
            content = coursepack_read_file(path=path)
        except CoursePackTooLarge as exc:
            raise CommandError(exc.message) from exc
        if dry_run:
            check, pack, summary = coursepack_dry_run(content=content), None, None
        else:
            pack, check, summary = coursepack_import(content=content, filename=path.name, publish=publish)
        self.stdout.write(self._render(check, json, summary))
        if not check.ok:
            raise CommandError("The course pack is invalid.")
        if pack is not None and summary is None:
            self.stdout.write(
                f"Stored as course pack {pack.pk} (status {pack.status}); publish it with --publish or in the admin."
            )
        if summary is not None:
            verb = "published" if summary.changed else "published (nothing changed)"
            self.stdout.write(
                f"{verb}: {len(summary.created)} created, {len(summary.updated)} updated, "
                f"{len(summary.unchanged)} unchanged, {len(summary.retired)} retired"
            )

    @staticmethod
    def _render(check: PackCheck, as_json: bool, summary: object) -> str:
        if as_json:
            return json.dumps(check.report(), indent=2)
        return render_report(check)
