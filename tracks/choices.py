"""The content's vocabulary: subjects, languages, comparison modes, math answer forms, rubric
domains. Other apps name these (a session's subject, a submission's language) through this
module, which holds no model, so naming one reaches none of tracks' tables."""

from __future__ import annotations

from django.db import models

from grading.comparison import ComparisonMode


class Subject(models.TextChoices):
    CODING = "coding", "Coding"
    MATH = "math", "Math"
    SYSTEMS = "systems", "Systems design"


class Language(models.TextChoices):
    PYTHON = "python", "Python"
    JAVASCRIPT = "javascript", "JavaScript"


class Comparison(models.TextChoices):
    EXACT = ComparisonMode.EXACT.value, "Exact JSON equality"
    UNORDERED = ComparisonMode.UNORDERED.value, "Top-level list as a multiset"
    FLOAT = ComparisonMode.FLOAT.value, "Numbers within a tolerance"


class MathForm(models.TextChoices):
    EQUIVALENT = "equivalent", "Any equivalent expression"
    SIMPLIFIED = "simplified", "Equivalent and simplified"
    EXPANDED = "expanded", "Equivalent and fully expanded"
    FACTORED = "factored", "Equivalent and fully factored"


class RubricDomain(models.TextChoices):
    SYSTEMS = "systems", "Systems design"
    MATH = "math", "Math"
