"""French realization of the corpus grammar (see ``semantics.py``): grammatical gender and number, definite,
indefinite and partitive articles (le/la/l'/les, un/une/des, du/de la/de l'), contractions au/aux/du/des, elision
(j', l', n', d', qu', m', t'), adjective agreement and position (bel/nouvel/vieil before vowels), possessives, present,
passé composé with avoir/être (participle agreement with an être subject or a preceding direct clitic), futur simple,
imparfait of the copula for past states, ne…pas and 'pas de', preverbal clitic object pronouns, 'est-ce que'
questions and the French space before '?'."""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import Clause, NounPhrase, Pronoun, Sentence

LANG = "fr"
SCRIPT = "Latin"

_VOWELS = "aeiouyhàâäéèêëîïôöûùüœæ"  # every h-word of this lexicon has a mute h (l'homme, l'hôpital, l'histoire)

# noun id -> (singular, gender, plural if irregular)
_NOUNS = {
    "mother": ("mère", "f"), "father": ("père", "m"), "brother": ("frère", "m"), "sister": ("sœur", "f"),
    "grandmother": ("grand-mère", "f", "grands-mères"), "grandfather": ("grand-père", "m", "grands-pères"),
    "boy": ("garçon", "m"), "girl": ("fille", "f"), "man": ("homme", "m"), "woman": ("femme", "f"),
    "teacher": ("institutrice", "f"), "doctor": ("médecin", "m"), "farmer": ("fermier", "m"),
    "student": ("étudiante", "f"), "neighbour": ("voisin", "m"), "friend": ("amie", "f"),
    "dog": ("chien", "m"), "cat": ("chat", "m"), "bird": ("oiseau", "m"), "horse": ("cheval", "m", "chevaux"),
    "cow": ("vache", "f"),
    "bread": ("pain", "m"), "apple": ("pomme", "f"), "fish": ("poisson", "m"), "rice": ("riz", "m", "riz"),
    "egg": ("œuf", "m"), "soup": ("soupe", "f"), "cake": ("gâteau", "m"), "water": ("eau", "f", "eaux"),
    "tea": ("thé", "m"), "milk": ("lait", "m"), "coffee": ("café", "m"),
    "book": ("livre", "m"), "letter": ("lettre", "f"), "newspaper": ("journal", "m", "journaux"),
    "story": ("histoire", "f"), "song": ("chanson", "f"), "car": ("voiture", "f"), "bicycle": ("vélo", "m"),
    "door": ("porte", "f"), "window": ("fenêtre", "f"), "table": ("table", "f"), "chair": ("chaise", "f"),
    "bag": ("sac", "m"), "key": ("clé", "f"), "phone": ("téléphone", "m"), "computer": ("ordinateur", "m"),
    "ball": ("ballon", "m"), "flower": ("fleur", "f"), "tree": ("arbre", "m"), "shirt": ("chemise", "f"),
    "picture": ("image", "f"), "house": ("maison", "f"), "ticket": ("billet", "m"),
    "school": ("école", "f"), "market": ("marché", "m"), "city": ("ville", "f"), "village": ("village", "m"),
    "garden": ("jardin", "m"), "hospital": ("hôpital", "m", "hôpitaux"), "library": ("bibliothèque", "f"),
    "kitchen": ("cuisine", "f"), "office": ("bureau", "m"), "park": ("parc", "m"), "station": ("gare", "f"),
    "shop": ("magasin", "m"), "river": ("rivière", "f"), "field": ("champ", "m"),
}
# mass nouns take the partitive (du pain, de l'eau); all but 'fish' stay singular like their English glosses
_MASS = frozenset({"bread", "rice", "water", "tea", "milk", "coffee", "soup", "fish"})
_INVARIABLE_MASS = _MASS - {"fish"}

# adjective id -> (m sg, f sg, m pl, f pl, m sg before a vowel, placed before the noun)
_ADJECTIVES = {
    "big": ("grand", "grande", "grands", "grandes", "", True),
    "small": ("petit", "petite", "petits", "petites", "", True),
    "new": ("nouveau", "nouvelle", "nouveaux", "nouvelles", "nouvel", True),
    "old": ("vieux", "vieille", "vieux", "vieilles", "vieil", True),
    "beautiful": ("beau", "belle", "beaux", "belles", "bel", True),
    "good": ("bon", "bonne", "bons", "bonnes", "", True),
    "young": ("jeune", "jeune", "jeunes", "jeunes", "", True),
    "red": ("rouge", "rouge", "rouges", "rouges", "", False),
    "white": ("blanc", "blanche", "blancs", "blanches", "", False),
    "tired": ("fatigué", "fatiguée", "fatigués", "fatiguées", "", False),
    "happy": ("heureux", "heureuse", "heureux", "heureuses", "", False),
    "hot": ("chaud", "chaude", "chauds", "chaudes", "", False),
    "cold": ("froid", "froide", "froids", "froides", "", False),
    "clean": ("propre", "propre", "propres", "propres", "", False),
    "expensive": ("cher", "chère", "chers", "chères", "", False),
}
# (adjective, noun kind) -> the word that suits better: a good person is 'gentil', a big apple is 'grosse'
_ADJECTIVE_FOR_KIND = {
    ("good", "person"): ("gentil", "gentille", "gentils", "gentilles", "", True),
    ("big", "food"): ("gros", "grosse", "gros", "grosses", "", True),
}
_KIND = {**{n: "person" for n in ("mother", "father", "brother", "sister", "grandmother", "grandfather", "boy",
                                  "girl", "man", "woman", "teacher", "doctor", "farmer", "student", "neighbour",
                                  "friend")},
         **{n: "food" for n in ("bread", "apple", "fish", "rice", "egg", "soup", "cake")}}

_NUMBER = {2: "deux", 3: "trois"}
# person -> (subject pronoun, direct object clitic, person index 0-5, gender, plural)
_PERSONS = {
    "1sg": ("je", "me", 0, "m", False), "2sg": ("tu", "te", 1, "m", False), "3sg_m": ("il", "le", 2, "m", False),
    "3sg_f": ("elle", "la", 2, "f", False), "1pl": ("nous", "nous", 3, "m", True),
    "2pl": ("vous", "vous", 4, "m", True), "3pl": ("ils", "les", 5, "m", True),
}
# possessor -> (m sg, f sg, pl); the m sg form is also used before a vowel-initial feminine (mon amie)
_POSSESSIVE = {"1sg": ("mon", "ma", "mes"), "2sg": ("ton", "ta", "tes"), "3sg_m": ("son", "sa", "ses"),
               "3sg_f": ("son", "sa", "ses"), "1pl": ("notre", "notre", "nos"), "2pl": ("votre", "votre", "vos"),
               "3pl": ("leur", "leur", "leurs")}


def _forms(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _er(infinitive: str) -> tuple[tuple[str, ...], str, str, str]:
    """A regular -er verb: (present forms, future stem, past participle, auxiliary)."""
    stem = infinitive[:-2]
    nous = stem + ("eons" if stem.endswith("g") else "ons")
    return (stem + "e", stem + "es", stem + "e", nous, stem + "ez", stem + "ent"), infinitive, stem + "é", "avoir"


# verb id -> (present je/tu/il/nous/vous/ils, future stem, past participle, auxiliary)
_VERBS = {
    "read": (_forms("lis lis lit lisons lisez lisent"), "lir", "lu", "avoir"),
    "write": (_forms("écris écris écrit écrivons écrivez écrivent"), "écrir", "écrit", "avoir"),
    "eat": _er("manger"),
    "drink": (_forms("bois bois boit buvons buvez boivent"), "boir", "bu", "avoir"),
    "buy": (_forms("achète achètes achète achetons achetez achètent"), "achèter", "acheté", "avoir"),
    "sell": (_forms("vends vends vend vendons vendez vendent"), "vendr", "vendu", "avoir"),
    "see": (_forms("vois vois voit voyons voyez voient"), "verr", "vu", "avoir"),
    "find": _er("trouver"),
    "open": (_forms("ouvre ouvres ouvre ouvrons ouvrez ouvrent"), "ouvrir", "ouvert", "avoir"),
    "close": _er("fermer"),
    "carry": _er("porter"),
    "love": _er("aimer"),
    "help": _er("aider"),
    "call": (_forms("appelle appelles appelle appelons appelez appellent"), "appeller", "appelé", "avoir"),
    "wash": _er("laver"),
    "cook": _er("cuisiner"),
    "sing": _er("chanter"),
    "draw": _er("dessiner"),
    "sleep": (_forms("dors dors dort dormons dormez dorment"), "dormir", "dormi", "avoir"),
    "work": _er("travailler"),
    "play": _er("jouer"),
    "laugh": (_forms("ris ris rit rions riez rient"), "rir", "ri", "avoir"),
    "wait": (_forms("attends attends attend attendons attendez attendent"), "attendr", "attendu", "avoir"),
    "run": (_forms("cours cours court courons courez courent"), "courr", "couru", "avoir"),
    "go": (_forms("vais vas va allons allez vont"), "ir", "allé", "être"),
    "come": (_forms("viens viens vient venons venez viennent"), "viendr", "venu", "être"),
    "return": ((*_er("retourner")[:3], "être")),
    "return_home": ((*_er("rentrer")[:3], "être")),
}
_FUTURE_ENDINGS = ("ai", "as", "a", "ons", "ez", "ont")
_AVOIR = _forms("ai as a avons avez ont")
_ETRE = {"present": _forms("suis es est sommes êtes sont"), "past": _forms("étais étais était étions étiez étaient"),
         "future": _forms("serai seras sera serons serez seront")}

# place -> (preposition, noun is plural) for 'in/at the PLACE'; _TO overrides it for 'to the PLACE'
_AT = {"school": ("à", False), "market": ("à", False), "city": ("en", False), "village": ("à", False),
       "garden": ("dans", False), "hospital": ("à", False), "library": ("à", False), "kitchen": ("dans", False),
       "office": ("à", False), "park": ("à", False), "station": ("à", False), "shop": ("à", False),
       "river": ("au bord de", False), "field": ("dans", True), "house": ("à", False)}
_TO = {"garden": ("à", False), "river": ("à", False), "field": ("à", True)}

_TIMES = {"yesterday": "hier", "last_week": "la semaine dernière", "this_morning": "ce matin",
          "every_day": "tous les jours", "often": "souvent", "now": "maintenant", "in_the_evening": "le soir",
          "tomorrow": "demain", "next_week": "la semaine prochaine", "soon": "bientôt"}
_AFTER_VERB_TIMES = frozenset({"often", "soon"})  # short adverbs that follow the finite verb (and 'pas')
_CONNECTIVE = {"and": "et", "but": ", mais", "because": "parce que"}
_ELIDING = {"je": "j'", "me": "m'", "te": "t'", "le": "l'", "la": "l'", "ne": "n'", "de": "d'", "que": "qu'"}


def _vowel(word: str) -> bool:
    return word[:1].lower() in _VOWELS


# ---------------------------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------------------------

def _plural(noun: NounPhrase) -> bool:
    return bool(noun.count) or (noun.plural and noun.noun not in _INVARIABLE_MASS)


def _gender(noun: NounPhrase | Pronoun) -> str:
    return _PERSONS[noun.person][3] if isinstance(noun, Pronoun) else _NOUNS[noun.noun][1]


def _noun_form(noun: str, plural: bool) -> str:
    entry = _NOUNS[noun]
    if not plural:
        return entry[0]
    if len(entry) > 2:
        return entry[2]
    word = entry[0]
    if word.endswith(("s", "x", "z")):
        return word
    return word + ("x" if word.endswith(("eau", "eu")) else "s")


def _adjective(adjective: str, kind: str, gender: str, plural: bool, following: str = "") -> tuple[str, bool]:
    """(agreed form, placed before the noun); ``following`` is the word after the adjective if it goes first."""
    m, f, mpl, fpl, m_vowel, before = _ADJECTIVE_FOR_KIND.get((adjective, kind), _ADJECTIVES[adjective])
    if plural:
        return (fpl if gender == "f" else mpl), before
    if gender == "f":
        return f, before
    return (m_vowel if m_vowel and before and _vowel(following) else m), before


def _definite(gender: str, plural: bool, following: str, preposition: str = "") -> str:
    """The definite article with an optional preposition: 'au', 'aux', 'du', 'des', 'à l'', 'de la', 'dans les'…"""
    article = "les" if plural else "l'" if _vowel(following) else "le" if gender == "m" else "la"
    last = preposition.split()[-1] if preposition else ""
    if last in ("à", "de") and article in ("le", "les"):
        contracted = {("à", "le"): "au", ("à", "les"): "aux", ("de", "le"): "du", ("de", "les"): "des"}
        article = " ".join([*preposition.split()[:-1], contracted[last, article]])
    elif preposition:
        article = f"{preposition} {article}"
    return article


def _attach(determiner: str, words: list[str]) -> str:
    text = " ".join(words)
    return determiner + text if determiner.endswith("'") else f"{determiner} {text}"


def _noun_phrase(np: NounPhrase, negated: bool = False, generic: bool = False) -> str:
    """A full noun phrase. ``negated``: object of a negated verb ('pas de'); ``generic``: object of 'aimer', which
    takes the definite article for a kind (j'aime le thé, il aime les fleurs)."""
    plural = _plural(np)
    gender = _gender(np)
    head = _noun_form(np.noun, plural)
    words = [head]
    if np.adjective is not None:
        form, before = _adjective(np.adjective, _KIND.get(np.noun, ""), gender, plural, head)
        words = [form, head] if before else [head, form]
    first = words[0]
    pre_adjective = np.adjective is not None and words[0] != head
    if np.count:
        return " ".join([_NUMBER[np.count], *words])
    if np.possessor:
        m, f, pl = _POSSESSIVE[np.possessor]
        return _attach(pl if plural else m if gender == "m" or _vowel(first) else f, words)
    indefinite_plural = plural or np.noun in _MASS
    if np.definite or (generic and indefinite_plural):
        return _attach(_definite(gender, plural, first), words)
    if negated:
        return _attach("de", words)
    if np.noun in _MASS and not plural:
        return _attach(_definite(gender, False, first, "de"), words)
    if plural:
        return _attach("de" if pre_adjective else "des", words)
    return _attach("un" if gender == "m" else "une", words)


def _place(place: str, destination: bool = False) -> str:
    if place == "city":
        return "en ville"
    preposition, plural = (_TO.get(place) if destination else None) or _AT[place]
    word = _noun_form(place, plural)
    return _attach(_definite(_NOUNS[place][1], plural, word, preposition), [word])


# ---------------------------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------------------------

def _subject(subject: NounPhrase | Pronoun) -> tuple[str, int, str, bool]:
    """(subject words, person index 0-5, gender, plural)."""
    if isinstance(subject, Pronoun):
        word, _, index, gender, plural = _PERSONS[subject.person]
        return word, index, gender, plural
    plural = _plural(subject)
    return _noun_phrase(subject), 5 if plural else 2, _gender(subject), plural


def _agree(participle: str, gender: str, plural: bool) -> str:
    if gender == "f":
        participle += "e"
    if plural and not participle.endswith("s"):
        participle += "s"
    return participle


def _time_words(clause: Clause) -> tuple[list[str], list[str]]:
    """(adverb right after the finite verb, adverbial at the end of the clause)."""
    if clause.time is None:
        return [], []
    word = _TIMES[clause.time]
    return ([word], []) if clause.time in _AFTER_VERB_TIMES else ([], [word])


def _clause(clause: Clause) -> str:
    subject, index, gender, plural = _subject(clause.subject)
    after_verb, at_end = _time_words(clause)
    clitic: list[str] = []
    complements: list[str] = []
    participle = ""
    if clause.kind in ("state", "location"):
        finite = _ETRE[clause.tense][index]
        if clause.kind == "state":
            kind = "person" if isinstance(clause.subject, Pronoun) else _KIND.get(clause.subject.noun, "")
            complements.append(_adjective(clause.adjective, kind, gender, plural)[0])
        else:
            complements.append(_place(clause.place))
    else:
        verb = clause.verb
        if verb == "return" and clause.destination == "house":
            verb = "return_home"
        present, future, participle, auxiliary = _VERBS[verb]
        obj = clause.object
        agreement = None  # (gender, plural) the past participle agrees with
        if isinstance(obj, Pronoun):
            clitic.append(_PERSONS[obj.person][1])
            if isinstance(clause.subject, Pronoun) and obj.person == clause.subject.person \
                    and obj.person not in ("3sg_m", "3sg_f", "3pl"):
                auxiliary = "être"  # a reflexive (je me vois, nous nous sommes aidés)
            else:
                agreement = (_gender(obj), _PERSONS[obj.person][4])
        elif obj is not None:
            complements.append(_noun_phrase(obj, negated=clause.negative, generic=verb == "love"))
        if auxiliary == "être":
            agreement = (gender, plural)
        if clause.tense == "present":
            finite, participle = present[index], ""
        elif clause.tense == "future":
            finite, participle = future + _FUTURE_ENDINGS[index], ""
        else:
            finite = (_ETRE["present"] if auxiliary == "être" else _AVOIR)[index]
            if agreement is not None:
                participle = _agree(participle, *agreement)
        if clause.destination is not None:
            complements.append(_place(clause.destination, destination=True))
        if clause.place is not None:
            complements.append(_place(clause.place))
    words = [subject]
    if clause.negative:
        words += ["ne", *clitic, finite, "pas"]
    else:
        words += [*clitic, finite]
    words += after_verb
    if participle:
        words.append(participle)
    return " ".join([*words, *complements, *at_end])


def _elide(text: str) -> str:
    """je aime -> j'aime, ne a -> n'a, la ai -> l'ai, que il -> qu'il, de eau -> d'eau."""
    words = text.split(" ")
    out: list[str] = []
    for i, word in enumerate(words):
        if out and out[-1].endswith("'"):
            out[-1] += word
            continue
        if word.lower() in _ELIDING and i + 1 < len(words) and _vowel(words[i + 1]):
            word = word[0] + _ELIDING[word.lower()][1:]
        out.append(word)
    return " ".join(out)


def realize(sentence: Sentence) -> str:
    if sentence.question:
        text = f"est-ce que {_clause(sentence.clauses[0])} ?"
    elif len(sentence.clauses) == 2:
        first, second = (_clause(c) for c in sentence.clauses)
        connective = _CONNECTIVE[sentence.connective]
        text = f"{first}{connective if connective.startswith(',') else ' ' + connective} {second}."
    else:
        text = _clause(sentence.clauses[0]) + "."
    text = _elide(text)
    return text[0].upper() + text[1:]


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
