"""Tasks: generated or bundled datasets, each registered by name (SPEC.md sec. 5)."""

from grokscope.tasks import addition, arithmetic, groups, images, parity, regression
from grokscope.tasks.base import TASKS, Task, TaskSpec, build_task, split_indices

__all__ = [
    "TASKS",
    "Task",
    "TaskSpec",
    "addition",
    "arithmetic",
    "build_task",
    "groups",
    "images",
    "parity",
    "regression",
    "split_indices",
]
