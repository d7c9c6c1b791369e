"""The embedded demo: original stories, synthetic timings and simulated brain responses.

The demo dataset is a small story-listening experiment with planted ground truth: five short
stories written for this project (:mod:`.stories`), read aloud at a natural rate
(:mod:`.timing`), and responses of the voxels of an MNI-space brain at low resolution
(:mod:`.brain`) in which known voxel groups are driven by known feature spaces through a
haemodynamic response plus noise (:mod:`.simulate`).
"""

from .dataset import DemoParams, build_demo_dataset, demo_dataset, load_planted
from .brain import DEFAULT_REGIONS, PlantedRegion, demo_mask, plant_regions, voxel_coordinates
from .simulate import SimulationParams, canonical_hrf, simulate_responses
from .stories import STORY_NAMES, story_text, story_words
from .timing import synthesize_timings

__all__ = [
    "DemoParams", "build_demo_dataset", "demo_dataset", "load_planted",
    "DEFAULT_REGIONS", "PlantedRegion", "demo_mask", "plant_regions", "voxel_coordinates",
    "SimulationParams", "canonical_hrf", "simulate_responses",
    "STORY_NAMES", "story_text", "story_words", "synthesize_timings",
]
