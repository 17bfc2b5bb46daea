"""The language-independent side of the corpus grammar: concepts, sentence structures and the document planner.

A document is planned once as a list of paragraphs of `Sentence` values (who does what to what, where, when, in which
tense, negated or asked) and then *realized* by each language's module (``lang_<code>.py``), which owns that language's
vocabulary, morphology, agreement and word order. Realizing the same plan in two languages gives parallel text; a
language's training text comes from plans drawn with its own seed.

Every concept below is an id with an English gloss; the language modules map the ids to their own words.
Only the standard library is used, and everything is deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["ADJECTIVES", "CONNECTIVES", "NOUNS", "PERSONS", "PLACES", "TENSES", "TIMES", "VERBS", "Clause", "Noun",
           "NounPhrase", "Pronoun", "Sentence", "Verb", "plan_document"]

TENSES = ("past", "present", "future")
PERSONS = ("1sg", "2sg", "3sg_m", "3sg_f", "1pl", "2pl", "3pl")
"""Pronoun persons. ``2sg`` is the familiar singular (tu/du/ты), ``2pl`` the plural 'you (all)'."""
CONNECTIVES = ("and", "but", "because")
"""How a two-clause sentence joins its clauses: 'A and B', 'A but B', 'A because B' (B is a subordinate clause)."""


@dataclass(frozen=True)
class Noun:
    """A noun concept. ``kind``: person (``sex`` m/f), animal, food, drink, thing, or place."""

    id: str
    kind: str
    sex: str = ""  # persons only: "m" or "f" (fixed per concept, so pronouns and agreement are unambiguous)
    gloss: str = ""


NOUNS: dict[str, Noun] = {n.id: n for n in (
    # persons (each with a fixed sex)
    Noun("mother", "person", "f"), Noun("father", "person", "m"), Noun("brother", "person", "m"),
    Noun("sister", "person", "f"), Noun("grandmother", "person", "f"), Noun("grandfather", "person", "m"),
    Noun("boy", "person", "m"), Noun("girl", "person", "f"), Noun("man", "person", "m"),
    Noun("woman", "person", "f"), Noun("teacher", "person", "f", "female teacher"),
    Noun("doctor", "person", "m", "male doctor"), Noun("farmer", "person", "m", "male farmer"),
    Noun("student", "person", "f", "female student"), Noun("neighbour", "person", "m", "male neighbour"),
    Noun("friend", "person", "f", "female friend"),
    # animals
    Noun("dog", "animal"), Noun("cat", "animal"), Noun("bird", "animal"), Noun("horse", "animal"),
    Noun("cow", "animal"),
    # food and drink
    Noun("bread", "food"), Noun("apple", "food"), Noun("fish", "food"), Noun("rice", "food"), Noun("egg", "food"),
    Noun("soup", "food"), Noun("cake", "food"), Noun("water", "drink"), Noun("tea", "drink"), Noun("milk", "drink"),
    Noun("coffee", "drink"),
    # things
    Noun("book", "thing"), Noun("letter", "thing"), Noun("newspaper", "thing"), Noun("story", "thing"),
    Noun("song", "thing"), Noun("car", "thing"), Noun("bicycle", "thing"), Noun("door", "thing"),
    Noun("window", "thing"), Noun("table", "thing"), Noun("chair", "thing"), Noun("bag", "thing"),
    Noun("key", "thing"), Noun("phone", "thing"), Noun("computer", "thing"), Noun("ball", "thing"),
    Noun("flower", "thing"), Noun("tree", "thing"), Noun("shirt", "thing"), Noun("picture", "thing"),
    Noun("house", "thing"), Noun("ticket", "thing", gloss="train ticket"),
    # places (used in "in/at the PLACE" and "to the PLACE"; always definite and singular)
    Noun("school", "place"), Noun("market", "place"), Noun("city", "place"), Noun("village", "place"),
    Noun("garden", "place"), Noun("hospital", "place"), Noun("library", "place"), Noun("kitchen", "place"),
    Noun("office", "place"), Noun("park", "place"), Noun("station", "place", gloss="railway station"),
    Noun("shop", "place"), Noun("river", "place", gloss="at/to the river(bank)"), Noun("field", "place"),
)}
PLACES = tuple(n.id for n in NOUNS.values() if n.kind == "place")

ADJECTIVES = ("big", "small", "new", "old", "beautiful", "good", "red", "white", "young", "tired", "happy",
              "hot", "cold", "clean", "expensive")
"""Adjective concepts ('old' = not new for things, elderly for persons; 'hot'/'cold' = temperature)."""

# which adjectives suit which noun kinds (attributive and predicative)
_ADJECTIVES_FOR = {
    "person": ("old", "young", "tired", "happy", "good"),
    "animal": ("big", "small", "old", "young", "beautiful", "white", "tired"),
    "food": ("hot", "cold", "good", "big", "small"),
    "drink": ("hot", "cold", "good"),
    "thing": ("big", "small", "new", "old", "beautiful", "good", "red", "white", "clean", "expensive"),
    "place": ("big", "small", "new", "old", "beautiful", "clean"),
}


@dataclass(frozen=True)
class Verb:
    """A verb concept: who can do it (``subjects``: noun kinds; pronouns count as persons) and what it takes:
    ``objects`` (noun kinds or noun ids of a direct object; empty = intransitive), ``motion`` (takes a destination,
    'to the PLACE')."""

    id: str
    subjects: tuple[str, ...]
    objects: tuple[str, ...] = ()
    motion: bool = False
    gloss: str = ""


_FOOD = ("food",)
VERBS: dict[str, Verb] = {v.id: v for v in (
    Verb("read", ("person",), ("book", "letter", "newspaper", "story")),
    Verb("write", ("person",), ("letter", "book", "story", "song")),
    Verb("eat", ("person", "animal"), _FOOD),
    Verb("drink", ("person", "animal"), ("drink",)),
    Verb("buy", ("person",), ("food", "drink", "thing")),
    Verb("sell", ("person",), ("food", "drink", "book", "car", "bicycle", "flower", "shirt", "picture", "house")),
    Verb("see", ("person", "animal"), ("person", "animal", "thing")),
    Verb("find", ("person", "animal"), ("thing", "animal")),
    Verb("open", ("person",), ("door", "window", "bag", "book", "letter")),
    Verb("close", ("person",), ("door", "window", "bag", "book")),
    Verb("carry", ("person", "animal"), ("bag", "book", "chair", "table", "flower", "fish", "bread", "water")),
    Verb("love", ("person",), ("person", "animal", "flower", "song", "story", "tea", "coffee", "bread")),
    Verb("help", ("person",), ("person",)),
    Verb("call", ("person",), ("person", "animal")),
    Verb("wash", ("person",), ("car", "shirt", "table", "window", "dog", "horse", "apple", "bicycle")),
    Verb("cook", ("person",), ("fish", "rice", "egg", "soup")),
    Verb("sing", ("person", "animal"), ("song",)),
    Verb("draw", ("person",), ("picture", "house", "tree", "flower", "dog", "cat", "horse", "bird")),
    Verb("sleep", ("person", "animal")),
    Verb("work", ("person", "animal")),
    Verb("play", ("person", "animal")),
    Verb("laugh", ("person",)),
    Verb("wait", ("person", "animal")),
    Verb("run", ("person", "animal")),
    Verb("go", ("person", "animal"), motion=True, gloss="go (on foot or otherwise)"),
    Verb("come", ("person", "animal"), motion=True, gloss="come (to the place)"),
    Verb("return", ("person", "animal"), motion=True, gloss="return (to the place)"),
)}

TIMES: dict[str, str] = {
    "yesterday": "past", "last_week": "past", "this_morning": "past",
    "every_day": "present", "often": "present", "now": "present", "in_the_evening": "present",
    "tomorrow": "future", "next_week": "future", "soon": "future",
}
"""Time adverbials and the tense each goes with ('now' = at this moment; 'in_the_evening' = in the evenings,
habitual; 'this_morning' = earlier today)."""


@dataclass(frozen=True)
class Pronoun:
    """A personal pronoun subject or object: ``person`` is one of `PERSONS`."""

    person: str


@dataclass(frozen=True)
class NounPhrase:
    """A noun phrase. ``definite``: 'the X' vs 'a X' (plural indefinite: bare 'Xs'); ``possessor``: a person of
    `PERSONS` ('my X', 'our X'; it makes the phrase definite); ``count``: 2 or 3 ('two Xs', plural, indefinite);
    ``adjective``: one of `ADJECTIVES`, attributive."""

    noun: str
    plural: bool = False
    definite: bool = True
    possessor: str | None = None
    count: int | None = None
    adjective: str | None = None


@dataclass(frozen=True)
class Clause:
    """One clause. ``kind``:

    * ``"action"``: ``subject`` ``verb`` [``object``] [to ``destination``] [in/at ``place``] [``time``];
    * ``"state"``: ``subject`` is ``adjective`` [``time``] (copula; many languages drop it in the present);
    * ``"location"``: ``subject`` is in/at ``place`` [``time``].

    ``tense`` is one of `TENSES` and agrees with ``time``; ``negative`` negates the verb or the copula.
    ``object`` is a `NounPhrase` or, for persons, a `Pronoun` ('sees her')."""

    kind: str
    subject: NounPhrase | Pronoun
    tense: str
    verb: str | None = None
    object: NounPhrase | Pronoun | None = None
    destination: str | None = None
    place: str | None = None
    adjective: str | None = None
    time: str | None = None
    negative: bool = False


@dataclass(frozen=True)
class Sentence:
    """One or two clauses. Two clauses are joined by ``connective`` (one of `CONNECTIVES`); ``question`` (one clause
    only) asks a yes/no question about the clause."""

    clauses: tuple[Clause, ...]
    connective: str | None = None
    question: bool = False


# ---------------------------------------------------------------------------------------------------------------
# The planner
# ---------------------------------------------------------------------------------------------------------------

_PERSONS = tuple(n.id for n in NOUNS.values() if n.kind == "person")
_ANIMALS = tuple(n.id for n in NOUNS.values() if n.kind == "animal")
_COUNTABLE = ("apple", "egg", "cake", "book", "letter", "newspaper", "story", "song", "car", "bicycle", "door",
              "window", "table", "chair", "bag", "key", "phone", "computer", "ball", "flower", "tree", "shirt",
              "picture", "house", "ticket", "dog", "cat", "bird", "horse", "cow", "fish")
_UNPOSSESSED = frozenset({"man", "woman", "boy", "girl"})  # "my man" reads as "my husband" in many languages
_GENRES = {  # genre -> (tense, times that fit it)
    "story": ("past", ("yesterday", "last_week", "this_morning")),
    "routine": ("present", ("every_day", "often", "in_the_evening")),
    "scene": ("present", ("now",)),
    "plan": ("future", ("tomorrow", "next_week", "soon")),
}


@dataclass
class _Cast:
    """Who and where a document is about: the sentences of a document draw most of their nouns from it."""

    people: list[tuple[str, str | None]]  # (noun id, possessor person or None)
    animal: str
    places: list[str]
    tense: str
    times: tuple[str, ...]
    mentioned: set[str] = field(default_factory=set)


def _zipf(rng: random.Random, items: tuple[str, ...] | list[str]) -> str:
    """One of ``items``, the i-th with weight 1/(i+1): word choices follow a Zipf-like law, as in natural text."""
    return rng.choices(items, weights=[1 / (i + 1) for i in range(len(items))])[0]


def _nouns_of(kind_or_ids: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for item in kind_or_ids:
        out += [item] if item in NOUNS else [n.id for n in NOUNS.values() if n.kind == item]
    return out


def _thing_phrase(rng: random.Random, noun: str) -> NounPhrase:
    kind = NOUNS[noun].kind
    countable = noun in _COUNTABLE
    roll = rng.random()
    if countable and roll < 0.12:
        return NounPhrase(noun, plural=True, definite=False, count=rng.choice((2, 3)))
    plural = countable and rng.random() < 0.25
    adjective = _zipf(rng, _ADJECTIVES_FOR[kind]) if rng.random() < 0.3 else None
    if roll < 0.2 and kind in ("thing", "animal"):
        return NounPhrase(noun, plural=plural, possessor=rng.choice(PERSONS), adjective=adjective)
    return NounPhrase(noun, plural=plural, definite=rng.random() < 0.6, adjective=adjective)


def _subject(rng: random.Random, cast: _Cast, kinds: tuple[str, ...]) -> NounPhrase | Pronoun:
    """A subject able to do a verb of subject ``kinds``: a cast member (a pronoun once mentioned), a pronoun or the
    cast's animal."""
    if "animal" in kinds and rng.random() < 0.15:
        return NounPhrase(cast.animal, definite=True, adjective=rng.choice(_ADJECTIVES_FOR["animal"])
                          if rng.random() < 0.2 else None)
    if "person" not in kinds:
        return NounPhrase(cast.animal)
    roll = rng.random()
    if roll < 0.3:
        return Pronoun(rng.choice(("1sg", "2sg", "1pl", "2pl", "3pl")))
    noun, possessor = rng.choice(cast.people)
    if noun in cast.mentioned and roll < 0.55:
        return Pronoun("3sg_f" if NOUNS[noun].sex == "f" else "3sg_m")
    cast.mentioned.add(noun)
    if roll > 0.9:
        return NounPhrase(noun, plural=True, definite=True)
    adjective = rng.choice(_ADJECTIVES_FOR["person"]) if rng.random() < 0.15 else None
    if possessor is not None:
        return NounPhrase(noun, possessor=possessor, adjective=adjective)
    return NounPhrase(noun, definite=True, adjective=adjective)


def _object(rng: random.Random, cast: _Cast, verb: Verb) -> NounPhrase | Pronoun:
    candidates = _nouns_of(verb.objects)
    noun = _zipf(rng, candidates)
    if NOUNS[noun].kind == "person":
        if rng.random() < 0.3:
            return Pronoun(rng.choice(("1sg", "3sg_m", "3sg_f", "1pl", "3pl")))
        person, possessor = rng.choice(cast.people)
        return NounPhrase(person, possessor=possessor) if possessor else NounPhrase(person)
    if NOUNS[noun].kind == "animal" and rng.random() < 0.5:
        return NounPhrase(cast.animal)
    return _thing_phrase(rng, noun)


_STATE_TIMES = {"past": ("yesterday", "this_morning"), "present": ("now",), "future": ("tomorrow", "soon")}


def _clause(rng: random.Random, cast: _Cast, tense: str) -> Clause:
    time = rng.choice(cast.times) if rng.random() < 0.45 else None
    negative = rng.random() < 0.12
    roll = rng.random()
    if roll < 0.18 and time is not None:  # states and locations hold at a moment, not every day
        time = rng.choice(_STATE_TIMES[tense])
    if roll < 0.1:  # state
        subject = _subject(rng, cast, ("person", "animal"))
        kind = NOUNS[subject.noun].kind if isinstance(subject, NounPhrase) else "person"
        return Clause("state", subject, tense, adjective=_zipf(rng, _ADJECTIVES_FOR[kind]), time=time,
                      negative=negative)
    if roll < 0.18:  # location
        return Clause("location", _subject(rng, cast, ("person", "animal")), tense, place=_zipf(rng, cast.places),
                      time=time, negative=negative)
    verb = VERBS[_zipf(rng, tuple(VERBS))]
    subject = _subject(rng, cast, verb.subjects)
    if isinstance(subject, NounPhrase) and NOUNS[subject.noun].kind == "animal" and "animal" not in verb.subjects:
        subject = Pronoun("3sg_m")
    obj = _object(rng, cast, verb) if verb.objects else None
    if isinstance(obj, NounPhrase) and isinstance(subject, NounPhrase) and obj.noun == subject.noun:
        obj = _object(rng, cast, verb)  # "the father called the father": draw again, once
        if isinstance(obj, NounPhrase) and obj.noun == subject.noun:
            obj = Pronoun("3pl")
    destination = _zipf(rng, cast.places) if verb.motion else None
    place = _zipf(rng, cast.places) if not verb.motion and rng.random() < 0.35 else None
    return Clause("action", subject, tense, verb=verb.id, object=obj, destination=destination, place=place,
                  time=time, negative=negative)


def _sentence(rng: random.Random, cast: _Cast) -> Sentence:
    roll = rng.random()
    if roll < 0.1:
        return Sentence((_clause(rng, cast, cast.tense),), question=True)
    if roll < 0.35:
        first, second = _clause(rng, cast, cast.tense), _clause(rng, cast, cast.tense)
        if second.time is not None:  # one time adverbial per sentence
            second = Clause(**{**second.__dict__, "time": None})
        return Sentence((first, second), connective=rng.choice(CONNECTIVES))
    return Sentence((_clause(rng, cast, cast.tense),))


def plan_document(rng: random.Random) -> list[list[Sentence]]:
    """A document: 1-4 paragraphs of 2-6 sentences about one cast of people, an animal and a few places, in one
    genre (a past story, a present routine or scene, a future plan)."""
    genre = rng.choice(tuple(_GENRES))
    tense, times = _GENRES[genre]
    people = rng.sample(_PERSONS, 3)
    cast = _Cast(people=[(noun, None if noun in _UNPOSSESSED else rng.choice((None, None, "1sg", "1pl", "3pl")))
                         for noun in people],
                 animal=rng.choice(_ANIMALS), places=rng.sample(PLACES, 3), tense=tense, times=times)
    return [[_sentence(rng, cast) for _ in range(rng.randint(2, 6))] for _ in range(rng.randint(1, 4))]
