"""Modern Greek realization of the corpus grammar (see ``semantics.py``), in the monotonic orthography.

It implements: three genders with the nominative/accusative article paradigm (ο/η/το, τον/τη(ν)/το, οι/τους/τις/τα,
ένας/έναν/μια/ένα), noun plurals, attributive and predicative adjective agreement in gender, number and case,
the numerals δύο/τρεις/τρία, possessive clitics after the noun with the enclitic accent (το αυτοκίνητό μου),
preverbal object clitics (τη βλέπω, δεν θα τον δω), pro-drop of subject pronouns (kept when two clauses contrast
different subjects), present, aorist past and θα + perfective subjunctive future (θα + present for habits and
states), the copula είμαι/ήμουν/θα είμαι, δεν negation, σε + article contractions (στο/στη(ν)/στον), the final -ν
rule of τη(ν)/στη(ν), yes/no questions (verb-first with a noun subject, Greek question mark ';') and the
connectives και/αλλά/γιατί.
"""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import NOUNS, Clause, NounPhrase, Pronoun, Sentence

LANG = "el"
SCRIPT = "Greek"

# noun -> (gender, forms): masculines "nom.sg acc.sg nom.pl acc.pl", feminines and neuters "sg pl" (nom = acc)
_NOUNS = {
    "mother": ("f", "μητέρα μητέρες"), "father": ("m", "πατέρας πατέρα πατέρες πατέρες"),
    "brother": ("m", "αδερφός αδερφό αδερφοί αδερφούς"), "sister": ("f", "αδερφή αδερφές"),
    "grandmother": ("f", "γιαγιά γιαγιάδες"), "grandfather": ("m", "παππούς παππού παππούδες παππούδες"),
    "boy": ("n", "αγόρι αγόρια"), "girl": ("n", "κορίτσι κορίτσια"), "man": ("m", "άντρας άντρα άντρες άντρες"),
    "woman": ("f", "γυναίκα γυναίκες"), "teacher": ("f", "δασκάλα δασκάλες"),
    "doctor": ("m", "γιατρός γιατρό γιατροί γιατρούς"), "farmer": ("m", "αγρότης αγρότη αγρότες αγρότες"),
    "student": ("f", "μαθήτρια μαθήτριες"), "neighbour": ("m", "γείτονας γείτονα γείτονες γείτονες"),
    "friend": ("f", "φίλη φίλες"),
    "dog": ("m", "σκύλος σκύλο σκύλοι σκύλους"), "cat": ("f", "γάτα γάτες"), "bird": ("n", "πουλί πουλιά"),
    "horse": ("n", "άλογο άλογα"), "cow": ("f", "αγελάδα αγελάδες"),
    "bread": ("n", "ψωμί ψωμιά"), "apple": ("n", "μήλο μήλα"), "fish": ("n", "ψάρι ψάρια"),
    "rice": ("n", "ρύζι ρύζια"), "egg": ("n", "αυγό αυγά"), "soup": ("f", "σούπα σούπες"),
    "cake": ("n", "κέικ κέικ"), "water": ("n", "νερό νερά"), "tea": ("n", "τσάι τσάγια"),
    "milk": ("n", "γάλα γάλατα"), "coffee": ("m", "καφές καφέ καφέδες καφέδες"),
    "book": ("n", "βιβλίο βιβλία"), "letter": ("n", "γράμμα γράμματα"), "newspaper": ("f", "εφημερίδα εφημερίδες"),
    "story": ("f", "ιστορία ιστορίες"), "song": ("n", "τραγούδι τραγούδια"),
    "car": ("n", "αυτοκίνητο αυτοκίνητα"), "bicycle": ("n", "ποδήλατο ποδήλατα"), "door": ("f", "πόρτα πόρτες"),
    "window": ("n", "παράθυρο παράθυρα"), "table": ("n", "τραπέζι τραπέζια"), "chair": ("f", "καρέκλα καρέκλες"),
    "bag": ("f", "τσάντα τσάντες"), "key": ("n", "κλειδί κλειδιά"), "phone": ("n", "τηλέφωνο τηλέφωνα"),
    "computer": ("m", "υπολογιστής υπολογιστή υπολογιστές υπολογιστές"), "ball": ("f", "μπάλα μπάλες"),
    "flower": ("n", "λουλούδι λουλούδια"), "tree": ("n", "δέντρο δέντρα"), "shirt": ("n", "πουκάμισο πουκάμισα"),
    "picture": ("f", "ζωγραφιά ζωγραφιές"), "house": ("n", "σπίτι σπίτια"), "ticket": ("n", "εισιτήριο εισιτήρια"),
    "school": ("n", "σχολείο σχολεία"), "market": ("f", "αγορά αγορές"), "city": ("f", "πόλη πόλεις"),
    "village": ("n", "χωριό χωριά"), "garden": ("m", "κήπος κήπο κήποι κήπους"),
    "hospital": ("n", "νοσοκομείο νοσοκομεία"), "library": ("f", "βιβλιοθήκη βιβλιοθήκες"),
    "kitchen": ("f", "κουζίνα κουζίνες"), "office": ("n", "γραφείο γραφεία"), "park": ("n", "πάρκο πάρκα"),
    "station": ("m", "σταθμός σταθμό σταθμοί σταθμούς"), "shop": ("n", "μαγαζί μαγαζιά"),
    "river": ("n", "ποτάμι ποτάμια"), "field": ("n", "χωράφι χωράφια"),
}
# uncountable: bare when indefinite ('τρώει ψωμί'), singular when a plan makes them plural without a number
_MASS = frozenset({"bread", "rice", "water", "tea", "milk", "coffee", "soup", "fish"})
_MASS_NO_PLURAL = _MASS - {"fish"}  # 'the fish' (plural) are τα ψάρια; 'the bread' stays το ψωμί

_DEFINITE = {("m", "nom"): "ο", ("m", "acc"): "τον", ("f", "nom"): "η", ("f", "acc"): "την", ("n", "nom"): "το",
             ("n", "acc"): "το"}
_DEFINITE_PL = {("m", "nom"): "οι", ("m", "acc"): "τους", ("f", "nom"): "οι", ("f", "acc"): "τις",
                ("n", "nom"): "τα", ("n", "acc"): "τα"}
_INDEFINITE = {("m", "nom"): "ένας", ("m", "acc"): "έναν", ("f", "nom"): "μια", ("f", "acc"): "μια",
               ("n", "nom"): "ένα", ("n", "acc"): "ένα"}

# adjective -> "masculine-feminine" lemma; the endings follow the stress of the masculine (-ος/-ός)
_ADJECTIVES = {
    "big": "μεγάλος-η", "small": "μικρός-ή", "new": "καινούργιος-α", "old": "παλιός-ά", "beautiful": "όμορφος-η",
    "good": "καλός-ή", "red": "κόκκινος-η", "white": "άσπρος-η", "young": "νεαρός-ή", "tired": "κουρασμένος-η",
    "happy": "χαρούμενος-η", "hot": "ζεστός-ή", "cold": "κρύος-α", "clean": "καθαρός-ή", "expensive": "ακριβός-ή",
}
_ADJECTIVES_BY_KIND = {"person": {"old": "ηλικιωμένος-η"}, "animal": {"old": "γέρικος-η"}}
_PREDICATIVE = {"young": "νέος-α"}  # 'είναι νέα', but 'η νεαρή δασκάλα'

_SUBJECT = {"1sg": "εγώ", "2sg": "εσύ", "3sg_m": "αυτός", "3sg_f": "αυτή", "1pl": "εμείς", "2pl": "εσείς",
            "3pl": "αυτοί"}
_CLITIC = {"1sg": "με", "2sg": "σε", "3sg_m": "τον", "3sg_f": "την", "1pl": "μας", "2pl": "σας", "3pl": "τους"}
_POSSESSIVE = {"1sg": "μου", "2sg": "σου", "3sg_m": "του", "3sg_f": "της", "1pl": "μας", "2pl": "σας",
               "3pl": "τους"}
_PERSON_INDEX = {"1sg": 0, "2sg": 1, "3sg_m": 2, "3sg_f": 2, "1pl": 3, "2pl": 4, "3pl": 5}
_PRONOUN_GENDER = {"3sg_f": "f"}  # others: masculine by default (the plan does not say the speaker's sex)
_PLURAL_PERSONS = frozenset({"1pl", "2pl", "3pl"})


def _w(stem: str) -> list[str]:
    """-ω present or perfective subjunctive: διαβάζω, διαβάζεις, ..."""
    return [stem + e for e in ("ω", "εις", "ει", "ουμε", "ετε", "ουν")]


def _aw(stem: str) -> list[str]:
    """Contracted -άω present: αγαπάω, αγαπάς, ..."""
    return [stem + e for e in ("άω", "άς", "άει", "άμε", "άτε", "άνε")]


def _past(singular: str, plural: str) -> list[str]:
    """Aorist (or imperfect) with the stress of the singular and of the 1st/2nd plural: διάβασα ... διαβάσαμε."""
    return [singular + "α", singular + "ες", singular + "ε", plural + "αμε", plural + "ατε", singular + "αν"]


def _list(forms: str) -> list[str]:
    return forms.split()


# verb -> (present, past (aorist; imperfect for 'love'), perfective subjunctive for the θα future), 6 persons each
_VERBS = {
    "read": (_w("διαβάζ"), _past("διάβασ", "διαβάσ"), _w("διαβάσ")),
    "write": (_w("γράφ"), _past("έγραψ", "γράψ"), _w("γράψ")),
    "eat": (_list("τρώω τρως τρώει τρώμε τρώτε τρώνε"), _past("έφαγ", "φάγ"), _list("φάω φας φάει φάμε φάτε φάνε")),
    "drink": (_w("πίν"), _past("ήπι", "ήπι"), _list("πιω πιεις πιει πιούμε πιείτε πιουν")),
    "buy": (_w("αγοράζ"), _past("αγόρασ", "αγοράσ"), _w("αγοράσ")),
    "sell": (_aw("πουλ"), _past("πούλησ", "πουλήσ"), _w("πουλήσ")),
    "see": (_w("βλέπ"), _past("είδ", "είδ"), _list("δω δεις δει δούμε δείτε δουν")),
    "find": (_w("βρίσκ"), _past("βρήκ", "βρήκ"), _list("βρω βρεις βρει βρούμε βρείτε βρουν")),
    "open": (_w("ανοίγ"), _past("άνοιξ", "ανοίξ"), _w("ανοίξ")),
    "close": (_w("κλείν"), _past("έκλεισ", "κλείσ"), _w("κλείσ")),
    "carry": (_aw("κουβαλ"), _past("κουβάλησ", "κουβαλήσ"), _w("κουβαλήσ")),
    "love": (_aw("αγαπ"), _past("αγαπούσ", "αγαπούσ"), _aw("αγαπ")),
    "help": (_aw("βοηθ"), _past("βοήθησ", "βοηθήσ"), _w("βοηθήσ")),
    "call": (_w("φωνάζ"), _past("φώναξ", "φωνάξ"), _w("φωνάξ")),
    "wash": (_w("πλέν"), _past("έπλυν", "πλύν"), _w("πλύν")),
    "cook": (_w("μαγειρεύ"), _past("μαγείρεψ", "μαγειρέψ"), _w("μαγειρέψ")),
    "sing": (_aw("τραγουδ"), _past("τραγούδησ", "τραγουδήσ"), _w("τραγουδήσ")),
    "draw": (_w("ζωγραφίζ"), _past("ζωγράφισ", "ζωγραφίσ"), _w("ζωγραφίσ")),
    "sleep": (_list("κοιμάμαι κοιμάσαι κοιμάται κοιμόμαστε κοιμάστε κοιμούνται"), _past("κοιμήθηκ", "κοιμηθήκ"),
              _list("κοιμηθώ κοιμηθείς κοιμηθεί κοιμηθούμε κοιμηθείτε κοιμηθούν")),
    "work": (_w("δουλεύ"), _past("δούλεψ", "δουλέψ"), _w("δουλέψ")),
    "play": (_w("παίζ"), _past("έπαιξ", "παίξ"), _w("παίξ")),
    "laugh": (_aw("γελ"), _past("γέλασ", "γελάσ"), _w("γελάσ")),
    "wait": (_w("περιμέν"), _past("περίμεν", "περιμέν"), _w("περιμέν")),
    "run": (_w("τρέχ"), _past("έτρεξ", "τρέξ"), _w("τρέξ")),
    "go": (_w("πηγαίν"), _past("πήγ", "πήγ"), _list("πάω πας πάει πάμε πάτε πάνε")),
    "come": (_list("έρχομαι έρχεσαι έρχεται ερχόμαστε έρχεστε έρχονται"), _past("ήρθ", "ήρθ"), _w("έρθ")),
    "return": (_w("επιστρέφ"), _past("επέστρεψ", "επιστρέψ"), _w("επιστρέψ")),
}
_STATIVE = frozenset({"love"})  # imperfective future: θα αγαπάει
_BE = {"present": _list("είμαι είσαι είναι είμαστε είστε είναι"),
       "past": _list("ήμουν ήσουν ήταν ήμασταν ήσασταν ήταν")}

_TIMES = {"yesterday": "χθες", "last_week": "την περασμένη εβδομάδα", "this_morning": "σήμερα το πρωί",
          "every_day": "κάθε μέρα", "often": "συχνά", "now": "τώρα", "in_the_evening": "το βράδυ",
          "tomorrow": "αύριο", "next_week": "την επόμενη εβδομάδα", "soon": "σύντομα"}
_HABITUAL = frozenset({"every_day", "often", "in_the_evening"})
_TIME_AT_END = frozenset({"now", "soon"})  # the others open the clause; 'often' follows the verb
_CONNECTIVE = {"and": "και", "but": "αλλά", "because": "γιατί"}

_VOWELS = frozenset("αεηιουωάέήίόύώϊϋΐΰ")
_ACCENTED = frozenset("άέήίόύώΐΰ")
_ADD_ACCENT = str.maketrans("αεηιουω", "άέήίόύώ")
_NO_SYNIZESIS = frozenset({"εισιτήριο", "εισιτήρια", "μαθήτρια", "μαθήτριες"})  # -ι- + vowel read as two syllables


# ---------------------------------------------------------------------------------------------------------------
# Orthography
# ---------------------------------------------------------------------------------------------------------------

def _nuclei(word: str) -> list[int]:
    """Index of the (accent-bearing) letter of each syllable nucleus: αι/ει/οι/ου/αυ/ευ are one nucleus, and an
    unstressed ι/υ between a consonant and a vowel is a glide (synizesis: κο-ρί-τσια)."""
    out, i = [], 0
    while i < len(word):
        c, nxt = word[i], word[i + 1] if i + 1 < len(word) else ""
        if c not in _VOWELS:
            i += 1
        elif c in "αεο" and nxt in ("ι", "ί", "υ", "ύ"):
            out.append(i + 1)
            i += 2
        elif (c in "ιυ" and nxt in _VOWELS and i > 0 and word[i - 1] not in _VOWELS
              and word not in _NO_SYNIZESIS):
            i += 1
        else:
            out.append(i)
            i += 1
    return out


def _enclitic(word: str) -> str:
    """A word stressed on the antepenult takes a second accent before an enclitic: το αυτοκίνητό μου."""
    nuclei = _nuclei(word)
    stressed = [k for k, i in enumerate(nuclei) if word[i] in _ACCENTED]
    if stressed and len(nuclei) - stressed[0] == 3:
        last = nuclei[-1]
        return word[:last] + word[last].translate(_ADD_ACCENT) + word[last + 1:]
    return word


def _keeps_n(following: str) -> bool:
    """The final -ν of τη(ν)/στη(ν) stays before a vowel and before κ, π, τ, ξ, ψ, μπ, ντ, γκ, τσ, τζ."""
    following = following.lower()
    return following[0] in _VOWELS or following[0] in "κπτξψ" or following[:2] in ("μπ", "ντ", "γκ", "τσ", "τζ")


def _spell(words: list[str]) -> str:
    out = []
    for k, word in enumerate(words):
        if word in ("την", "στην") and k + 1 < len(words) and not _keeps_n(words[k + 1]):
            word = word[:-1]
        out.append(word)
    return " ".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------------------------

def _gender(noun: str) -> str:
    return _NOUNS[noun][0]


def _noun(noun: str, plural: bool, case: str) -> str:
    gender, forms = _NOUNS[noun]
    forms = forms.split()
    if gender == "m":
        return forms[(2 if plural else 0) + (case == "acc")]
    return forms[1 if plural else 0]


def _adjective(lemma: str, gender: str, plural: bool, case: str) -> str:
    masculine, feminine = lemma.split("-")
    stem, oxytone = masculine[:-2], masculine.endswith("ός")
    if gender == "m":
        ending = ("οί", "ούς")[case == "acc"] if plural else ("ός", "ό")[case == "acc"]
    elif gender == "f":
        ending = "ές" if plural else feminine
    else:
        ending = "ά" if plural else "ό"
    if not oxytone:
        ending = ending.translate(str.maketrans("άέήίόύώ", "αεηιουω"))
    return stem + ending


def _adjective_lemma(adjective: str, noun_kind: str, predicative: bool = False) -> str:
    if predicative and adjective in _PREDICATIVE:
        return _PREDICATIVE[adjective]
    return _ADJECTIVES_BY_KIND.get(noun_kind, {}).get(adjective, _ADJECTIVES[adjective])


def _is_plural(np: NounPhrase) -> bool:
    return bool(np.count) or (np.plural and np.noun not in _MASS_NO_PLURAL)


def _noun_phrase(np: NounPhrase, case: str) -> list[str]:
    gender, plural = _gender(np.noun), _is_plural(np)
    words = []
    if np.adjective is not None:
        words.append(_adjective(_adjective_lemma(np.adjective, NOUNS[np.noun].kind), gender, plural, case))
    head = _noun(np.noun, plural, case)
    if np.count:  # 'two Xs' (indefinite, as in the English module)
        number = "δύο" if np.count == 2 else "τρία" if gender == "n" else "τρεις"
        return [number, *words, head]
    if np.possessor is not None:  # definite: ο σκύλος μου, το καινούργιο αυτοκίνητό μου
        return [(_DEFINITE_PL if plural else _DEFINITE)[gender, case], *words, _enclitic(head),
                _POSSESSIVE[np.possessor]]
    if np.definite:
        return [(_DEFINITE_PL if plural else _DEFINITE)[gender, case], *words, head]
    if plural or np.noun in _MASS:  # bare: βλέπει σκύλους, πίνει ζεστό τσάι
        return [*words, head]
    return [_INDEFINITE[gender, case], *words, head]


def _to_place(place: str) -> list[str]:
    """σε + accusative article: στο σχολείο, στην αγορά, στον κήπο."""
    return ["σ" + _DEFINITE[_gender(place), "acc"], _noun(place, False, "acc")]


def _destination(place: str) -> list[str]:
    return ["στο", "σπίτι"] if place == "house" else _to_place(place)


# ---------------------------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------------------------

def _person(subject: NounPhrase | Pronoun) -> int:
    if isinstance(subject, Pronoun):
        return _PERSON_INDEX[subject.person]
    return 5 if _is_plural(subject) else 2


def _subject_agreement(subject: NounPhrase | Pronoun) -> tuple[str, bool, str]:
    """(gender, plural, noun kind) that a predicative adjective agrees with."""
    if isinstance(subject, Pronoun):
        return _PRONOUN_GENDER.get(subject.person, "m"), subject.person in _PLURAL_PERSONS, "person"
    return _gender(subject.noun), _is_plural(subject), NOUNS[subject.noun].kind


def _verb(clause: Clause) -> list[str]:
    """The verbal complex: [δεν] [θα] [object clitic] finite verb."""
    person = _person(clause.subject)
    words = ["δεν"] if clause.negative else []
    if clause.tense == "future":
        words.append("θα")
    if isinstance(clause.object, Pronoun):
        words.append(_CLITIC[clause.object.person])
    if clause.kind in ("state", "location"):
        words.append(_BE["past" if clause.tense == "past" else "present"][person])
        return words
    present, past, subjunctive = _VERBS[clause.verb]
    if clause.tense == "past":
        words.append(past[person])
    elif clause.tense == "future" and clause.verb not in _STATIVE and clause.time not in _HABITUAL:
        words.append(subjunctive[person])
    else:
        words.append(present[person])
    return words


def _complements(clause: Clause) -> list[str]:
    if clause.kind == "state":
        gender, plural, kind = _subject_agreement(clause.subject)
        return [_adjective(_adjective_lemma(clause.adjective, kind, predicative=True), gender, plural, "nom")]
    if clause.kind == "location":
        return _to_place(clause.place)
    words = []
    if isinstance(clause.object, NounPhrase):
        words += _noun_phrase(clause.object, "acc")
    if clause.destination is not None:
        words += _destination(clause.destination)
    if clause.place is not None:
        words += _to_place(clause.place)
    return words


def _clause(clause: Clause, explicit_subject: bool, question: bool = False) -> str:
    if isinstance(clause.subject, Pronoun):
        subject = [_SUBJECT[clause.subject.person]] if explicit_subject else []
    else:
        subject = _noun_phrase(clause.subject, "nom")
    verb, rest = _verb(clause), _complements(clause)
    time = _TIMES[clause.time].split() if clause.time else []
    if question:  # verb first: Διαβάζει η μητέρα την εφημερίδα αύριο;
        often = time if clause.time == "often" else []
        return _spell(verb + subject + often + rest + ([] if often else time))
    if clause.time == "often":  # Η μητέρα μαγειρεύει συχνά σούπα.
        return _spell(subject + verb + time + rest)
    if clause.time in _TIME_AT_END:
        return _spell(subject + verb + rest + time)
    if subject and isinstance(clause.subject, Pronoun):  # Εγώ χθες πήγα ..., αλλά εσύ ...
        return _spell(subject + time + verb + rest)
    return _spell(time + subject + verb + rest)  # Χθες ο πατέρας πήγε στην αγορά.


def _third_person(np: NounPhrase) -> str | None:
    """The pronoun that would refer back to a noun phrase, to tell whether a pronoun subject continues it."""
    if _is_plural(np):
        return "3pl"
    sex = NOUNS[np.noun].sex or {"m": "m", "f": "f"}.get(_gender(np.noun), "")
    return f"3sg_{sex}" if sex else None


def _explicit_subject(clause: Clause, other: Clause | None) -> bool:
    """Greek drops subject pronouns, but keeps them when the two clauses of a sentence have different subjects
    (contrast or a change of topic): Εγώ δουλεύω, αλλά εσύ κοιμάσαι."""
    if other is None or not isinstance(clause.subject, Pronoun) or clause.subject == other.subject:
        return False
    if isinstance(other.subject, NounPhrase) and _third_person(other.subject) == clause.subject.person:
        return False  # most likely the same referent: Η γιαγιά μαγειρεύει γιατί πεινάει.
    return True


def _capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


def realize(sentence: Sentence) -> str:
    if sentence.question:
        return _capitalize(_clause(sentence.clauses[0], False, question=True)) + ";"
    if len(sentence.clauses) == 2:
        first, second = sentence.clauses
        a, b = _clause(first, _explicit_subject(first, second)), _clause(second, _explicit_subject(second, first))
        comma = "," if sentence.connective == "but" else ""
        return _capitalize(f"{a}{comma} {_CONNECTIVE[sentence.connective]} {b}.")
    return _capitalize(_clause(sentence.clauses[0], False)) + "."


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
