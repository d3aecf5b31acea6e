"""Tasks: generated or bundled datasets, each registered by name (SPEC.md sec. 5)."""

from grokscope.tasks import arithmetic, images
from grokscope.tasks.base import TASKS, Task, TaskSpec, build_task, split_indices

__all__ = ["TASKS", "Task", "TaskSpec", "arithmetic", "build_task", "images", "split_indices"]
