"""Modern Standard Arabic (unvocalised) realization of the corpus grammar (see ``semantics.py``).

Grammar implemented: verb-first (VSO) main clauses, the verb singular before a noun subject and agreeing in gender;
pro-drop of pronoun subjects (2sg and 3sg_f keep theirs, their written verb forms being ambiguous); subject-first
clauses after لأن / لكن (accusative subject or attached pronoun: لأنه، لكنها) with full agreement, dual and feminine
plural included; perfect, imperfect indicative, subjunctive (لن) and jussive (لم) paradigms, weak verbs included; the
سـ future; zero copula in the present, كان / يكون / ليس with an accusative predicate, existential هناك for an
indefinite subject; هل questions (أ before a negation: ألم، ألا، ألن، أليس); the article ال, possessive suffixes
(ة > ت, the 'five nouns' أبوه / أباه / أبيه, hamza seats آباؤنا / آباءنا / آبائنا), sound, broken and collective
plurals, the dual, ثلاثة / ثلاث with reverse gender and a genitive plural, the indefinite accusative alif (none on
diptotes), attributive adjectives agreeing in gender, number, case and definiteness (non-human plurals: feminine
singular), attached object pronouns (رآه، يساعدونها، ساعدتموه).
"""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import NOUNS, Clause, NounPhrase, Pronoun, Sentence

LANG = "ar"
SCRIPT = "Arabic"

# ---------------------------------------------------------------------------------------------------------------
# Verbs: paradigms over these agreement keys (2sg is masculine, 3pl masculine unless a feminine noun is the subject)
# ---------------------------------------------------------------------------------------------------------------

_KEYS = ("1sg", "2sg", "3sg_m", "3sg_f", "1pl", "2pl", "3pl", "3pl_f", "3du_m", "3du_f")
_VSO = {"3pl": "3sg_m", "3du_m": "3sg_m", "3pl_f": "3sg_f", "3du_f": "3sg_f"}  # a verb before its subject
_PAST_END = ("ت", "ت", "", "ت", "نا", "تم", "وا", "ن", "ا", "تا")
_PREFIX = ("أ", "ت", "ي", "ت", "ن", "ت", "ي", "ي", "ي", "ت")
_IND_END = ("", "", "", "", "", "ون", "ون", "ن", "ان", "ان")
_SUB_END = ("", "", "", "", "", "وا", "وا", "ن", "ا", "ا")

# sound verbs: (perfect stem, imperfect stem after the person prefix)
_SOUND = {
    "write": ("كتب", "كتب"), "eat": ("أكل", "أكل"), "drink": ("شرب", "شرب"), "find": ("وجد", "جد"),
    "open": ("فتح", "فتح"), "close": ("أغلق", "غلق"), "carry": ("حمل", "حمل"), "help": ("ساعد", "ساعد"),
    "wash": ("غسل", "غسل"), "cook": ("طبخ", "طبخ"), "draw": ("رسم", "رسم"), "work": ("عمل", "عمل"),
    "play": ("لعب", "لعب"), "laugh": ("ضحك", "ضحك"), "wait": ("انتظر", "نتظر"), "run": ("ركض", "ركض"),
    "go": ("ذهب", "ذهب"),
}
# weak, doubled and hamzated verbs, written out: perfect, indicative, subjunctive[, jussive if it differs]
_WEAK = {
    "read": ("قرأت قرأت قرأ قرأت قرأنا قرأتم قرؤوا قرأن قرآ قرأتا",
             "أقرأ تقرأ يقرأ تقرأ نقرأ تقرؤون يقرؤون يقرأن يقرآن تقرآن",
             "أقرأ تقرأ يقرأ تقرأ نقرأ تقرؤوا يقرؤوا يقرأن يقرآ تقرآ"),
    "buy": ("اشتريت اشتريت اشترى اشترت اشترينا اشتريتم اشتروا اشترين اشتريا اشترتا",
            "أشتري تشتري يشتري تشتري نشتري تشترون يشترون يشترين يشتريان تشتريان",
            "أشتري تشتري يشتري تشتري نشتري تشتروا يشتروا يشترين يشتريا تشتريا",
            "أشتر تشتر يشتر تشتر نشتر تشتروا يشتروا يشترين يشتريا تشتريا"),
    "sell": ("بعت بعت باع باعت بعنا بعتم باعوا بعن باعا باعتا",
             "أبيع تبيع يبيع تبيع نبيع تبيعون يبيعون يبعن يبيعان تبيعان",
             "أبيع تبيع يبيع تبيع نبيع تبيعوا يبيعوا يبعن يبيعا تبيعا",
             "أبع تبع يبع تبع نبع تبيعوا يبيعوا يبعن يبيعا تبيعا"),
    "see": ("رأيت رأيت رأى رأت رأينا رأيتم رأوا رأين رأيا رأتا",
            "أرى ترى يرى ترى نرى ترون يرون يرين يريان تريان",
            "أرى ترى يرى ترى نرى تروا يروا يرين يريا تريا",
            "أر تر ير تر نر تروا يروا يرين يريا تريا"),
    "love": ("أحببت أحببت أحب أحبت أحببنا أحببتم أحبوا أحببن أحبا أحبتا",
             "أحب تحب يحب تحب نحب تحبون يحبون يحببن يحبان تحبان",
             "أحب تحب يحب تحب نحب تحبوا يحبوا يحببن يحبا تحبا"),
    "call": ("ناديت ناديت نادى نادت نادينا ناديتم نادوا نادين ناديا نادتا",
             "أنادي تنادي ينادي تنادي ننادي تنادون ينادون ينادين يناديان تناديان",
             "أنادي تنادي ينادي تنادي ننادي تنادوا ينادوا ينادين يناديا تناديا",
             "أناد تناد يناد تناد نناد تنادوا ينادوا ينادين يناديا تناديا"),
    "sing": ("غنيت غنيت غنى غنت غنينا غنيتم غنوا غنين غنيا غنتا",
             "أغني تغني يغني تغني نغني تغنون يغنون يغنين يغنيان تغنيان",
             "أغني تغني يغني تغني نغني تغنوا يغنوا يغنين يغنيا تغنيا",
             "أغن تغن يغن تغن نغن تغنوا يغنوا يغنين يغنيا تغنيا"),
    "sleep": ("نمت نمت نام نامت نمنا نمتم ناموا نمن ناما نامتا",
              "أنام تنام ينام تنام ننام تنامون ينامون ينمن ينامان تنامان",
              "أنام تنام ينام تنام ننام تناموا يناموا ينمن يناما تناما",
              "أنم تنم ينم تنم ننم تناموا يناموا ينمن يناما تناما"),
    # 'come': جاء in the perfect, يأتي in the imperfect (the usual pairing in modern prose)
    "come": ("جئت جئت جاء جاءت جئنا جئتم جاؤوا جئن جاءا جاءتا",
             "آتي تأتي يأتي تأتي نأتي تأتون يأتون يأتين يأتيان تأتيان",
             "آتي تأتي يأتي تأتي نأتي تأتوا يأتوا يأتين يأتيا تأتيا",
             "آت تأت يأت تأت نأت تأتوا يأتوا يأتين يأتيا تأتيا"),
    "return": ("عدت عدت عاد عادت عدنا عدتم عادوا عدن عادا عادتا",
               "أعود تعود يعود تعود نعود تعودون يعودون يعدن يعودان تعودان",
               "أعود تعود يعود تعود نعود تعودوا يعودوا يعدن يعودا تعودا",
               "أعد تعد يعد تعد نعد تعودوا يعودوا يعدن يعودا تعودا"),
    "be": ("كنت كنت كان كانت كنا كنتم كانوا كن كانا كانتا",
           "أكون تكون يكون تكون نكون تكونون يكونون يكن يكونان تكونان",
           "أكون تكون يكون تكون نكون تكونوا يكونوا يكن يكونا تكونا",
           "أكن تكن يكن تكن نكن تكونوا يكونوا يكن يكونا تكونا"),
}
_LAYSA = dict(zip(_KEYS, ("لست", "لست", "ليس", "ليست", "لسنا", "لستم", "ليسوا", "لسن", "ليسا", "ليستا")))


def _paradigm(verb: str) -> dict[str, dict[str, str]]:
    if verb in _WEAK:
        rows = [dict(zip(_KEYS, row.split())) for row in _WEAK[verb]]
        return {"past": rows[0], "ind": rows[1], "sub": rows[2], "jus": rows[-1]}
    past, stem = _SOUND[verb]
    ind = [(p + stem + e).replace("أأ", "آ") for p, e in zip(_PREFIX, _IND_END)]
    sub = [(p + stem + e).replace("أأ", "آ") for p, e in zip(_PREFIX, _SUB_END)]
    return {"past": dict(zip(_KEYS, (past + e for e in _PAST_END))), "ind": dict(zip(_KEYS, ind)),
            "sub": dict(zip(_KEYS, sub)), "jus": dict(zip(_KEYS, sub))}


_PARADIGMS = {verb: _paradigm(verb) for verb in (*_SOUND, *_WEAK)}
# (tense, negative) -> (particle, mood); "س" is prefixed to the verb
_TENSE = {("past", False): ("", "past"), ("past", True): ("لم", "jus"), ("present", False): ("", "ind"),
          ("present", True): ("لا", "ind"), ("future", False): ("س", "ind"), ("future", True): ("لن", "sub")}

# ---------------------------------------------------------------------------------------------------------------
# Pronouns
# ---------------------------------------------------------------------------------------------------------------

_PRONOUN = {"1sg": "أنا", "2sg": "أنت", "3sg_m": "هو", "3sg_f": "هي", "1pl": "نحن", "2pl": "أنتم", "3pl": "هم"}
_SUFFIX = {"1sg": "ي", "2sg": "ك", "3sg_m": "ه", "3sg_f": "ها", "1pl": "نا", "2pl": "كم", "3pl": "هم"}
_REFLEXIVE = {"1sg": "نفسي", "2sg": "نفسك", "1pl": "أنفسنا", "2pl": "أنفسكم"}
_AMBIGUOUS = ("2sg", "3sg_f")  # written verb forms shared with another person: the pronoun is kept


def _attach(form: str, person: str) -> str:
    """A verb form with an attached object pronoun (ساعدوها، ساعدتموه، رآه، يراها، يساعدني)."""
    suffix = "ني" if person == "1sg" else _SUFFIX[person]
    if form.endswith("وا"):
        form = form[:-1]
    elif form.endswith("تم"):
        form += "و"
    elif form.endswith("أى"):
        form = form[:-2] + "آ"
    elif form.endswith("ى"):
        form = form[:-1] + "ا"
    return form + suffix


def _inna(particle: str, person: str) -> str:
    """لأن / لكن with an attached pronoun subject (لأنني، لكنها)."""
    return particle + ("ني" if person == "1sg" else _SUFFIX[person])


# ---------------------------------------------------------------------------------------------------------------
# Nouns: (singular, gender, plural, plural kind). Plural kinds: b broken, m sound masculine (plural = stem),
# f sound feminine, c collective (agrees as masculine singular), x mass noun (no plural: the singular is used).
# ---------------------------------------------------------------------------------------------------------------

_NOUN = {
    "mother": ("أم", "f", "أمهات", "f"), "father": ("أب", "m", "آباء", "b"), "brother": ("أخ", "m", "إخوة", "b"),
    "sister": ("أخت", "f", "أخوات", "f"), "grandmother": ("جدة", "f", "جدات", "f"),
    "grandfather": ("جد", "m", "أجداد", "b"), "boy": ("ولد", "m", "أولاد", "b"), "girl": ("بنت", "f", "بنات", "f"),
    "man": ("رجل", "m", "رجال", "b"), "woman": ("امرأة", "f", "نساء", "b"),
    "teacher": ("معلمة", "f", "معلمات", "f"), "doctor": ("طبيب", "m", "أطباء", "b"),
    "farmer": ("مزارع", "m", "مزارع", "m"), "student": ("طالبة", "f", "طالبات", "f"),
    "neighbour": ("جار", "m", "جيران", "b"), "friend": ("صديقة", "f", "صديقات", "f"),
    "dog": ("كلب", "m", "كلاب", "b"), "cat": ("قطة", "f", "قطط", "b"), "bird": ("طائر", "m", "طيور", "b"),
    "horse": ("حصان", "m", "خيول", "b"), "cow": ("بقرة", "f", "أبقار", "b"),
    "bread": ("خبز", "m", "", "x"), "apple": ("تفاحة", "f", "تفاح", "c"), "fish": ("سمك", "m", "أسماك", "b"),
    "rice": ("أرز", "m", "", "x"), "egg": ("بيضة", "f", "بيض", "c"), "soup": ("حساء", "m", "", "x"),
    "cake": ("كعكة", "f", "كعكات", "f"), "water": ("ماء", "m", "", "x"), "tea": ("شاي", "m", "", "x"),
    "milk": ("حليب", "m", "", "x"), "coffee": ("قهوة", "f", "", "x"),
    "book": ("كتاب", "m", "كتب", "b"), "letter": ("رسالة", "f", "رسائل", "b"),
    "newspaper": ("جريدة", "f", "جرائد", "b"), "story": ("قصة", "f", "قصص", "b"),
    "song": ("أغنية", "f", "أغنيات", "f"), "car": ("سيارة", "f", "سيارات", "f"),
    "bicycle": ("دراجة", "f", "دراجات", "f"), "door": ("باب", "m", "أبواب", "b"),
    "window": ("نافذة", "f", "نوافذ", "b"), "table": ("طاولة", "f", "طاولات", "f"),
    "chair": ("كرسي", "m", "كراسي", "b"), "bag": ("حقيبة", "f", "حقائب", "b"), "key": ("مفتاح", "m", "مفاتيح", "b"),
    "phone": ("هاتف", "m", "هواتف", "b"), "computer": ("حاسوب", "m", "حواسيب", "b"), "ball": ("كرة", "f", "كرات", "f"),
    "flower": ("زهرة", "f", "زهور", "b"), "tree": ("شجرة", "f", "أشجار", "b"), "shirt": ("قميص", "m", "قمصان", "b"),
    "picture": ("صورة", "f", "صور", "b"), "house": ("بيت", "m", "بيوت", "b"), "ticket": ("تذكرة", "f", "تذاكر", "b"),
}
# what is counted: unit nouns for collectives and fish, a measure (+ من + the mass noun) for mass nouns
_UNIT = {"apple": ("تفاحة", "f", "تفاحات", "f"), "egg": ("بيضة", "f", "بيضات", "f"),
         "fish": ("سمكة", "f", "سمكات", "f")}
_CUP, _PLATE = ("كوب", "m", "أكواب", "b"), ("طبق", "m", "أطباق", "b")
_MEASURE = {"bread": ("رغيف", "m", "أرغفة", "b"), "rice": _PLATE, "soup": _PLATE, "water": _CUP, "tea": _CUP,
            "milk": _CUP, "coffee": _CUP}
_DIPTOTE = frozenset({"أحمر", "أبيض", "رسائل", "جرائد", "نوافذ", "حقائب", "مفاتيح", "هواتف", "حواسيب", "تذاكر",
                      "كراسي"})
_MANQUS = frozenset({"غالي", "كراسي"})  # final ي dropped when indefinite (غال، كراس)
_FIVE_NOUNS = {"أب": "أبو", "أخ": "أخو"}

_PLACE = {"school": "المدرسة", "market": "السوق", "city": "المدينة", "village": "القرية", "garden": "الحديقة",
          "hospital": "المستشفى", "library": "المكتبة", "kitchen": "المطبخ", "office": "المكتب",
          "park": "المتنزه", "station": "محطة القطار", "shop": "المتجر", "river": "النهر", "field": "الحقل",
          "house": "البيت"}
_AT = {"river": "عند"}  # default في
_TIMES = {"yesterday": "أمس", "last_week": "في الأسبوع الماضي", "this_morning": "هذا الصباح",
          "every_day": "كل يوم", "often": "غالبا", "now": "الآن", "in_the_evening": "في المساء",
          "tomorrow": "غدا", "next_week": "في الأسبوع القادم", "soon": "قريبا"}

# ---------------------------------------------------------------------------------------------------------------
# Adjectives: (masculine, feminine, human masculine plural ("+": sound -ون), human feminine plural (default: -ات))
# ---------------------------------------------------------------------------------------------------------------

_ADJ = {
    "big": ("كبير", "كبيرة", "كبار"), "small": ("صغير", "صغيرة", "صغار"), "new": ("جديد", "جديدة", "جدد"),
    "old": ("قديم", "قديمة", "قدامى"), "beautiful": ("جميل", "جميلة", "+"), "good": ("جيد", "جيدة", "+"),
    "red": ("أحمر", "حمراء", "حمر", "حمر"), "white": ("أبيض", "بيضاء", "بيض", "بيض"),
    "young": ("شاب", "شابة", "شباب"), "tired": ("متعب", "متعبة", "+"), "happy": ("سعيد", "سعيدة", "سعداء"),
    "hot": ("ساخن", "ساخنة", "+"), "cold": ("بارد", "باردة", "+"), "clean": ("نظيف", "نظيفة", "+"),
    "expensive": ("غالي", "غالية", "+"),
}
_ADJ_FOR_KIND = {("old", "person"): ("مسن", "مسنة", "+"), ("old", "animal"): ("مسن", "مسنة", "+"),
                 ("young", "animal"): ("فتي", "فتية", "فتيان"), ("good", "person"): ("طيب", "طيبة", "+")}


# ---------------------------------------------------------------------------------------------------------------
# Word forms
# ---------------------------------------------------------------------------------------------------------------

def _definite(word: str) -> str:
    return "ال" + (word[1:] if word == "امرأة" else word)


def _indefinite(word: str, case: str) -> str:
    """Indefinite form: the accusative takes the tanween alif except after ة / ء / ى / ات and on diptotes."""
    if word in _MANQUS and word not in _DIPTOTE:
        return word + "ا" if case == "acc" else word[:-1]
    if word in _MANQUS:
        return word if case == "acc" else word[:-1]
    if case == "acc" and word not in _DIPTOTE and not word.endswith(("ة", "ء", "ى", "ات")):
        return word + "ا"
    return word


def _possessed(word: str, case: str, person: str) -> str:
    """Noun + possessive suffix: أمي، سيارتنا، أبوه / أباه / أبيه، آباؤهم / آباءهم / آبائهم."""
    if word in _FIVE_NOUNS:
        return word + "ي" if person == "1sg" else word + {"nom": "و", "acc": "ا", "gen": "ي"}[case] + _SUFFIX[person]
    if word.endswith("ة"):
        word = word[:-1] + "ت"
    elif word.endswith("اء"):
        word = word[:-1] + ("ئ" if person == "1sg" or case == "gen" else "ؤ" if case == "nom" else "ء")
    return word + _SUFFIX[person]


def _form(word: str, sound_masculine: bool, case: str, definite: bool, possessor: str | None) -> str:
    if sound_masculine:  # word is the stem: مزارعون / مزارعين / مزارعوه / مزارعيه / مزارعي
        if possessor:
            return word + ("ي" if possessor == "1sg" else ("و" if case == "nom" else "ي") + _SUFFIX[possessor])
        return ("ال" if definite else "") + word + ("ون" if case == "nom" else "ين")
    if possessor:
        return _possessed(word, case, possessor)
    return _definite(word) if definite else _indefinite(word, case)


def _dual(word: str, case: str) -> str:
    if word in _FIVE_NOUNS:
        stem = _FIVE_NOUNS[word]
    elif word.endswith("ة"):
        stem = word[:-1] + "ت"
    elif word.endswith("اء"):
        stem = word[:-1] + "و"
    else:
        stem = word
    return stem + ("ان" if case == "nom" else "ين")


def _adjective(adjective: str, kind: str, gender: str, number: str, definite: bool, case: str) -> str:
    forms = _ADJ_FOR_KIND.get((adjective, kind), _ADJ[adjective])
    masculine, feminine, masculine_plural = forms[:3]
    if number == "du":
        return ("ال" if definite else "") + _dual(masculine if gender == "m" else feminine, case)
    if number == "pl" and gender == "m" and masculine_plural == "+":
        stem = masculine[:-1] if masculine in _MANQUS else masculine
        return _form(stem, True, case, definite, None)
    if number == "pl":
        word = masculine_plural if gender == "m" else forms[3] if len(forms) > 3 else feminine[:-1] + "ات"
    else:
        word = masculine if gender == "m" else feminine
    return _definite(word) if definite else _indefinite(word, case)


# ---------------------------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------------------------

def _counted_noun(noun: str) -> tuple[str, str, str, str]:
    return _MEASURE.get(noun) or _UNIT.get(noun) or _NOUN[noun]


def _agreement(subject: NounPhrase | Pronoun) -> tuple[str, str, str]:
    """(verb agreement key, gender, number sg/du/pl) of a subject; non-human plurals agree as feminine singular."""
    if isinstance(subject, Pronoun):
        person = subject.person
        return person, "f" if person == "3sg_f" else "m", "pl" if person in ("1pl", "2pl", "3pl") else "sg"
    _, gender, _, plural_kind = _NOUN[subject.noun]
    if subject.count:
        gender = _counted_noun(subject.noun)[1]
        if subject.count == 2:
            return "3du_" + gender, gender, "du"
        plural_kind = _counted_noun(subject.noun)[3]
    elif not subject.plural or plural_kind == "x":
        return "3sg_" + gender, gender, "sg"
    if plural_kind == "c":
        return "3sg_m", "m", "sg"
    if NOUNS[subject.noun].kind == "person":
        return ("3pl" if gender == "m" else "3pl_f"), gender, "pl"
    return "3sg_f", "f", "sg"


def _counted(np: NounPhrase, case: str) -> str:
    """اثنان as the dual (كتابان / كتابين), ثلاثة / ثلاث + genitive plural; mass nouns through a measure word."""
    singular, gender, plural, plural_kind = _counted_noun(np.noun)
    kind = NOUNS[np.noun].kind
    if np.count == 2:
        words = [_dual(singular, case)]
    else:
        words = ["ثلاث" if gender == "f" else "ثلاثة", _form(plural, plural_kind == "m", "gen", False, None)]
    if np.noun in _MEASURE:
        mass, mass_gender = _NOUN[np.noun][:2]
        words += ["من", _definite(mass)]
        if np.adjective:
            words.append(_adjective(np.adjective, kind, mass_gender, "sg", True, "gen"))
    elif np.adjective:
        _, agr_gender, number = _agreement(np)
        words.append(_adjective(np.adjective, kind, agr_gender, number, False, case if np.count == 2 else "gen"))
    return " ".join(words)


def _noun_phrase(np: NounPhrase, case: str, generic: bool = False) -> str:
    if np.count:
        return _counted(np, case)
    singular, _, plural, plural_kind = _NOUN[np.noun]
    definite = np.definite or np.possessor is not None or generic
    if np.plural and plural_kind != "x":
        head = _form(plural, plural_kind == "m", case, definite, np.possessor)
    else:
        head = _form(singular, False, case, definite, np.possessor)
    if not np.adjective:
        return head
    _, gender, number = _agreement(np)
    return f"{head} {_adjective(np.adjective, NOUNS[np.noun].kind, gender, number, definite, case)}"


def _place(place: str) -> str:
    return f"{_AT.get(place, 'في')} {_PLACE[place]}"


# ---------------------------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------------------------

def _verb_group(verb: str, key: str, clause: Clause, question: bool, object_person: str | None = None) -> list[str]:
    particle, mood = _TENSE[(clause.tense, clause.negative)]
    form = _PARADIGMS[verb][mood][key]
    if object_person:
        form = _attach(form, object_person)
    if particle == "س":
        form, particle = "س" + form, ""
    if question:
        particle = "أ" + particle if particle else "هل"
    return [particle, form] if particle else [form]


def _rest(clause: Clause) -> list[str]:
    """Object, destination, place and time after the verb and its subject."""
    words = []
    obj = clause.object
    if isinstance(obj, Pronoun) and obj.person in _REFLEXIVE and obj == clause.subject:
        words.append(_REFLEXIVE[obj.person])
    elif isinstance(obj, NounPhrase):
        generic = clause.verb == "love" and not obj.definite and not obj.count and not obj.possessor
        words.append(_noun_phrase(obj, "acc", generic))  # 'loves tea' = يحب الشاي
    if clause.destination is not None:
        words.append("إلى " + _PLACE[clause.destination])
    if clause.place is not None:
        words.append(_place(clause.place))
    return words


def _clause(clause: Clause, mode: str = "main", question: bool = False) -> str:
    """mode "main": verb-first; mode "لأن" / "لكن": the particle, the subject (accusative or attached), the verb."""
    subject = clause.subject
    person = subject.person if isinstance(subject, Pronoun) else None
    key, gender, number = _agreement(subject)
    kind = "person" if person else NOUNS[subject.noun].kind
    indefinite = not person and not subject.definite and not subject.possessor
    if mode != "main":
        lead = [_inna(mode, person)] if person else [mode, _noun_phrase(subject, "acc")]
    elif person:
        lead = [_PRONOUN[person]] if person in _AMBIGUOUS and not question else []
    else:
        lead = []
    inverted = mode == "main" and not person  # the verb before a noun subject: singular, then the subject
    verb_key = _VSO.get(key, key) if inverted else key
    time = [_TIMES[clause.time]] if clause.time else []

    def predicate(case: str) -> str:
        if clause.kind == "location":
            return _place(clause.place)
        return _adjective(clause.adjective, kind, gender, number, False, case)

    if clause.kind == "action":
        obj = clause.object
        attached = obj.person if isinstance(obj, Pronoun) and not (obj.person in _REFLEXIVE and obj == subject) \
            else None
        words = lead + _verb_group(clause.verb, verb_key, clause, question, attached)
        if inverted:
            words.append(_noun_phrase(subject, "nom"))
        return " ".join(words + _rest(clause) + time)
    if clause.tense == "present" and not clause.negative:  # zero copula (هناك for an indefinite subject)
        ask = ["هل"] if question else []
        if mode != "main":
            return " ".join(lead + [predicate("nom")] + time)
        if person:
            return " ".join(ask + [_PRONOUN[person], predicate("nom")] + time)
        there = ["هناك"] if indefinite else []
        return " ".join(ask + there + [_noun_phrase(subject, "nom"), predicate("nom")] + time)
    if clause.tense == "present":  # ليس + accusative predicate
        if mode != "main":
            return " ".join(lead + [_LAYSA[key], predicate("acc")] + time)
        if indefinite:  # ليست هناك بنت متعبة
            laysa = ("أ" if question else "") + _LAYSA[_VSO.get(key, key)]
            return " ".join([laysa, "هناك", _noun_phrase(subject, "nom"), predicate("nom")] + time)
        if question:
            noun = [] if person else [_noun_phrase(subject, "nom")]
            return " ".join(["أ" + _LAYSA[verb_key]] + noun + [predicate("acc")] + time)
        if person:
            keep = [_PRONOUN[person]] if person in ("2sg", "3sg_m", "3sg_f", "3pl") else []
            return " ".join(keep + [_LAYSA[key], predicate("acc")] + time)
        return " ".join([_noun_phrase(subject, "nom"), _LAYSA[key], predicate("acc")] + time)
    # past and future: كان / يكون + accusative predicate, ordered like a verb
    words = lead + _verb_group("be", verb_key, clause, question)
    if inverted:
        words.append(_noun_phrase(subject, "nom"))
    return " ".join(words + [predicate("acc")] + time)


def realize(sentence: Sentence) -> str:
    if sentence.question:
        return _clause(sentence.clauses[0], question=True) + "؟"
    if len(sentence.clauses) == 1:
        return _clause(sentence.clauses[0]) + "."
    first, second = sentence.clauses
    if sentence.connective == "and":
        return f"{_clause(first)} و{_clause(second)}."
    if sentence.connective == "but":
        return f"{_clause(first)}، {_clause(second, 'لكن')}."
    return f"{_clause(first)} {_clause(second, 'لأن')}."


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
