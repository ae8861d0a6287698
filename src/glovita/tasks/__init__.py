"""What is predicted: one task object per kind (classification, multilabel, framewise, regression), chosen once
from the config in tasks/factory.py; code downstream asks it instead of comparing data.task strings."""
