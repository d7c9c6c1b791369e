"""gim-brain: voxelwise encoding models of natural language with the Generalized Induction-Head Model."""

__version__ = "0.1.0"
