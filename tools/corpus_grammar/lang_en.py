"""English realization of the corpus grammar (see ``semantics.py``): SVO, do-support for questions and negation,
'will' future, irregular past tenses and plurals, a/an."""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import Clause, NounPhrase, Pronoun, Sentence

LANG = "en"
SCRIPT = "Latin"

_PLURAL_IRREGULAR = {"man": "men", "woman": "women", "fish": "fish", "story": "stories", "library": "libraries",
                     "city": "cities", "shelf": "shelves", "bus": "buses", "class": "classes", "box": "boxes",
                     "bread": "bread", "rice": "rice", "water": "water", "tea": "tea", "milk": "milk",
                     "coffee": "coffee", "soup": "soup"}
_WORD = {"phone": "phone", "ticket": "ticket", "neighbour": "neighbour"}
_MASS = frozenset({"bread", "rice", "water", "tea", "milk", "coffee", "soup", "fish"})
_NUMBER = {2: "two", 3: "three"}
_SUBJECT = {"1sg": "I", "2sg": "you", "3sg_m": "he", "3sg_f": "she", "1pl": "we", "2pl": "you", "3pl": "they"}
_OBJECT = {"1sg": "me", "2sg": "you", "3sg_m": "him", "3sg_f": "her", "1pl": "us", "2pl": "you", "3pl": "them"}
_POSSESSIVE = {"1sg": "my", "2sg": "your", "3sg_m": "his", "3sg_f": "her", "1pl": "our", "2pl": "your",
               "3pl": "their"}
# verb -> (base, third person singular, past, past participle, present participle)
_VERBS = {
    "read": ("read", "reads", "read"), "write": ("write", "writes", "wrote"), "eat": ("eat", "eats", "ate"),
    "drink": ("drink", "drinks", "drank"), "buy": ("buy", "buys", "bought"), "sell": ("sell", "sells", "sold"),
    "see": ("see", "sees", "saw"), "find": ("find", "finds", "found"), "open": ("open", "opens", "opened"),
    "close": ("close", "closes", "closed"), "carry": ("carry", "carries", "carried"),
    "love": ("love", "loves", "loved"), "help": ("help", "helps", "helped"), "call": ("call", "calls", "called"),
    "wash": ("wash", "washes", "washed"), "cook": ("cook", "cooks", "cooked"), "sing": ("sing", "sings", "sang"),
    "draw": ("draw", "draws", "drew"), "sleep": ("sleep", "sleeps", "slept"), "work": ("work", "works", "worked"),
    "play": ("play", "plays", "played"), "laugh": ("laugh", "laughs", "laughed"),
    "wait": ("wait", "waits", "waited"), "run": ("run", "runs", "ran"), "go": ("go", "goes", "went"),
    "come": ("come", "comes", "came"), "return": ("return", "returns", "returned"),
}
_TIMES = {"yesterday": "yesterday", "last_week": "last week", "this_morning": "this morning",
          "every_day": "every day", "often": "often", "now": "now", "in_the_evening": "in the evening",
          "tomorrow": "tomorrow", "next_week": "next week", "soon": "soon"}
_AT = {"school": "at", "market": "at", "station": "at", "river": "by", "field": "in", "office": "at"}  # default "in"
_CONNECTIVE = {"and": "and", "but": "but", "because": "because"}


def _plural(noun: str) -> str:
    if noun in _PLURAL_IRREGULAR:
        return _PLURAL_IRREGULAR[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    return noun + "s"


def _noun_phrase(np: NounPhrase | Pronoun, case: str) -> str:
    if isinstance(np, Pronoun):
        return (_SUBJECT if case == "subject" else _OBJECT)[np.person]
    head = _plural(np.noun) if np.plural or np.count else np.noun
    words = [head] if np.adjective is None else [np.adjective, head]
    if np.count:
        return " ".join([_NUMBER[np.count], *words])
    if np.possessor:
        return " ".join([_POSSESSIVE[np.possessor], *words])
    if np.definite:
        return " ".join(["the", *words])
    if np.plural or np.noun in _MASS:
        return " ".join(words)
    return " ".join(["an" if words[0][0] in "aeiou" else "a", *words])


def _third_singular(subject: NounPhrase | Pronoun) -> bool:
    if isinstance(subject, Pronoun):
        return subject.person in ("3sg_m", "3sg_f")
    return not (subject.plural or subject.count)


def _be(clause: Clause) -> str:
    singular3 = _third_singular(clause.subject)
    first = isinstance(clause.subject, Pronoun) and clause.subject.person == "1sg"
    if clause.tense == "past":
        return "was" if singular3 or first else "were"
    if clause.tense == "future":
        return "will be"
    return "am" if first else "is" if singular3 else "are"


def _place(place: str) -> str:
    return f"{_AT.get(place, 'in')} the {place}"


def _complements(clause: Clause) -> list[str]:
    words = []
    if clause.object is not None:
        words.append(_noun_phrase(clause.object, "object"))
    if clause.destination is not None:
        words.append("home" if clause.destination == "house" else f"to the {clause.destination}")
    if clause.place is not None:
        words.append(_place(clause.place))
    if clause.time is not None:
        words.append(_TIMES[clause.time])
    return words


def _predicate(clause: Clause, question: bool) -> tuple[str, list[str]]:
    """(auxiliary or finite verb that a question moves to the front, the rest)."""
    if clause.kind in ("state", "location"):
        be = _be(clause).split()
        rest = [clause.adjective] if clause.kind == "state" else [_place(clause.place)]
        if clause.time is not None:
            rest.append(_TIMES[clause.time])
        if clause.negative:
            be.insert(1, "not")
        return be[0], be[1:] + rest
    base, third, past = _VERBS[clause.verb]
    if clause.tense == "future":
        return "will", (["not"] if clause.negative else []) + [base] + _complements(clause)
    if clause.negative or question:
        aux = "did" if clause.tense == "past" else "does" if _third_singular(clause.subject) else "do"
        return aux, (["not"] if clause.negative else []) + [base] + _complements(clause)
    finite = past if clause.tense == "past" else third if _third_singular(clause.subject) else base
    return finite, _complements(clause)


def _clause(clause: Clause, question: bool = False) -> str:
    head, rest = _predicate(clause, question)
    subject = _noun_phrase(clause.subject, "subject")
    words = [head, subject, *rest] if question else [subject, head, *rest]
    return " ".join(words)


def realize(sentence: Sentence) -> str:
    if sentence.question:
        text = _clause(sentence.clauses[0], question=True) + "?"
    elif len(sentence.clauses) == 2:
        first, second = (_clause(c) for c in sentence.clauses)
        comma = "," if sentence.connective == "but" else ""
        text = f"{first}{comma} {_CONNECTIVE[sentence.connective]} {second}."
    else:
        text = _clause(sentence.clauses[0]) + "."
    return text[0].upper() + text[1:]


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
