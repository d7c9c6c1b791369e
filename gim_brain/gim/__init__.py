"""GIM next-token model: token ids in, distributions and explanations out (knows nothing of fMRI)."""
