"""Hindi realization of the corpus grammar (see ``semantics.py``), in Devanagari: SOV order; two genders; direct and
oblique nouns in both numbers (लड़का/लड़के/लड़कों, लड़की/लड़कियाँ/लड़कियों, किताब/किताबें/किताबों); postpositions
(में, पर, को, से, की, ने); ा/े/ी agreement of adjectives and possessives, reflexive अपना for the subject's own;
honorific plural agreement for elders (माँ, पिता, दादा, दादी); split ergativity (the perfective of transitive verbs
puts ने on the subject and agrees with an unmarked object, else masculine singular); को on human and definite animal
objects; dative experiencer for 'find' (मुझे चाबी मिली); light verbs (काम करना, की मदद करना, इंतज़ार करना, बंद करना);
habitual present, progressive for 'now', future and simple perfective past; नहीं negation (dropping the auxiliary in
the negated habitual); copula हूँ/हो/है/हैं, था/थी/थे/थीं, होगा; क्या questions; और/लेकिन/क्योंकि; danda ।."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .semantics import NOUNS, Clause, NounPhrase, Pronoun, Sentence

LANG = "hi"
SCRIPT = "Devanagari"

# noun id -> (direct singular, gender, declension): "a" = masculine in -ā that inflects (लड़का/लड़के/लड़कों),
# "" = the default declension of its gender (आदमी/आदमियों, किताब/किताबें, लड़की/लड़कियाँ).
_NOUN = {
    "mother": ("माँ", "f", ""), "father": ("पिता", "m", ""), "brother": ("भाई", "m", ""),
    "sister": ("बहन", "f", ""), "grandmother": ("दादी", "f", ""), "grandfather": ("दादा", "m", ""),
    "boy": ("लड़का", "m", "a"), "girl": ("लड़की", "f", ""), "man": ("आदमी", "m", ""), "woman": ("औरत", "f", ""),
    "teacher": ("अध्यापिका", "f", ""), "doctor": ("डॉक्टर", "m", ""), "farmer": ("किसान", "m", ""),
    "student": ("छात्रा", "f", ""), "neighbour": ("पड़ोसी", "m", ""), "friend": ("सहेली", "f", ""),
    "dog": ("कुत्ता", "m", "a"), "cat": ("बिल्ली", "f", ""), "bird": ("चिड़िया", "f", ""), "horse": ("घोड़ा", "m", "a"),
    "cow": ("गाय", "f", ""),
    "bread": ("रोटी", "f", ""), "apple": ("सेब", "m", ""), "fish": ("मछली", "f", ""), "rice": ("चावल", "m", ""),
    "egg": ("अंडा", "m", "a"), "soup": ("सूप", "m", ""), "cake": ("केक", "m", ""), "water": ("पानी", "m", ""),
    "tea": ("चाय", "f", ""), "milk": ("दूध", "m", ""), "coffee": ("कॉफ़ी", "f", ""),
    "book": ("किताब", "f", ""), "letter": ("चिट्ठी", "f", ""), "newspaper": ("अख़बार", "m", ""),
    "story": ("कहानी", "f", ""), "song": ("गीत", "m", ""), "car": ("कार", "f", ""), "bicycle": ("साइकिल", "f", ""),
    "door": ("दरवाज़ा", "m", "a"), "window": ("खिड़की", "f", ""), "table": ("मेज़", "f", ""),
    "chair": ("कुर्सी", "f", ""), "bag": ("थैला", "m", "a"), "key": ("चाबी", "f", ""), "phone": ("फ़ोन", "m", ""),
    "computer": ("कंप्यूटर", "m", ""), "ball": ("गेंद", "f", ""), "flower": ("फूल", "m", ""), "tree": ("पेड़", "m", ""),
    "shirt": ("कमीज़", "f", ""), "picture": ("तस्वीर", "f", ""), "house": ("घर", "m", ""),
    "ticket": ("टिकट", "m", ""),
}
_HONORIFIC = frozenset({"mother", "father", "grandmother", "grandfather"})  # plural agreement when singular
_MASS = frozenset({"bread", "rice", "water", "tea", "milk", "coffee", "soup", "fish"})  # bare when indefinite
_UNCOUNTED = {"rice": "कटोरी", "water": "गिलास", "tea": "कप", "milk": "गिलास", "coffee": "कप", "soup": "कटोरी"}
"""Mass nouns with no plural; a count takes the measure word ('दो कप चाय')."""
_ALWAYS_PLURAL = frozenset({"rice"})  # चावल agrees as masculine plural

# place id -> (in/at the place, to the place)
_PLACE = {
    "school": ("स्कूल में", "स्कूल"), "market": ("बाज़ार में", "बाज़ार"), "city": ("शहर में", "शहर"),
    "village": ("गाँव में", "गाँव"), "garden": ("बग़ीचे में", "बग़ीचे में"), "hospital": ("अस्पताल में", "अस्पताल"),
    "library": ("पुस्तकालय में", "पुस्तकालय"), "kitchen": ("रसोई में", "रसोई में"), "office": ("दफ़्तर में", "दफ़्तर"),
    "park": ("पार्क में", "पार्क"), "station": ("स्टेशन पर", "स्टेशन"), "shop": ("दुकान पर", "दुकान पर"),
    "river": ("नदी के किनारे", "नदी के किनारे"), "field": ("खेत में", "खेत पर"), "house": ("घर पर", "घर"),
}
_TIME = {"yesterday": "कल", "last_week": "पिछले हफ़्ते", "this_morning": "आज सुबह", "every_day": "रोज़",
         "often": "अक्सर", "now": "अभी", "in_the_evening": "शाम को", "tomorrow": "कल", "next_week": "अगले हफ़्ते",
         "soon": "जल्द ही"}
_NUMBER = {2: "दो", 3: "तीन"}

# adjective -> its masculine direct singular (variable adjectives end in ा and inflect; "हुआ" inflects too)
_ADJECTIVE = {"big": "बड़ा", "small": "छोटा", "new": "नया", "old": "पुराना", "beautiful": "सुंदर", "good": "अच्छा",
              "red": "लाल", "white": "सफ़ेद", "young": "जवान", "tired": "थका हुआ", "happy": "ख़ुश", "hot": "गरम",
              "cold": "ठंडा", "clean": "साफ़", "expensive": "महँगा"}
_OLD_ANIMATE = "बूढ़ा"  # 'old' of persons and animals
_INFLECTED = {"नया": ("नया", "नए", "नई"), "हुआ": ("हुआ", "हुए", "हुई")}

# pronouns: direct, ergative, dative/accusative, with से, possessive stem (+ा/े/ी)
_PRONOUN = {
    "1sg": ("मैं", "मैंने", "मुझे", "मुझसे", "मेर"), "2sg": ("तुम", "तुमने", "तुम्हें", "तुमसे", "तुम्हार"),
    "3sg_m": ("वह", "उसने", "उसे", "उससे", "उसक"), "3sg_f": ("वह", "उसने", "उसे", "उससे", "उसक"),
    "1pl": ("हम", "हमने", "हमें", "हमसे", "हमार"), "2pl": ("आप", "आपने", "आपको", "आपसे", "आपक"),
    "3pl": ("वे", "उन्होंने", "उन्हें", "उनसे", "उनक"),
}
_REFLEXIVE = ("ख़ुद", "ख़ुद", "ख़ुद को", "ख़ुद से", "अपन")


class Agr(NamedTuple):
    """Verb agreement: person ("1", "2" = तुम, "2h" = आप, "3"), gender ("m"/"f"), plural (grammatical)."""

    person: str
    gender: str
    plural: bool


_DEFAULT = Agr("3", "m", False)
_PRONOUN_AGR = {"1sg": Agr("1", "m", False), "2sg": Agr("2", "m", True), "3sg_m": Agr("3", "m", False),
                "3sg_f": Agr("3", "f", False), "1pl": Agr("1", "m", True), "2pl": Agr("2h", "m", True),
                "3pl": Agr("3", "m", True)}


class VerbSpec(NamedTuple):
    """How a verb is built: ``stem`` (conjugated), ``ergative`` (transitive: ने in the perfective), ``object_case``
    ("acc": को on humans and definite animals, "gen": the object is a genitive of ``light``, "se": with से, "nom":
    nominative, agreeing, with a dative subject), ``light`` (a noun or particle before the negation, with its gender
    when the verb agrees with it), ``vector`` (a word after the negation, before the stem: ले जाना), ``stative``."""

    stem: str
    ergative: bool = True
    object_case: str = "acc"
    light: str = ""
    light_gender: str = ""
    vector: str = ""
    stative: bool = False


_VERB = {
    "read": VerbSpec("पढ़"), "write": VerbSpec("लिख"), "eat": VerbSpec("खा"), "drink": VerbSpec("पी"),
    "buy": VerbSpec("ख़रीद"), "sell": VerbSpec("बेच"), "see": VerbSpec("देख"),
    "find": VerbSpec("मिल", ergative=False, object_case="nom"), "open": VerbSpec("खोल"),
    "close": VerbSpec("कर", light="बंद"), "carry": VerbSpec("जा", ergative=False, vector="ले"),
    "love": VerbSpec("कर", light="बहुत पसंद", stative=True),
    "help": VerbSpec("कर", object_case="gen", light="मदद", light_gender="f"), "call": VerbSpec("बुला"),
    "wash": VerbSpec("धो"), "cook": VerbSpec("पका"), "sing": VerbSpec("गा"), "draw": VerbSpec("बना"),
    "sleep": VerbSpec("सो", ergative=False), "work": VerbSpec("कर", light="काम", light_gender="m"),
    "play": VerbSpec("खेल", ergative=False), "laugh": VerbSpec("हँस", ergative=False),
    "wait": VerbSpec("कर", light="इंतज़ार", light_gender="m"), "run": VerbSpec("दौड़", ergative=False),
    "go": VerbSpec("जा", ergative=False), "come": VerbSpec("आ", ergative=False),
    "return": VerbSpec("लौट", ergative=False),
}
_LOVE_ANIMATE = VerbSpec("कर", object_case="se", light="बहुत प्यार", light_gender="m", stative=True)
_DRAW_OF = VerbSpec("बना", object_case="gen", light="तस्वीर", light_gender="f")  # draw X = make X's picture
_BATHE = VerbSpec("नहला")  # wash an animal
_PERFECTIVE = {"कर": ("किया", "किए", "की", "कीं"), "जा": ("गया", "गए", "गई", "गईं"),
               "पी": ("पिया", "पिए", "पी", "पीं")}  # irregular perfectives by ending ा, े, ी, ीं
_VOWELS = "ाोीेआ"


def _kind(np: NounPhrase | Pronoun) -> str:
    return "person" if isinstance(np, Pronoun) else NOUNS[np.noun].kind


def _verb_spec(verb: str, obj: NounPhrase | Pronoun | None) -> VerbSpec:
    if verb == "love" and obj is not None and _kind(obj) in ("person", "animal"):
        return _LOVE_ANIMATE
    if verb == "draw" and not (isinstance(obj, NounPhrase) and obj.noun == "picture"):
        return _DRAW_OF
    if verb == "wash" and obj is not None and _kind(obj) == "animal":
        return _BATHE
    return _VERB[verb]


# ---------------------------------------------------------------------------------------------------------------
# Nouns, adjectives and noun phrases
# ---------------------------------------------------------------------------------------------------------------

def _declension(noun: str) -> tuple[str, str, str, str]:
    """(direct singular, oblique singular, direct plural, oblique plural)."""
    word, gender, cls = _NOUN[noun]
    if cls == "a":
        stem = word[:-1]
        return word, stem + "े", stem + "े", stem + "ों"
    if word == "माँ":
        return word, word, "माँएँ", "माँओं"
    if word.endswith(("ी", "ई")):
        short = word[:-1] + ("ि" if word.endswith("ी") else "इ")
        return word, word, (short + "याँ") if gender == "f" else word, short + "यों"
    if word.endswith("या"):  # चिड़िया
        return word, word, word + "ँ", word[:-1] + "ों"
    if word.endswith("ा"):  # पिता, दादा, छात्रा, अध्यापिका
        return word, word, (word + "एँ") if gender == "f" else word, word + "ओं"
    return word, word, (word + "ें") if gender == "f" else word, word + "ों"


def _inflect(word: str, gender: str, plural_or_oblique: bool) -> str:
    """A variable adjective or possessive (ending in ा): ा masculine direct singular, े other masculine, ी feminine."""
    if word in _INFLECTED:
        return _INFLECTED[word][2 if gender == "f" else 1 if plural_or_oblique else 0]
    if not word.endswith("ा"):
        return word
    return word[:-1] + ("ी" if gender == "f" else "े" if plural_or_oblique else "ा")


def _adjective(adjective: str, kind: str, gender: str, plural_or_oblique: bool) -> str:
    base = _OLD_ANIMATE if adjective == "old" and kind in ("person", "animal") else _ADJECTIVE[adjective]
    return " ".join(_inflect(word, gender, plural_or_oblique) for word in base.split())


def _np_agr(np: NounPhrase | Pronoun) -> Agr:
    if isinstance(np, Pronoun):
        return _PRONOUN_AGR[np.person]
    gender = _NOUN[np.noun][1]
    plural = (bool(np.plural or np.count) and np.noun not in _UNCOUNTED) or np.noun in _ALWAYS_PLURAL
    honorific = np.noun in _HONORIFIC and (np.definite or np.possessor is not None) and not np.count
    return Agr("3", gender, plural or honorific)


def _own(person: str, subject: str | None) -> bool:
    """Whether a possessor or object person is the subject's own ('you' is one addressee, तुम or आप)."""
    return person == subject or {person, subject} == {"2sg", "2pl"}


def _possessive(person: str, gender: str, plural_or_oblique: bool, subject: str | None) -> str:
    stem = _REFLEXIVE[4] if _own(person, subject) else _PRONOUN[person][4]
    return _inflect(stem + "ा", gender, plural_or_oblique)


def _noun_phrase(np: NounPhrase, oblique: bool, subject: str | None = None, negated: bool = False) -> str:
    """The phrase in the direct or oblique case; ``subject``: the subject's person (its possessions take अपना);
    ``negated``: an indefinite object of a negated verb takes कोई/किसी ('no ...', 'not any ...') instead of एक."""
    agr = _np_agr(np)
    kind, gender = NOUNS[np.noun].kind, agr.gender
    measure = _UNCOUNTED.get(np.noun) if np.count else None
    plural = bool(np.plural or np.count) and np.noun not in _UNCOUNTED
    direct_sg, oblique_sg, direct_pl, oblique_pl = _declension(np.noun)
    head = (oblique_pl if oblique else direct_pl) if plural else (oblique_sg if oblique else direct_sg)
    marked = agr.plural or oblique  # a modifier's masculine ा becomes े
    words = []
    if np.possessor is not None:
        words.append(_possessive(np.possessor, gender, marked, subject))
    if np.count:
        words.append(_NUMBER[np.count])
        if measure:
            words.append(measure)
    elif not np.definite and np.possessor is None and not np.plural and np.noun not in _MASS:
        words.append(("किसी" if oblique else "कोई") if negated else "एक")
    if np.adjective is not None:
        words.append(_adjective(np.adjective, kind, gender, marked))
    return " ".join([*words, head])


def _subject(np: NounPhrase | Pronoun, case: str) -> str:
    """``case``: "direct", "ergative" (+ने) or "dative" (+को)."""
    if isinstance(np, Pronoun):
        return _PRONOUN[np.person][("direct", "ergative", "dative").index(case)]
    phrase = _noun_phrase(np, oblique=case != "direct")
    return phrase + {"direct": "", "ergative": " ने", "dative": " को"}[case]


def _object(obj: NounPhrase | Pronoun, spec: VerbSpec, verb: str, subject: str | None,
            negated: bool) -> tuple[str, Agr | None]:
    """(the object phrase, its agreement if it is unmarked, else None). A 1st/2nd person object pronoun of the
    subject's own person is reflexive (ख़ुद को); a 3rd person one is taken to be someone else (उसे)."""
    case = spec.object_case
    if case == "acc" and isinstance(obj, NounPhrase):
        kind = NOUNS[obj.noun].kind
        definite_animal = kind == "animal" and (obj.definite or obj.possessor is not None or verb != "see")
        if kind != "person" and not definite_animal:
            case = "nom"
    if isinstance(obj, Pronoun):
        own = _own(obj.person, subject) and obj.person[0] in "12"
        forms = _REFLEXIVE if own else _PRONOUN[obj.person]
        if case == "gen":
            return _inflect(forms[4] + "ा", spec.light_gender, False), None
        if case == "nom":
            return forms[0], _PRONOUN_AGR[obj.person]
        return forms[2 if case == "acc" else 3], None
    if case == "nom":
        return _noun_phrase(obj, False, subject, negated), _np_agr(obj)
    postposition = {"acc": "को", "se": "से", "gen": _inflect("का", spec.light_gender, False)}[case]
    return f"{_noun_phrase(obj, True, subject, negated)} {postposition}", None


# ---------------------------------------------------------------------------------------------------------------
# Verbs
# ---------------------------------------------------------------------------------------------------------------

def _ending(agr: Agr, final: bool) -> str:
    """The participle ending: ा, े, ी, or ीं (feminine plural with no auxiliary after it)."""
    if agr.gender == "f":
        return "ीं" if agr.plural and final else "ी"
    return "े" if agr.plural else "ा"


def _present_aux(agr: Agr) -> str:
    if agr.person == "1":
        return "हैं" if agr.plural else "हूँ"
    if agr.person == "2":
        return "हो"
    return "हैं" if agr.plural else "है"


def _past_aux(agr: Agr) -> str:
    return "थ" + _ending(agr, True)


def _future(stem: str, agr: Agr) -> str:
    vowel = stem.endswith(tuple(_VOWELS))
    if agr.person == "1" and not agr.plural:
        suffix = "ऊँ" if vowel else "ूँ"
    elif agr.person == "2":
        suffix = "ओ" if vowel else "ो"
    elif agr.plural:
        suffix = "एँ" if vowel else "ें"
    else:
        suffix = "ए" if vowel else "े"
    if stem.endswith("ी"):  # पी -> पिएगा
        stem = stem[:-1] + "ि"
    ga = "गी" if agr.gender == "f" else "गे" if agr.plural or agr.person == "2" else "गा"
    return stem + suffix + ga


def _perfective(stem: str, agr: Agr) -> str:
    ending = _ending(agr, True)
    if stem in _PERFECTIVE:
        return _PERFECTIVE[stem][("ा", "े", "ी", "ीं").index(ending)]
    if stem.endswith(tuple(_VOWELS)):  # खाया, खाए, खाई, खाईं
        return stem + {"ा": "या", "े": "ए", "ी": "ई", "ीं": "ईं"}[ending]
    return stem + ending


def _be(tense: str, agr: Agr) -> str:
    """The copula: हूँ/हो/है/हैं, था/थे/थी/थीं, होऊँगा/होगे/होगा/होंगे (feminine -गी)."""
    if tense == "past":
        return _past_aux(agr)
    if tense == "future":
        ga = "गी" if agr.gender == "f" else "गा" if agr.person in ("1", "3") and not agr.plural else "गे"
        if agr.person == "1" and not agr.plural:
            return "होऊँ" + ga
        return ("हों" if agr.plural and agr.person != "2" else "हो") + ga
    return _present_aux(agr)


def _conjugate(stem: str, aspect: str, agr: Agr, negative: bool) -> list[str]:
    """The verb group after the negation: ``aspect`` is perfective, habitual, progressive or future."""
    if aspect == "perfective":
        return [_perfective(stem, agr)]
    if aspect == "future":
        return [_future(stem, agr)]
    if aspect == "progressive":
        return [stem, "रह" + _ending(agr, False), _present_aux(agr)]
    if negative:  # नहीं पढ़ता, नहीं पढ़तीं: the auxiliary is dropped
        return [stem + "त" + _ending(agr, True)]
    return [stem + "त" + _ending(agr, False), _present_aux(agr)]


# ---------------------------------------------------------------------------------------------------------------
# Clauses and sentences
# ---------------------------------------------------------------------------------------------------------------

def _predicative(clause: Clause, agr: Agr) -> str:
    if clause.kind == "location":
        return _PLACE[clause.place][0]
    return _adjective(clause.adjective, _kind(clause.subject), agr.gender, agr.plural)


def _clause(clause: Clause) -> str:
    subject_person = clause.subject.person if isinstance(clause.subject, Pronoun) else None
    time = [_TIME[clause.time]] if clause.time else []
    negation = ["नहीं"] if clause.negative else []
    if clause.kind in ("state", "location"):
        agr = _np_agr(clause.subject)
        words = [_subject(clause.subject, "direct"), *time, _predicative(clause, agr), *negation,
                 _be(clause.tense, agr)]
        return " ".join(words)
    spec = _verb_spec(clause.verb, clause.object)
    if clause.tense == "past":
        aspect = "perfective"
    elif clause.tense == "future":
        aspect = "future"
    else:
        aspect = "progressive" if clause.time == "now" and not spec.stative else "habitual"
    if spec.object_case == "nom":
        case = "dative"
    else:
        case = "ergative" if spec.ergative and aspect == "perfective" else "direct"
    words = [_subject(clause.subject, case), *time]
    if clause.place is not None:
        words.append(_PLACE[clause.place][0])
    object_agr = None
    if clause.object is not None:
        phrase, object_agr = _object(clause.object, spec, clause.verb, subject_person, clause.negative)
        words.append(phrase)
    if clause.destination is not None:
        words.append(_PLACE[clause.destination][1])
    light = spec.light
    if clause.negative and light.startswith("बहुत "):  # 'does not love' = नहीं पसंद करता, not *बहुत नहीं
        light = light[len("बहुत "):]
    if light:
        words.append(light)
    if case == "direct":
        agr = _np_agr(clause.subject)
    elif case == "dative":
        agr = object_agr or _DEFAULT
    elif spec.light_gender:
        agr = Agr("3", spec.light_gender, False)
    else:
        agr = object_agr or _DEFAULT
    words += negation
    if spec.vector:
        words.append(spec.vector)
    words += _conjugate(spec.stem, aspect, agr, clause.negative)
    return " ".join(words)


_CONNECTIVE = {"and": " और ", "but": ", लेकिन ", "because": ", क्योंकि "}


def realize(sentence: Sentence) -> str:
    if sentence.question:
        return "क्या " + _clause(sentence.clauses[0]) + "?"
    if len(sentence.clauses) == 2:
        first, second = (_clause(c) for c in sentence.clauses)
        return first + _CONNECTIVE[sentence.connective] + second + "।"
    return _clause(sentence.clauses[0]) + "।"


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
