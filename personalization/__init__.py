"""Mastery, the spaced-repetition review queue and recommendations."""
