"""data.task / data.subtask -> the task object, decided here once."""

from glovita.configs.data import DataConfig
from glovita.tasks.base import Task


def build_task(data: DataConfig) -> Task:
    """The task a run's data config declares (data.task, data.subtask, data.num_classes)."""
    match (data.task, data.subtask):
        case ("Regression", _):
            from glovita.tasks.regression import RegressionTask

            return RegressionTask(data.num_classes)
        case ("Classification", "multilabel"):
            from glovita.tasks.multilabel import MultilabelTask

            return MultilabelTask(data.num_classes)
        case ("Classification", "framewise"):
            from glovita.tasks.framewise import FramewiseTask

            return FramewiseTask(data.num_classes)
        case ("Classification", _):
            from glovita.tasks.classification import ClassificationTask

            return ClassificationTask(data.num_classes)
        case _:
            raise TypeError(f"No task branch for data.task={data.task!r} in glovita/tasks/factory.py.")
