"""Swahili realization of the corpus grammar (see ``semantics.py``).

Bantu noun-class grammar: nouns in classes 1/2, 3/4, 5/6, 7/8, 9/10 and 11/10 (animates and kinship nouns of
classes 9/10 take class-1/2 agreement, kinship nouns take class-9/10 possessives: *mama yangu*); subject concords
per person and class; tense markers -li- (past), -na- (present), -ta- (future) and hu- (habitual, with *kila siku*,
*mara kwa mara*, *wakati wa jioni*); negatives ha-/si-/hatu-... with -ku- (past), -ta- (future) and final -i
(present); object concords for animate and definite objects (reflexive -ji-); monosyllabic stems and kwenda keeping
ku- (*anakula*, *alikwenda*); adjective, possessive and numeral concord; the copula *ni*/*si*, *-likuwa*,
*-takuwa*, *huwa*; locative *-ko* and *-ni* (*yuko sokoni*, *alikwenda sokoni*) and *katika* for place adjuncts
(*alisoma katika maktaba*); *kuwa na furaha* 'be happy' and perfect *-me-* 'be tired'; *Je, ...?* questions; *na*,
*lakini*, *kwa sababu* between clauses. Subject pronouns are dropped except before *ni*/*si* and habitual hu-.
"""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import NOUNS, Clause, NounPhrase, Pronoun, Sentence

LANG = "sw"
SCRIPT = "Latin"

# --------------------------------------------------------------------------------------------------- lexicon
# noun -> (singular, plural, agreement class singular, plural, flags); "kin": class-9/10 possessive and 'akina'
# plural; "mass": no plural, counted in containers; "no_om": never cross-referenced by an object concord
_NOUNS: dict[str, tuple[str, str, str, str, str]] = {
    "mother": ("mama", "mama", "1", "2", "kin"), "father": ("baba", "baba", "1", "2", "kin"),
    "brother": ("kaka", "kaka", "1", "2", "kin"), "sister": ("dada", "dada", "1", "2", "kin"),
    "grandmother": ("bibi", "bibi", "1", "2", "kin"), "grandfather": ("babu", "babu", "1", "2", "kin"),
    "boy": ("mtoto wa kiume", "watoto wa kiume", "1", "2", ""),
    "girl": ("mtoto wa kike", "watoto wa kike", "1", "2", ""),
    "man": ("mwanamume", "wanaume", "1", "2", ""), "woman": ("mwanamke", "wanawake", "1", "2", ""),
    "teacher": ("mwalimu", "walimu", "1", "2", ""), "doctor": ("daktari", "madaktari", "1", "2", ""),
    "farmer": ("mkulima", "wakulima", "1", "2", ""), "student": ("mwanafunzi", "wanafunzi", "1", "2", ""),
    "neighbour": ("jirani", "majirani", "1", "2", ""), "friend": ("rafiki", "marafiki", "1", "2", "kin"),
    "dog": ("mbwa", "mbwa", "1", "2", ""), "cat": ("paka", "paka", "1", "2", ""),
    "bird": ("ndege", "ndege", "1", "2", ""), "horse": ("farasi", "farasi", "1", "2", ""),
    "cow": ("ng'ombe", "ng'ombe", "1", "2", ""),
    "bread": ("mkate", "mikate", "3", "4", ""), "apple": ("tufaha", "matufaha", "5", "6", ""),
    "fish": ("samaki", "samaki", "1", "2", "no_om"), "rice": ("wali", "wali", "11", "11", "mass"),
    "egg": ("yai", "mayai", "5", "6", ""), "soup": ("supu", "supu", "9", "9", "mass"),
    "cake": ("keki", "keki", "9", "10", ""), "water": ("maji", "maji", "6", "6", "mass"),
    "tea": ("chai", "chai", "9", "9", "mass"), "milk": ("maziwa", "maziwa", "6", "6", "mass"),
    "coffee": ("kahawa", "kahawa", "9", "9", "mass"),
    "book": ("kitabu", "vitabu", "7", "8", ""), "letter": ("barua", "barua", "9", "10", ""),
    "newspaper": ("gazeti", "magazeti", "5", "6", ""), "story": ("hadithi", "hadithi", "9", "10", ""),
    "song": ("wimbo", "nyimbo", "11", "10", ""), "car": ("gari", "magari", "5", "6", ""),
    "bicycle": ("baiskeli", "baiskeli", "9", "10", ""), "door": ("mlango", "milango", "3", "4", ""),
    "window": ("dirisha", "madirisha", "5", "6", ""), "table": ("meza", "meza", "9", "10", ""),
    "chair": ("kiti", "viti", "7", "8", ""), "bag": ("mfuko", "mifuko", "3", "4", ""),
    "key": ("ufunguo", "funguo", "11", "10", ""), "phone": ("simu ya mkononi", "simu za mkononi", "9", "10", ""),
    "computer": ("kompyuta", "kompyuta", "9", "10", ""), "ball": ("mpira", "mipira", "3", "4", ""),
    "flower": ("ua", "maua", "5", "6", ""), "tree": ("mti", "miti", "3", "4", ""),
    "shirt": ("shati", "mashati", "5", "6", ""), "picture": ("picha", "picha", "9", "10", ""),
    "house": ("nyumba", "nyumba", "9", "10", ""), "ticket": ("tiketi ya treni", "tiketi za treni", "9", "10", ""),
    "school": ("shule", "shule", "9", "10", ""), "market": ("soko", "masoko", "5", "6", ""),
    "city": ("mji", "miji", "3", "4", ""), "village": ("kijiji", "vijiji", "7", "8", ""),
    "garden": ("bustani", "bustani", "9", "10", ""), "hospital": ("hospitali", "hospitali", "9", "10", ""),
    "library": ("maktaba", "maktaba", "9", "10", ""), "kitchen": ("jiko", "majiko", "5", "6", ""),
    "office": ("ofisi", "ofisi", "9", "10", ""), "park": ("bustani ya umma", "bustani za umma", "9", "10", ""),
    "station": ("stesheni ya treni", "stesheni za treni", "9", "10", ""), "shop": ("duka", "maduka", "5", "6", ""),
    "river": ("mto", "mito", "3", "4", ""), "field": ("shamba", "mashamba", "5", "6", ""),
}
# mass noun -> the container it is counted in: (plural, class) -- 'two teas' = vikombe viwili vya chai
_CONTAINER = {"water": ("glasi", "10"), "tea": ("vikombe", "8"), "milk": ("vikombe", "8"),
              "coffee": ("vikombe", "8"), "rice": ("sahani", "10"), "soup": ("bakuli", "10")}
# place -> (-ni locative: destination 'to the PLACE' and present location 'is at the PLACE' (yuko sokoni);
#           katika/kando ya: place adjunct 'in/at the PLACE' and past/future location (alikuwa katika soko))
_PLACES = {
    "school": ("shuleni", "katika shule"), "market": ("sokoni", "katika soko"), "city": ("mjini", "katika mji"),
    "village": ("kijijini", "katika kijiji"), "garden": ("bustanini", "katika bustani"),
    "hospital": ("hospitalini", "katika hospitali"), "library": ("maktabani", "katika maktaba"),
    "kitchen": ("jikoni", "jikoni"), "office": ("ofisini", "katika ofisi"),
    "park": ("kwenye bustani ya umma", "katika bustani ya umma"),
    "station": ("kwenye stesheni ya treni", "katika stesheni ya treni"), "shop": ("dukani", "katika duka"),
    "river": ("mtoni", "kando ya mto"), "field": ("shambani", "katika shamba"), "house": ("nyumbani", "nyumbani"),
}
# verb -> (stem, keeps ku- after a tense marker: monosyllabic stems and kwenda, fixed complement)
_VERBS = {
    "read": ("soma", False, ""), "write": ("andika", False, ""), "eat": ("la", True, ""),
    "drink": ("nywa", True, ""), "buy": ("nunua", False, ""), "sell": ("uza", False, ""),
    "see": ("ona", False, ""), "find": ("pata", False, ""), "open": ("fungua", False, ""),
    "close": ("funga", False, ""), "carry": ("beba", False, ""), "love": ("penda", False, ""),
    "help": ("saidia", False, ""), "call": ("ita", False, ""), "wash": ("osha", False, ""),
    "cook": ("pika", False, ""), "sing": ("imba", False, ""), "draw": ("chora", False, ""),
    "sleep": ("lala", False, ""), "work": ("fanya", False, "kazi"), "play": ("cheza", False, ""),
    "laugh": ("cheka", False, ""), "wait": ("subiri", False, ""), "run": ("kimbia", False, ""),
    "go": ("enda", True, ""), "come": ("ja", True, ""), "return": ("rudi", False, ""),
}
_TIMES = {"yesterday": "jana", "last_week": "wiki iliyopita", "this_morning": "asubuhi ya leo",
          "every_day": "kila siku", "often": "mara kwa mara", "now": "kwa wakati huu",
          "in_the_evening": "wakati wa jioni", "tomorrow": "kesho", "next_week": "wiki inayokuja",
          "soon": "baada ya muda mfupi"}
_HABITUAL = frozenset({"every_day", "often", "in_the_evening"})
_CONNECTIVE = {"and": " na ", "but": ", lakini ", "because": " kwa sababu "}

# ------------------------------------------------------------------------------------------------ concords
# keys: persons ("1sg" ... "3pl", with 3sg_m/3sg_f -> "3sg") and agreement classes "1" ... "11"
_PRONOUN = {"1sg": "mimi", "2sg": "wewe", "3sg": "yeye", "1pl": "sisi", "2pl": "ninyi", "3pl": "wao"}
_SUBJ = {"1sg": "ni", "2sg": "u", "3sg": "a", "1pl": "tu", "2pl": "m", "3pl": "wa", "1": "a", "2": "wa",
         "3": "u", "4": "i", "5": "li", "6": "ya", "7": "ki", "8": "vi", "9": "i", "10": "zi", "11": "u"}
_NEG = {"1sg": "si", "2sg": "hu", "3sg": "ha", "1pl": "hatu", "2pl": "ham", "3pl": "hawa", "1": "ha",
        "2": "hawa", "3": "hau", "4": "hai", "5": "hali", "6": "haya", "7": "haki", "8": "havi", "9": "hai",
        "10": "hazi", "11": "hau"}
_OBJ = {"1sg": "ni", "2sg": "ku", "3sg": "m", "1pl": "tu", "2pl": "wa", "3pl": "wa", "1": "m", "2": "wa",
        "3": "u", "4": "i", "5": "li", "6": "ya", "7": "ki", "8": "vi", "9": "i", "10": "zi", "11": "u"}
_LOC = {"1sg": "niko", "2sg": "uko", "3sg": "yuko", "1pl": "tuko", "2pl": "mko", "3pl": "wako", "1": "yuko",
        "2": "wako", "3": "uko", "4": "iko", "5": "liko", "6": "yako", "7": "kiko", "8": "viko", "9": "iko",
        "10": "ziko", "11": "uko"}
_PREFIX = {"1": "w", "2": "w", "3": "w", "4": "y", "5": "l", "6": "y", "7": "ch", "8": "vy", "9": "y", "10": "z",
           "11": "w"}  # possessive / genitive / -enye concord
_RELATIVE = {"1": "ye", "2": "o", "3": "o", "4": "yo", "5": "lo", "6": "yo", "7": "cho", "8": "vyo", "9": "yo",
             "10": "zo", "11": "o"}
_POSSESSIVE = {"1sg": "angu", "2sg": "ako", "3sg": "ake", "1pl": "etu", "2pl": "enu", "3pl": "ao"}
_PERSON_CLASS = {"1sg": "1", "2sg": "1", "3sg": "1", "1pl": "2", "2pl": "2", "3pl": "2"}

# adjective -> stem taking concord, or ("inv", word) invariable, per noun kind where the word differs
_ADJ_DEFAULT = {"big": "kubwa", "small": "dogo", "new": "pya", "old": "kuukuu", "beautiful": "zuri",
                "good": ("inv", "bora"), "red": "ekundu", "white": "eupe", "young": "changa",
                "cold": ("inv", "baridi"), "clean": ("inv", "safi"), "expensive": ("inv", "ghali")}
_ADJ_BY_KIND = {
    "person": {"old": "zee", "good": "ema", "young": ("kijana", "vijana")},
    "animal": {"old": "zee", "good": "zuri"},
    "food": {"good": "tamu"}, "drink": {"good": "tamu"},
}


def _person(p: str) -> str:
    return "3sg" if p.startswith("3sg") else p


def _agree(stem: str, cls: str) -> str:
    """Adjective / numeral concord prefix for a class, with the vowel and nasal rules."""
    vowel = stem[0] in "aeiou"
    if cls in ("1", "3", "11"):
        return ("mw" if vowel else "m") + stem
    if cls == "2":
        return ("w" if stem[0] in "ei" else "wa") + stem
    if cls == "4":
        return ("my" if vowel else "mi") + stem
    if cls == "5":
        return ("j" if vowel else "ji" if stem == "pya" else "") + stem
    if cls == "6":
        return ("m" if stem[0] == "e" else "ma") + stem
    if cls == "7":
        return ("ch" if vowel else "ki") + stem
    if cls == "8":
        return ("vy" if vowel else "vi") + stem
    # classes 9 and 10: nasal prefix
    if stem == "wili":
        return "mbili"
    if vowel:
        return ("nj" if stem == "ema" else "ny") + stem
    if stem == "pya" or stem[0] in "bv":
        return "m" + stem
    return ("n" if stem[0] in "dgjz" else "") + stem


def _adjective(adj: str, kind: str, cls: str) -> str:
    """An adjective agreeing with a noun of ``kind`` in agreement class ``cls`` (attributive or predicative)."""
    if adj == "hot":
        return _PREFIX[cls] + "a moto"
    if adj == "happy":
        return ("mwenye" if cls == "1" else _PREFIX[cls] + "enye") + " furaha"
    if adj == "tired":  # relative of kuchoka 'get tired': aliyechoka 'who is tired'
        return _SUBJ[cls] + "li" + _RELATIVE[cls] + "choka"
    form = _ADJ_BY_KIND.get(kind, {}).get(adj, _ADJ_DEFAULT[adj])
    if isinstance(form, tuple):
        if form[0] == "inv":
            return form[1]
        return form[1] if cls == "2" else form[0]
    return _agree(form, cls)


def _kind(np: NounPhrase | Pronoun) -> str:
    return "person" if isinstance(np, Pronoun) else NOUNS[np.noun].kind


# ---------------------------------------------------------------------------------------------- noun phrases
def _noun_phrase(np: NounPhrase) -> tuple[str, str]:
    """(text, agreement class). Order: noun, possessive, numeral, adjective."""
    sg, pl, sg_cls, pl_cls, flags = _NOUNS[np.noun]
    kind = NOUNS[np.noun].kind
    if flags == "mass":
        inner = [sg]
        if np.possessor:
            inner.append(_PREFIX[sg_cls] + _POSSESSIVE[_person(np.possessor)])
        if np.adjective:
            inner.append(_adjective(np.adjective, kind, sg_cls))
        if not np.count:
            return " ".join(inner), sg_cls
        container, cls = _CONTAINER[np.noun]
        num = _agree("wili" if np.count == 2 else "tatu", cls)
        return " ".join([container, num, _PREFIX[cls] + "a", *inner]), cls
    plural = bool(np.plural or np.count)
    head, cls = (pl, pl_cls) if plural else (sg, sg_cls)
    # compounds (mtoto wa kiume, simu ya mkononi): possessive and numeral follow the head noun, then the genitive
    head, _, tail = head.partition(" ")
    tail = tail.partition(" ")[2]
    if plural and flags == "kin" and sg == pl and not np.possessor and not np.count:
        head = "akina " + head
    words = [head]
    if np.possessor:
        poss_cls = ("10" if plural else "9") if flags == "kin" else cls
        words.append(_PREFIX[poss_cls] + _POSSESSIVE[_person(np.possessor)])
    if np.count:
        words.append(_agree("wili" if np.count == 2 else "tatu", cls))
    if tail:
        words.append(_PREFIX[cls] + "a " + tail)
    if np.adjective:
        words.append(_adjective(np.adjective, kind, cls))
    return " ".join(words), cls


def _subject(subject: NounPhrase | Pronoun) -> tuple[str, str, str]:
    """(noun phrase text or '' for a dropped pronoun, concord key, independent pronoun or '')."""
    if isinstance(subject, Pronoun):
        person = _person(subject.person)
        return "", person, _PRONOUN[person]
    text, cls = _noun_phrase(subject)
    return text, cls, ""


def _object(clause: Clause) -> tuple[str, str]:
    """(object text, object concord on the verb or '')."""
    obj = clause.object
    if obj is None:
        return "", ""
    if isinstance(obj, Pronoun):
        person = _person(obj.person)
        subject = clause.subject
        if isinstance(subject, Pronoun) and _person(subject.person) == person and person[0] in "12":
            return "", "ji"  # 'I saw me' -> nilijiona 'I saw myself'
        return "", _OBJ[person]
    text, cls = _noun_phrase(obj)
    kind = NOUNS[obj.noun].kind
    flags = _NOUNS[obj.noun][4]
    if kind == "person":
        marked = True  # human objects are always cross-referenced
    elif kind == "animal":
        marked = (obj.definite or bool(obj.possessor)) and not obj.count
    else:  # definite, specific things: aliufungua mlango 'he opened the door'
        marked = (kind == "thing" and obj.definite and not obj.possessor and not obj.count
                  and clause.verb not in ("sing", "write"))  # not with objects being created
    return text, _OBJ[cls] if marked and flags not in ("mass", "no_om") else ""


# ------------------------------------------------------------------------------------------------------ verbs
def _verb(key: str, tense: str, negative: bool, habitual: bool, om: str, stem: str, mono: bool) -> str:
    if om:
        om = om + "w" if om == "m" and stem[0] in "aeiou" else om
    body = om + stem
    kept = om or ("ku" if mono else "")  # monosyllabic stems (and kwenda) keep ku- unless an object concord is there
    if kept == "ku" and stem[0] in "aeiou":
        kept = "kw"  # kwenda: anakwenda, atakwenda
    if not negative:
        if tense == "present" and habitual:
            return "hu" + body
        marker = {"past": "li", "present": "na", "future": "ta"}[tense]
        return _SUBJ[key] + marker + kept + stem
    neg = _NEG[key]
    if tense == "past":
        return neg + ("kw" + body if mono and body[0] in "aeiou" else "ku" + body)  # hakula, hakwenda
    if tense == "future":
        return neg + "ta" + kept + stem
    if neg == "ham" and body[0] in "aeiou":
        neg = "hamw"  # ham- + vowel: hamwoni 'you (pl) do not see'
    return neg + body[:-1] + "i" if body.endswith("a") else neg + body


def _be(key: str, tense: str, negative: bool, habitual: bool) -> str:
    """The auxiliary 'be' of past, future and habitual copulas: alikuwa, hatakuwa, huwa."""
    if habitual and not negative:
        return "huwa"
    if tense == "past":
        return _NEG[key] + "kuwa" if negative else _SUBJ[key] + "likuwa"
    return (_NEG[key] if negative else _SUBJ[key]) + "takuwa"


def _state(clause: Clause, key: str, subject_kind: str, habitual: bool) -> tuple[str, bool]:
    """(predicate, whether an independent pronoun subject is needed)."""
    tense, negative, adj = clause.tense, clause.negative, clause.adjective
    present = tense == "present" and not (habitual and not negative)
    if adj == "tired":  # perfect of kuchoka: amechoka 'is tired', hajachoka 'is not tired'
        perfect = _SUBJ[key] + "mechoka"
        if present:
            return (_NEG[key] + "jachoka" if negative else perfect), False
        return f"{_be(key, tense, negative, habitual)} {perfect}", habitual
    if adj == "happy":  # kuwa na furaha 'have joy'
        if present:
            return (_NEG[key] if negative else _SUBJ[key]) + "na furaha", False
        return f"{_be(key, tense, negative, habitual)} na furaha", habitual
    cls = _PERSON_CLASS.get(key, key)
    word = _adjective(adj, subject_kind, cls)
    if present:
        return ("si " if negative else "ni ") + word, True
    return f"{_be(key, tense, negative, habitual)} {word}", habitual


def _location(clause: Clause, key: str, habitual: bool) -> tuple[str, bool]:
    place = _PLACES[clause.place][0]
    tense, negative = clause.tense, clause.negative
    if tense == "present" and not (habitual and not negative):
        copula = _LOC[key]
        if negative:
            copula = {"1sg": "siko", "2sg": "huko"}.get(key, "ha" + copula)
        return f"{copula} {place}", False
    return f"{_be(key, tense, negative, habitual)} {_PLACES[clause.place][1]}", habitual


def _clause(clause: Clause) -> str:
    subject_text, key, pronoun = _subject(clause.subject)
    habitual = clause.tense == "present" and clause.time in _HABITUAL
    if clause.kind == "state":
        predicate, needs_pronoun = _state(clause, key, _kind(clause.subject), habitual)
        words = [predicate]
    elif clause.kind == "location":
        predicate, needs_pronoun = _location(clause, key, habitual)
        words = [predicate]
    else:
        stem, mono, complement = _VERBS[clause.verb]
        obj_text, om = _object(clause)
        verb = _verb(key, clause.tense, clause.negative, habitual, om, stem, mono)
        needs_pronoun = habitual and not clause.negative  # hu- carries no person
        words = [verb, complement, obj_text]
        if clause.destination is not None:
            words.append(_PLACES[clause.destination][0])
        if clause.place is not None:
            words.append(_PLACES[clause.place][1])
    if clause.time is not None:
        words.append(_TIMES[clause.time])
    head = subject_text or (pronoun if needs_pronoun else "")
    return " ".join(w for w in [head, *words] if w)


def realize(sentence: Sentence) -> str:
    if sentence.question:
        text = "Je, " + _clause(sentence.clauses[0]) + "?"
    elif len(sentence.clauses) == 2:
        first, second = (_clause(c) for c in sentence.clauses)
        text = first + _CONNECTIVE[sentence.connective] + second + "."
    else:
        text = _clause(sentence.clauses[0]) + "."
    return text[0].upper() + text[1:]


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
