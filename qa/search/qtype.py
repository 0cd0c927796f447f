"""What kind of answer a question expects, and whether a sentence holds one.

A "how many" question needs a quantity, "when" a date, a year or a version, "who" a name
and "where" a place that the question does not already name. Used as one signal among
others when the answer sentence is chosen and when deciding to abstain; never alone.
"""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal["number", "date", "person", "place", "other"]

_TYPES: tuple[tuple[AnswerType, re.Pattern[str]], ...] = (
    (
        "number",
        re.compile(
            r"^\s*(how (many|much|long|old|far|big|large|tall|fast|often)|what (number|percentage"
            r"|proportion|share|amount|size|is the (population|number|size|value|default|maximum"
            r"|minimum)))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "date",
        re.compile(
            r"^\s*(when|since when|(in |by )?what (year|date|day|month|time|version)|which "
            r"(year|version|release))\b",
            re.IGNORECASE,
        ),
    ),
    ("person", re.compile(r"^\s*(who|whom|whose)\b", re.IGNORECASE)),
    (
        "place",
        re.compile(r"^\s*(where|in which (city|country|province|district))\b", re.IGNORECASE),
    ),
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen|percent|half|double|twice)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(1[5-9]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|"
    r"october|november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"yesterday|today|tomorrow|century|decade|version \d+(\.\d+)*|python \d(\.\d+)*)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)*")


def answer_type(question: str) -> AnswerType:
    """The kind of answer ``question`` asks for ("other" when the wording doesn't say)."""
    for kind, pattern in _TYPES:
        if pattern.search(question):
            return kind
    return "other"


def holds_type(kind: AnswerType, sentence: str, question: str) -> float:
    """1.0 when ``sentence`` holds an answer of the kind asked for, 0.0 when it holds none,
    0.5 when the question's wording doesn't name a kind."""
    if kind == "other":
        return 0.5
    if kind == "number":
        return float(bool(_NUMBER.search(sentence)))
    if kind == "date":
        return float(bool(_DATE.search(sentence)))
    asked = question.lower()
    names = [name for name in _CAPITALISED.findall(sentence) if name.lower() not in asked]
    return float(bool(names))
