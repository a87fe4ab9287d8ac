"""Synthetic audio-visual event clips with ground truth (see ``generate``)."""
