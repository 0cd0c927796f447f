"""What kind of fact a question asks for, and whether a sentence holds one.

"How many ..." wants a quantity, "when ..." a date, a year or a version, "who ..." a name
and "where ..." a place or a path. A sentence that holds a fact of that kind which the
question does not already name is more likely the answer: one feature of the answer
chooser (:mod:`qa.search.evidence`). Plain regular expressions, linear in the text.
"""

from __future__ import annotations

import functools
import itertools
import re
from enum import Enum


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


class Kind(str, Enum):
    """The kind of fact a question asks for."""

    QUANTITY = "quantity"
    TIME = "time"
    PERSON = "person"
    PLACE = "place"


_LEAD = r"^\W*(?:(?:and|so|but|ok|okay|then|also|hmm|well)\W+)*"
_QUESTION_KINDS = (
    (
        Kind.TIME,
        re.compile(
            _LEAD + r"when (?:was|were|did|will|has|had)\b"
            r"|\b(?:since|until) when\b|\bhow long ago\b|\brelease date\b"
            r"|\b(?:what|which) (?:python )?(?:year|date|day|month|version|release)s?\b"
        ),
    ),
    (
        Kind.QUANTITY,
        re.compile(
            r"\b(?:how (?:many|much|long|often|old|far|big|large|small|high|tall|fast|deep"
            r"|wide|heavy|frequently)|what (?:percentage|proportion|fraction|number|amount"
            r"|size)|what(?: is|'s) the (?:maximum|minimum|max|min|limit|size|length|number)"
            r"|by how much)\b"
        ),
    ),
    (Kind.PERSON, re.compile(_LEAD + r"(?:who|whom|whose)\b|\bby whom\b|\bwhich person\b")),
    (
        Kind.PLACE,
        re.compile(
            _LEAD + r"where\b|\bin (?:what|which) (?:city|country|place|province|state"
            r"|region|directory|folder|file)\b"
        ),
    ),
)

_NUMBER_WORDS = _words(
    "one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty "
    "sixty seventy eighty ninety hundred thousand million billion trillion half "
    "quarter dozen twice thrice zero"
)
_MONTHS = _words(
    "january february march april may june july august september october november "
    "december monday tuesday wednesday thursday friday saturday sunday"
)
_TIME_WORDS = _words(
    "today yesterday tomorrow ago century decade decades centuries annually daily "
    "weekly monthly yearly"
)
_TOKEN = re.compile(r"[A-Za-z][\w'-]*|\d+(?:[.,:]\d+)*")
_YEAR = re.compile(r"(?:1[5-9]|20)\d\d")
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
_FILE_ENDINGS = (".py", ".cfg", ".toml", ".ini", ".pth", ".txt", ".json")
_ASKS_VERSION = re.compile(
    r"\b(?:which|what) (?:python )?(?:version|release)|\b(?:added|introduced|removed|deprecated)\b"
)
_OFTEN = re.compile(r"\bhow (?:often|frequently)\b")
_DURATION = re.compile(r"\bhow (?:long|old)\b|\bhow much time\b")
_COUNTED = re.compile(r"\bhow many ((?:[\w-]+ ){0,2}[\w-]+)")
_FREQUENT = _words("once twice thrice daily weekly monthly annually yearly hourly every")
_TIME_UNITS = _words(
    "year month week day hour minute second millisecond microsecond nanosecond decade century ms"
)
_AT = _words("in at from into to near")
_CREDIT = _words("by according author authors thanks credit")
_SAYS = _words("said says wrote writes noted stated added observed explained told")
_FUNCTION = _words(
    "the this that these those it its in on at a an for if when while as to of and but or "
    "new see with by from all some there here he she they we you i"
)
_PARTICLES = _words("van von de der da di le la del du")


def expected(question: str) -> Kind | None:
    """The kind of fact ``question`` asks for, or ``None`` for any other question."""
    text = question.lower()
    for kind, pattern in _QUESTION_KINDS:
        if pattern.search(text):
            return kind
    return None


def holds(kind: Kind, sentence: str, question: str) -> float:
    """How surely ``sentence`` holds a fact of ``kind`` that ``question`` does not name:
    1 for a fact of the very sort asked (a count of the things "how many" names, a duration
    for "how long", a frequency for "how often", a name credited with something), 0.5 for a
    fact of the kind only (any other number or name), 0 for none."""
    asked = _asked(question)
    tokens = _TOKEN.findall(sentence)
    if kind is Kind.QUANTITY:
        return _quantity(question.lower(), [t.lower() for t in tokens], asked)
    if kind is Kind.TIME:
        return _time(question.lower(), [t for t in tokens if t.lower() not in asked])
    if kind is Kind.PERSON:
        return _names(tokens, asked)
    return float(
        any(p.lower() not in question.lower() for p in _paths(sentence))
        or any(
            word.lower() in _AT and place[0].isupper() and place.lower() not in asked
            for word, place in itertools.pairwise(tokens)
        )
    )


@functools.lru_cache(maxsize=64)
def _asked(question: str) -> frozenset[str]:
    """The question's words, lower-cased: asked once per candidate sentence, made once."""
    return frozenset(t.lower() for t in _TOKEN.findall(question))


def _time(question: str, tokens: list[str]) -> float:
    """:func:`holds` for a time: a version answers "which version" and when something was
    added, removed or deprecated (how documentation dates a change), a date or a year the
    rest; the other of the two counts half."""
    dates = any(
        _YEAR.fullmatch(t) or (t[0].isupper() and t.lower() in _MONTHS) or t.lower() in _TIME_WORDS
        for t in tokens
    )
    versions = any(_VERSION.fullmatch(t) for t in tokens)
    if _ASKS_VERSION.search(question):
        dates, versions = versions, dates
    return 1.0 if dates else 0.5 if versions else 0.0


def _quantity(question: str, words: list[str], asked: frozenset[str]) -> float:
    """:func:`holds` for a quantity: which words may follow the number to be the sort asked."""
    change = "by how much" in question  # an amount of change: "reduced by half a year"
    if _OFTEN.search(question):
        if _FREQUENT.intersection(words):
            return 1.0
        units = {"time"}
    elif _DURATION.search(question):
        units = _TIME_UNITS
    else:
        counted = _COUNTED.search(question)
        units = {_singular(w) for w in counted.group(1).split()} if counted else set()
    best = 0.0
    for index, word in enumerate(words):
        if not (word[0].isdigit() or word in _NUMBER_WORDS) or word in asked:
            continue
        best = 0.5
        if change and index and words[index - 1] == "by":
            return 1.0
        if any(_singular(w) in units for w in words[index + 1 : index + 5]):
            return 1.0
    return best


def _singular(word: str) -> str:
    """``word`` without a plural ending, enough to match "cities" with "city"."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _paths(text: str) -> list[str]:
    """The words of ``text`` that look like a file path or a file name."""
    words = (w.strip("\"'`()[],;").rstrip(".:") for w in text.split())
    return [w for w in words if len(w) > 2 and (_rooted(w) or w.endswith(_FILE_ENDINGS))]


def _rooted(word: str) -> bool:
    """Whether ``word`` is a path from a root or with a file name ("~/.config/x", "a/b.txt",
    "https://host/"), not two words joined by a slash ("save/restore")."""
    if "/" not in word and "\\" not in word:
        return False
    return word[0] in "/\\~%." or "." in word or ":" in word


def _names(tokens: list[str], asked: frozenset[str]) -> float:
    """1 for a capitalised name of two words or more, not in the question, that is credited
    ("by Vinay Sajip", "Liu Fusheng said"); 0.5 for such a name alone; 0 for none."""
    found, run = 0.0, 0
    for index, token in enumerate(tokens + [""]):
        first = index == 0 and token.lower() in _FUNCTION
        if token[:1].isupper() and not first and token.lower() not in asked:
            run += 1
            continue
        if run and token in _PARTICLES:
            continue
        if run >= 2:
            before = {t.lower() for t in tokens[max(0, index - run - 2) : index - run]}
            if before & _CREDIT or token.lower() in _SAYS:
                return 1.0
            found = 0.5
        run = 0
    return found
