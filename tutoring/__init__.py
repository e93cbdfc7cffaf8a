"""Tutor turns, context preparation, built-in and LLM tutors, the SSE stream."""
