"""data.task / data.subtask (and each named head's task / subtask) -> the task object, decided here once."""

from glovita.configs.data import DataConfig
from glovita.configs.model import ModelConfig
from glovita.tasks.base import Task
from glovita.tasks.heads import NamedTask


def build_task(data: DataConfig) -> Task:
    """The task a run's data config declares (data.task, data.subtask, data.num_classes): the main head's."""
    if data.task == "Segmentation":
        from glovita.tasks.segmentation import SegmentationTask

        return SegmentationTask(data.num_classes, int(getattr(data, "ignore_index", 255)))
    if data.task == "LabelFree":
        from glovita.tasks.labelfree import LabelFreeTask

        return LabelFreeTask(data.num_classes)
    return task_of(data.task, data.subtask, data.num_classes)


def build_named_tasks(model: ModelConfig, class_names: dict[str, list[str]] | None = None) -> list[NamedTask]:
    """The tasks of model.heads, by name, with their target fields, loss weights and (`class_names`, by head name:
    resolved_config.json's head_class_names) class names."""
    names = class_names or {}
    return [
        NamedTask(
            name,
            task_of(head.task, head.subtask, head.num_outputs),
            head.target_field,
            head.loss_weight,
            tuple(names.get(name, ())),
        )
        for name, head in model.heads.items()
    ]


def task_of(task: str, subtask: str, num_outputs: int) -> Task:
    match (task, subtask):
        case ("Regression", _):
            from glovita.tasks.regression import RegressionTask

            return RegressionTask(num_outputs)
        case ("Classification", "multilabel"):
            from glovita.tasks.multilabel import MultilabelTask

            return MultilabelTask(num_outputs)
        case ("Classification", "framewise"):
            from glovita.tasks.framewise import FramewiseTask

            return FramewiseTask(num_outputs)
        case ("Classification", _):
            from glovita.tasks.classification import ClassificationTask

            return ClassificationTask(num_outputs)
        case _:
            raise TypeError(f"No task branch for task={task!r} in glovita/tasks/factory.py.")
