"""Policy name -> transform; the names users may choose are listed in configs/augmentation.py."""

from glovita.augmentation.policies import shared_2d
from glovita.augmentation.policies.dataset_specific import digits
from glovita.augmentation.preprocessing import Preprocessing

_POLICIES = {**shared_2d.POLICIES, **digits.POLICIES}


def build_policy_transforms(train_policy: str, test_policy: str, params: Preprocessing):
    """(train transform, test transform) of the resolved policies."""
    return (
        build_transform(train_policy, params, "data.augmentation.train_policy"),
        build_transform(test_policy, params, "data.augmentation.test_policy"),
    )


def build_transform(policy: str, params: Preprocessing, field: str):
    """The transform of a policy; `field` (e.g. data.augmentation.train_policy) is named in errors."""
    if policy not in _POLICIES:
        raise ValueError(f"{field}={policy!r} has no implementation. Choose one of {', '.join(sorted(_POLICIES))}.")
    return _POLICIES[policy](params)
