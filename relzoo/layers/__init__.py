"""Reusable Keras 3 layers of relzoo (pure `keras.ops`, any backend)."""

from relzoo.layers.detected_objects import DetectedObjects
from relzoo.layers.feature_map_objects import FeatureMapObjects
from relzoo.layers.pairwise_relation import PairwiseRelation
from relzoo.layers.relational_memory import RelationalMemoryCell

__all__ = ["DetectedObjects", "FeatureMapObjects", "PairwiseRelation", "RelationalMemoryCell"]
