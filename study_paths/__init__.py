"""Study paths, tasks, task events and evaluations, progress and export."""
