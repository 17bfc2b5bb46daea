"""German realization of the corpus grammar (see ``semantics.py``).

Implements: three genders and plural with nominative/accusative/dative declension of articles, ein-words
(ein/kein/possessives mein...euer/ihr) and attributive adjectives (weak, mixed and strong endings), weak masculine
nouns (den Jungen), dative plural -n, capitalised nouns; present tense with stem-vowel change, Perfekt with
haben/sein (participle clause-final), werden + infinitive future, Präteritum 'war' for the past copula; separable
verbs (kehrt ... zurück); verb-second main clauses (with an optionally fronted time adverbial), verb-first yes/no
questions and verb-final 'weil' clauses; Mittelfeld order (pronoun objects first, definite objects before and
indefinite objects after place adjuncts and nicht); 'kein' for indefinite and bare objects, 'nicht' otherwise;
dative-governing 'helfen'; 'fressen' for animals eating; place prepositions with contractions (im, ins, am, zum,
aufs) and 'nach Hause'/'zu Hause'; measure phrases for counted mass nouns (zwei Tassen Tee).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from .semantics import Clause, NounPhrase, Pronoun, Sentence

LANG = "de"
SCRIPT = "Latin"

# noun id -> (gender m/f/n, singular, plural)
_NOUNS = {
    "mother": ("f", "Mutter", "Mütter"), "father": ("m", "Vater", "Väter"), "brother": ("m", "Bruder", "Brüder"),
    "sister": ("f", "Schwester", "Schwestern"), "grandmother": ("f", "Großmutter", "Großmütter"),
    "grandfather": ("m", "Großvater", "Großväter"), "boy": ("m", "Junge", "Jungen"),
    "girl": ("n", "Mädchen", "Mädchen"), "man": ("m", "Mann", "Männer"), "woman": ("f", "Frau", "Frauen"),
    "teacher": ("f", "Lehrerin", "Lehrerinnen"), "doctor": ("m", "Arzt", "Ärzte"),
    "farmer": ("m", "Bauer", "Bauern"), "student": ("f", "Studentin", "Studentinnen"),
    "neighbour": ("m", "Nachbar", "Nachbarn"), "friend": ("f", "Freundin", "Freundinnen"),
    "dog": ("m", "Hund", "Hunde"), "cat": ("f", "Katze", "Katzen"), "bird": ("m", "Vogel", "Vögel"),
    "horse": ("n", "Pferd", "Pferde"), "cow": ("f", "Kuh", "Kühe"),
    "bread": ("n", "Brot", "Brote"), "apple": ("m", "Apfel", "Äpfel"), "fish": ("m", "Fisch", "Fische"),
    "rice": ("m", "Reis", "Reis"), "egg": ("n", "Ei", "Eier"), "soup": ("f", "Suppe", "Suppen"),
    "cake": ("m", "Kuchen", "Kuchen"), "water": ("n", "Wasser", "Wasser"), "tea": ("m", "Tee", "Tees"),
    "milk": ("f", "Milch", "Milch"), "coffee": ("m", "Kaffee", "Kaffees"),
    "book": ("n", "Buch", "Bücher"), "letter": ("m", "Brief", "Briefe"), "newspaper": ("f", "Zeitung", "Zeitungen"),
    "story": ("f", "Geschichte", "Geschichten"), "song": ("n", "Lied", "Lieder"), "car": ("n", "Auto", "Autos"),
    "bicycle": ("n", "Fahrrad", "Fahrräder"), "door": ("f", "Tür", "Türen"), "window": ("n", "Fenster", "Fenster"),
    "table": ("m", "Tisch", "Tische"), "chair": ("m", "Stuhl", "Stühle"), "bag": ("f", "Tasche", "Taschen"),
    "key": ("m", "Schlüssel", "Schlüssel"), "phone": ("n", "Telefon", "Telefone"),
    "computer": ("m", "Computer", "Computer"), "ball": ("m", "Ball", "Bälle"), "flower": ("f", "Blume", "Blumen"),
    "tree": ("m", "Baum", "Bäume"), "shirt": ("n", "Hemd", "Hemden"), "picture": ("n", "Bild", "Bilder"),
    "house": ("n", "Haus", "Häuser"), "ticket": ("f", "Fahrkarte", "Fahrkarten"),
    "school": ("f", "Schule", "Schulen"), "market": ("m", "Markt", "Märkte"), "city": ("f", "Stadt", "Städte"),
    "village": ("n", "Dorf", "Dörfer"), "garden": ("m", "Garten", "Gärten"),
    "hospital": ("n", "Krankenhaus", "Krankenhäuser"), "library": ("f", "Bibliothek", "Bibliotheken"),
    "kitchen": ("f", "Küche", "Küchen"), "office": ("n", "Büro", "Büros"), "park": ("m", "Park", "Parks"),
    "station": ("m", "Bahnhof", "Bahnhöfe"), "shop": ("m", "Laden", "Läden"), "river": ("m", "Fluss", "Flüsse"),
    "field": ("n", "Feld", "Felder"),
}
_WEAK = {"boy": "Jungen", "farmer": "Bauern", "neighbour": "Nachbarn"}  # weak masculines: acc/dat singular
_MASS = frozenset({"bread", "rice", "water", "tea", "milk", "coffee", "soup", "fish"})  # bare when indefinite
_NO_PLURAL = frozenset({"rice", "water", "tea", "milk", "coffee"})  # 'plural' reads as the mass singular
_MEASURE = {"rice": "Portionen", "water": "Gläser", "tea": "Tassen", "milk": "Gläser", "coffee": "Tassen"}
_ANIMALS = frozenset({"dog", "cat", "bird", "horse", "cow"})

# place id -> (in/at the PLACE, to the PLACE)
_PLACES = {
    "school": ("in der Schule", "in die Schule"), "market": ("auf dem Markt", "zum Markt"),
    "city": ("in der Stadt", "in die Stadt"), "village": ("im Dorf", "ins Dorf"),
    "garden": ("im Garten", "in den Garten"), "hospital": ("im Krankenhaus", "ins Krankenhaus"),
    "library": ("in der Bibliothek", "in die Bibliothek"), "kitchen": ("in der Küche", "in die Küche"),
    "office": ("im Büro", "ins Büro"), "park": ("im Park", "in den Park"), "station": ("am Bahnhof", "zum Bahnhof"),
    "shop": ("im Laden", "in den Laden"), "river": ("am Fluss", "zum Fluss"), "field": ("auf dem Feld", "aufs Feld"),
    "house": ("zu Hause", "nach Hause"),
}

# adjective id -> (predicative form, attributive stem)
_ADJECTIVES = {
    "big": ("groß", "groß"), "small": ("klein", "klein"), "new": ("neu", "neu"), "old": ("alt", "alt"),
    "beautiful": ("schön", "schön"), "good": ("gut", "gut"), "red": ("rot", "rot"), "white": ("weiß", "weiß"),
    "young": ("jung", "jung"), "tired": ("müde", "müd"), "happy": ("glücklich", "glücklich"),
    "hot": ("heiß", "heiß"), "cold": ("kalt", "kalt"), "clean": ("sauber", "sauber"),
    "expensive": ("teuer", "teur"),
}

_SLOTS = ("m", "f", "n", "pl")
_DEFINITE = {"nom": ("der", "die", "das", "die"), "acc": ("den", "die", "das", "die"),
             "dat": ("dem", "der", "dem", "den")}
_EIN_ENDING = {"nom": ("", "e", "", "e"), "acc": ("en", "e", "", "e"), "dat": ("em", "er", "em", "en")}
_WEAK_ADJ = {"nom": ("e", "e", "e", "en"), "acc": ("en", "e", "e", "en"), "dat": ("en", "en", "en", "en")}
_MIXED_ADJ = {"nom": ("er", "e", "es", "en"), "acc": ("en", "e", "es", "en"), "dat": ("en", "en", "en", "en")}
_STRONG_ADJ = {"nom": ("er", "e", "es", "e"), "acc": ("en", "e", "es", "e"), "dat": ("em", "er", "em", "en")}

_POSSESSIVE = {"1sg": "mein", "2sg": "dein", "3sg_m": "sein", "3sg_f": "ihr", "1pl": "unser", "2pl": "euer",
               "3pl": "ihr"}
_NUMBER = {2: "zwei", 3: "drei"}
_PRONOUN = {"nom": {"1sg": "ich", "2sg": "du", "3sg_m": "er", "3sg_f": "sie", "1pl": "wir", "2pl": "ihr",
                    "3pl": "sie"},
            "acc": {"1sg": "mich", "2sg": "dich", "3sg_m": "ihn", "3sg_f": "sie", "1pl": "uns", "2pl": "euch",
                    "3pl": "sie"},
            "dat": {"1sg": "mir", "2sg": "dir", "3sg_m": "ihm", "3sg_f": "ihr", "1pl": "uns", "2pl": "euch",
                    "3pl": "ihnen"}}
_PERSON_SLOT = {"1sg": 0, "2sg": 1, "3sg_m": 2, "3sg_f": 2, "1pl": 3, "2pl": 4, "3pl": 5}

# present forms: ich du er/sie wir ihr sie
_HABEN = ("habe", "hast", "hat", "haben", "habt", "haben")
_SEIN = ("bin", "bist", "ist", "sind", "seid", "sind")
_WERDEN = ("werde", "wirst", "wird", "werden", "werdet", "werden")
_WAR = ("war", "warst", "war", "waren", "wart", "waren")

# verb id -> (infinitive, present forms or None for regular, participle, auxiliary, separable prefix, object case)
_VERBS = {
    "read": ("lesen", "lese liest liest lesen lest lesen", "gelesen", "haben", "", "acc"),
    "write": ("schreiben", None, "geschrieben", "haben", "", "acc"),
    "eat": ("essen", "esse isst isst essen esst essen", "gegessen", "haben", "", "acc"),
    "eat_animal": ("fressen", "fresse frisst frisst fressen fresst fressen", "gefressen", "haben", "", "acc"),
    "drink": ("trinken", None, "getrunken", "haben", "", "acc"),
    "buy": ("kaufen", None, "gekauft", "haben", "", "acc"),
    "sell": ("verkaufen", None, "verkauft", "haben", "", "acc"),
    "see": ("sehen", "sehe siehst sieht sehen seht sehen", "gesehen", "haben", "", "acc"),
    "find": ("finden", "finde findest findet finden findet finden", "gefunden", "haben", "", "acc"),
    "open": ("öffnen", "öffne öffnest öffnet öffnen öffnet öffnen", "geöffnet", "haben", "", "acc"),
    "close": ("schließen", "schließe schließt schließt schließen schließt schließen", "geschlossen", "haben", "",
              "acc"),
    "carry": ("tragen", "trage trägst trägt tragen tragt tragen", "getragen", "haben", "", "acc"),
    "love": ("lieben", None, "geliebt", "haben", "", "acc"),
    "help": ("helfen", "helfe hilfst hilft helfen helft helfen", "geholfen", "haben", "", "dat"),
    "call": ("rufen", None, "gerufen", "haben", "", "acc"),
    "wash": ("waschen", "wasche wäschst wäscht waschen wascht waschen", "gewaschen", "haben", "", "acc"),
    "cook": ("kochen", None, "gekocht", "haben", "", "acc"),
    "sing": ("singen", None, "gesungen", "haben", "", "acc"),
    "draw": ("zeichnen", "zeichne zeichnest zeichnet zeichnen zeichnet zeichnen", "gezeichnet", "haben", "",
             "acc"),
    "sleep": ("schlafen", "schlafe schläfst schläft schlafen schlaft schlafen", "geschlafen", "haben", "", "acc"),
    "work": ("arbeiten", "arbeite arbeitest arbeitet arbeiten arbeitet arbeiten", "gearbeitet", "haben", "",
             "acc"),
    "play": ("spielen", None, "gespielt", "haben", "", "acc"),
    "laugh": ("lachen", None, "gelacht", "haben", "", "acc"),
    "wait": ("warten", "warte wartest wartet warten wartet warten", "gewartet", "haben", "", "acc"),
    "run": ("laufen", "laufe läufst läuft laufen lauft laufen", "gelaufen", "sein", "", "acc"),
    "go": ("gehen", None, "gegangen", "sein", "", "acc"),
    "come": ("kommen", None, "gekommen", "sein", "", "acc"),
    "return": ("kehren", None, "zurückgekehrt", "sein", "zurück", "acc"),
}

_TIMES = {"yesterday": "gestern", "last_week": "letzte Woche", "this_morning": "heute Morgen",
          "every_day": "jeden Tag", "often": "oft", "now": "jetzt", "in_the_evening": "abends",
          "tomorrow": "morgen", "next_week": "nächste Woche", "soon": "bald"}
_FRONTABLE = frozenset({"yesterday", "last_week", "this_morning", "every_day", "in_the_evening", "tomorrow",
                        "next_week"})
_SCOPE_TIMES = frozenset({"often", "every_day"})  # negated as 'nicht oft', 'nicht jeden Tag'
_CONNECTIVE = {"and": " und ", "but": ", aber ", "because": ", weil "}


# ---------------------------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------------------------

def _noun_form(noun: str, plural: bool, case: str) -> str:
    _, singular, plural_form = _NOUNS[noun]
    if not plural:
        return _WEAK.get(noun, singular) if case != "nom" else singular
    if case == "dat" and not plural_form.endswith(("n", "s")):
        return plural_form + "n"
    return plural_form


def _adjective(adjective: str | None, ending: str) -> list[str]:
    return [] if adjective is None else [_ADJECTIVES[adjective][1] + ending]


def _ein_word(stem: str, ending: str) -> str:
    if stem == "euer" and ending:
        return "eur" + ending
    return stem + ending


def _is_plural(np: NounPhrase) -> bool:
    if np.count:
        return True
    return np.plural and np.noun not in _NO_PLURAL


def _indefinite_object(np: NounPhrase) -> bool:
    """An indefinite, uncounted phrase: negated with 'kein' rather than 'nicht'."""
    return isinstance(np, NounPhrase) and not np.definite and not np.possessor and not np.count


def _noun_phrase(np: NounPhrase | Pronoun, case: str, negated: bool = False) -> str:
    """The phrase in ``case``; ``negated``: an indefinite phrase takes 'kein'."""
    if isinstance(np, Pronoun):
        return _PRONOUN[case][np.person]
    gender = _NOUNS[np.noun][0]
    plural = _is_plural(np)
    slot = _SLOTS.index("pl" if plural else gender)
    if np.count and np.noun in _NO_PLURAL:  # zwei Tassen heißer Tee: the mass noun stands in apposition
        strong = _STRONG_ADJ[case][_SLOTS.index(gender)]
        return " ".join([_NUMBER[np.count], _MEASURE[np.noun], *_adjective(np.adjective, strong),
                         _NOUNS[np.noun][1]])
    noun = _noun_form(np.noun, plural, case)
    if np.count:
        return " ".join([_NUMBER[np.count], *_adjective(np.adjective, _STRONG_ADJ[case][slot]), noun])
    if np.possessor or (not np.definite and negated):
        stem = _POSSESSIVE[np.possessor] if np.possessor else "kein"
        return " ".join([_ein_word(stem, _EIN_ENDING[case][slot]),
                         *_adjective(np.adjective, _MIXED_ADJ[case][slot]), noun])
    if np.definite:
        return " ".join([_DEFINITE[case][slot], *_adjective(np.adjective, _WEAK_ADJ[case][slot]), noun])
    if plural or np.noun in _MASS:
        return " ".join([*_adjective(np.adjective, _STRONG_ADJ[case][slot]), noun])
    return " ".join(["ein" + _EIN_ENDING[case][slot], *_adjective(np.adjective, _MIXED_ADJ[case][slot]), noun])


# ---------------------------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------------------------

def _slot(subject: NounPhrase | Pronoun) -> int:
    if isinstance(subject, Pronoun):
        return _PERSON_SLOT[subject.person]
    return 5 if _is_plural(subject) else 2


def _present(verb: str, slot: int) -> str:
    infinitive, forms, *_ = _VERBS[verb]
    if forms is not None:
        return forms.split()[slot]
    stem = infinitive[:-2]
    return (stem + "e", stem + "st", stem + "t", infinitive, stem + "t", infinitive)[slot]


def _verb_id(clause: Clause) -> str:
    animal = isinstance(clause.subject, NounPhrase) and clause.subject.noun in _ANIMALS
    return "eat_animal" if clause.verb == "eat" and animal else clause.verb


def _fronted_time(clause: Clause) -> bool:
    """Whether a main clause starts with its time adverbial (deterministic, about half of the frontable ones)."""
    if clause.time not in _FRONTABLE or (clause.negative and clause.time in _SCOPE_TIMES):
        return False
    return zlib.crc32(repr(clause).encode()) % 2 == 0


def _parts(clause: Clause, with_time: bool) -> tuple[str, list[str], list[str]]:
    """(finite verb, Mittelfeld without the subject, clause-final verb forms)."""
    slot = _slot(clause.subject)
    time = [_TIMES[clause.time]] if with_time and clause.time is not None else []
    negation = ["nicht"] if clause.negative else []
    if clause.negative and time and clause.time in _SCOPE_TIMES:
        negation, time = ["nicht", *time], []
    if clause.kind in ("state", "location"):
        predicate = (_ADJECTIVES[clause.adjective][0] if clause.kind == "state" else _PLACES[clause.place][0])
        middle = [*time, *negation, predicate]
        if clause.tense == "past":
            return _WAR[slot], middle, []
        if clause.tense == "future":
            return _WERDEN[slot], middle, ["sein"]
        return _SEIN[slot], middle, []

    verb = _verb_id(clause)
    infinitive, _, participle, auxiliary, prefix, object_case = _VERBS[verb]
    if clause.tense == "past":
        finite, final = (_HABEN if auxiliary == "haben" else _SEIN)[slot], [participle]
    elif clause.tense == "future":
        finite, final = _WERDEN[slot], [prefix + infinitive]
    else:
        finite, final = _present(verb, slot), [prefix] if prefix else []

    obj = clause.object
    pronoun, definite, indefinite = [], [], []  # objects: before the time / before the place / after nicht
    if isinstance(obj, Pronoun):
        pronoun.append(_noun_phrase(obj, object_case))
    elif obj is not None:
        kein = negation == ["nicht"] and _indefinite_object(obj)
        phrase = _noun_phrase(obj, object_case, negated=kein)
        if obj.definite or obj.possessor:
            definite.append(phrase)
        elif obj.count and negation == ["nicht"]:  # nicht zwei Bücher
            negation, indefinite = [], ["nicht", phrase]
        else:
            negation, indefinite = ([] if kein else negation), [phrase]
    place = [_PLACES[clause.place][0]] if clause.place else []
    destination = [_PLACES[clause.destination][1]] if clause.destination else []
    middle = [*pronoun, *time, *definite, *place, *negation, *indefinite, *destination]
    return finite, middle, final


def _mittelfeld(clause: Clause, middle: list[str]) -> list[str]:
    """The subject joined to the Mittelfeld: an unstressed object pronoun goes before a full noun phrase subject
    (Gestern hat ihn der Lehrer gesehen)."""
    subject = _noun_phrase(clause.subject, "nom")
    if isinstance(clause.object, Pronoun) and isinstance(clause.subject, NounPhrase):
        return [middle[0], subject, *middle[1:]]
    return [subject, *middle]


def _main(clause: Clause) -> str:
    if _fronted_time(clause):
        finite, middle, final = _parts(clause, with_time=False)
        return " ".join([_TIMES[clause.time], finite, *_mittelfeld(clause, middle), *final])
    finite, middle, final = _parts(clause, with_time=True)
    return " ".join([_noun_phrase(clause.subject, "nom"), finite, *middle, *final])


def _question(clause: Clause) -> str:
    finite, middle, final = _parts(clause, with_time=True)
    return " ".join([finite, *_mittelfeld(clause, middle), *final])


def _subordinate(clause: Clause) -> str:
    finite, middle, final = _parts(clause, with_time=True)
    if clause.kind == "action" and clause.tense == "present" and _VERBS[clause.verb][4]:
        final, finite = [], final[0] + finite  # the separable prefix rejoins: weil er zurückkehrt
    return " ".join([*_mittelfeld(clause, middle), *final, finite])


def realize(sentence: Sentence) -> str:
    if sentence.question:
        text = _question(sentence.clauses[0]) + "?"
    elif len(sentence.clauses) == 2:
        first, second = sentence.clauses
        tail = _subordinate(second) if sentence.connective == "because" else _main(second)
        text = _main(first) + _CONNECTIVE[sentence.connective] + tail + "."
    else:
        text = _main(sentence.clauses[0]) + "."
    return text[0].upper() + text[1:]


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
