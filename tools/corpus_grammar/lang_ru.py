"""Russian realization of the corpus grammar (see ``semantics.py``).

Implements: three genders and animacy (animate accusative = genitive), the cases the plans need (nominative,
accusative, genitive, dative after 'помогать', prepositional after в/на for places, accusative of destination),
singular/plural noun declension from lexicon tables, long-form adjective declension generated from the lemma (hard,
velar, sibilant and stressed '-ой' stems) with agreement in gender/number/case/animacy, possessives мой/твой/наш/ваш
(and reflexive свой when the owner is the subject) versus invariable его/её/их, numerals два/две/три
with the genitive singular (adjective in the genitive plural, nominative plural with feminine nouns), present tense of
imperfective verbs, past tense agreeing in gender/number with perfective forms for completed events (imperfective
under negation where Russian prefers it), perfective or 'буду' + infinitive future, zero copula in the present,
был/была/было/были and буду/будет, predicative adjectives (long form; instrumental after the past/future copula;
short form 'счастлив'; 'устал'), negated location with the genitive ('Мамы нет дома'), unidirectional vs
multidirectional motion verbs (иду/хожу), yes/no questions by '?' only, and commas before и/но/потому что.
There are no articles: definite and indefinite phrases are realized alike. 'я'/'ты' agree as masculine.
"""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import NOUNS, Clause, NounPhrase, Pronoun, Sentence

LANG = "ru"
SCRIPT = "Cyrillic"

# noun id -> (gender, animate, "nom gen dat acc" singular, "nom gen dat" plural or "" for mass nouns)
_NOUNS: dict[str, tuple[str, bool, str, str]] = {
    "mother": ("f", True, "мама мамы маме маму", "мамы мам мамам"),
    "father": ("m", True, "папа папы папе папу", "папы пап папам"),
    "brother": ("m", True, "брат брата брату брата", "братья братьев братьям"),
    "sister": ("f", True, "сестра сестры сестре сестру", "сёстры сестёр сёстрам"),
    "grandmother": ("f", True, "бабушка бабушки бабушке бабушку", "бабушки бабушек бабушкам"),
    "grandfather": ("m", True, "дедушка дедушки дедушке дедушку", "дедушки дедушек дедушкам"),
    "boy": ("m", True, "мальчик мальчика мальчику мальчика", "мальчики мальчиков мальчикам"),
    "girl": ("f", True, "девочка девочки девочке девочку", "девочки девочек девочкам"),
    "man": ("m", True, "мужчина мужчины мужчине мужчину", "мужчины мужчин мужчинам"),
    "woman": ("f", True, "женщина женщины женщине женщину", "женщины женщин женщинам"),
    "teacher": ("f", True, "учительница учительницы учительнице учительницу", "учительницы учительниц учительницам"),
    "doctor": ("m", True, "врач врача врачу врача", "врачи врачей врачам"),
    "farmer": ("m", True, "фермер фермера фермеру фермера", "фермеры фермеров фермерам"),
    "student": ("f", True, "студентка студентки студентке студентку", "студентки студенток студенткам"),
    "neighbour": ("m", True, "сосед соседа соседу соседа", "соседи соседей соседям"),
    "friend": ("f", True, "подруга подруги подруге подругу", "подруги подруг подругам"),
    "dog": ("f", True, "собака собаки собаке собаку", "собаки собак собакам"),
    "cat": ("f", True, "кошка кошки кошке кошку", "кошки кошек кошкам"),
    "bird": ("f", True, "птица птицы птице птицу", "птицы птиц птицам"),
    "horse": ("f", True, "лошадь лошади лошади лошадь", "лошади лошадей лошадям"),
    "cow": ("f", True, "корова коровы корове корову", "коровы коров коровам"),
    "bread": ("m", False, "хлеб хлеба хлебу хлеб", ""),
    "apple": ("n", False, "яблоко яблока яблоку яблоко", "яблоки яблок яблокам"),
    "fish": ("f", False, "рыба рыбы рыбе рыбу", ""),  # fish as food: inanimate, mass (but 'три рыбы')
    "rice": ("m", False, "рис риса рису рис", ""),
    "egg": ("n", False, "яйцо яйца яйцу яйцо", "яйца яиц яйцам"),
    "soup": ("m", False, "суп супа супу суп", ""),
    "cake": ("m", False, "торт торта торту торт", "торты тортов тортам"),
    "water": ("f", False, "вода воды воде воду", ""),
    "tea": ("m", False, "чай чая чаю чай", ""),
    "milk": ("n", False, "молоко молока молоку молоко", ""),
    "coffee": ("m", False, "кофе кофе кофе кофе", ""),  # indeclinable, masculine
    "book": ("f", False, "книга книги книге книгу", "книги книг книгам"),
    "letter": ("n", False, "письмо письма письму письмо", "письма писем письмам"),
    "newspaper": ("f", False, "газета газеты газете газету", "газеты газет газетам"),
    "story": ("m", False, "рассказ рассказа рассказу рассказ", "рассказы рассказов рассказам"),
    "song": ("f", False, "песня песни песне песню", "песни песен песням"),
    "car": ("f", False, "машина машины машине машину", "машины машин машинам"),
    "bicycle": ("m", False, "велосипед велосипеда велосипеду велосипед", "велосипеды велосипедов велосипедам"),
    "door": ("f", False, "дверь двери двери дверь", "двери дверей дверям"),
    "window": ("n", False, "окно окна окну окно", "окна окон окнам"),
    "table": ("m", False, "стол стола столу стол", "столы столов столам"),
    "chair": ("m", False, "стул стула стулу стул", "стулья стульев стульям"),
    "bag": ("f", False, "сумка сумки сумке сумку", "сумки сумок сумкам"),
    "key": ("m", False, "ключ ключа ключу ключ", "ключи ключей ключам"),
    "phone": ("m", False, "телефон телефона телефону телефон", "телефоны телефонов телефонам"),
    "computer": ("m", False, "компьютер компьютера компьютеру компьютер", "компьютеры компьютеров компьютерам"),
    "ball": ("m", False, "мяч мяча мячу мяч", "мячи мячей мячам"),
    "flower": ("m", False, "цветок цветка цветку цветок", "цветы цветов цветам"),
    "tree": ("n", False, "дерево дерева дереву дерево", "деревья деревьев деревьям"),
    "shirt": ("f", False, "рубашка рубашки рубашке рубашку", "рубашки рубашек рубашкам"),
    "picture": ("f", False, "картина картины картине картину", "картины картин картинам"),
    "house": ("m", False, "дом дома дому дом", "дома домов домам"),
    "ticket": ("m", False, "билет билета билету билет", "билеты билетов билетам"),
}
_CASES = ("nom", "gen", "dat", "acc")

# place id -> (in/at the place, to the place)
_PLACES = {
    "school": ("в школе", "в школу"), "market": ("на рынке", "на рынок"), "city": ("в городе", "в город"),
    "village": ("в деревне", "в деревню"), "garden": ("в саду", "в сад"), "hospital": ("в больнице", "в больницу"),
    "library": ("в библиотеке", "в библиотеку"), "kitchen": ("на кухне", "на кухню"), "office": ("в офисе", "в офис"),
    "park": ("в парке", "в парк"), "station": ("на вокзале", "на вокзал"), "shop": ("в магазине", "в магазин"),
    "river": ("на реке", "на реку"), "field": ("в поле", "в поле"), "house": ("дома", "домой"),
}

_ADJECTIVES = {
    "big": "большой", "small": "маленький", "new": "новый", "old": "старый", "beautiful": "красивый",
    "good": "хороший", "red": "красный", "white": "белый", "young": "молодой", "tired": "усталый",
    "happy": "счастливый", "hot": "горячий", "cold": "холодный", "clean": "чистый", "expensive": "дорогой",
}
# predicates that are not the long adjective: short forms (m, f, n, pl) and 'устал' (a resultative past form)
_SHORT = {"happy": ("счастлив", "счастлива", "счастливо", "счастливы")}
_TIRED_NOW = ("устал", "устала", "устало", "устали")

# pronouns: nominative, accusative (= genitive), dative
_PRONOUNS = {
    "1sg": ("я", "меня", "мне"), "2sg": ("ты", "тебя", "тебе"), "3sg_m": ("он", "его", "ему"),
    "3sg_f": ("она", "её", "ей"), "1pl": ("мы", "нас", "нам"), "2pl": ("вы", "вас", "вам"),
    "3pl": ("они", "их", "им"),
}
# person -> (present/future index, past gender/number) ; 'я' and 'ты' agree as masculine
_PERSON = {"1sg": (0, "m"), "2sg": (1, "m"), "3sg_m": (2, "m"), "3sg_f": (2, "f"), "1pl": (3, "pl"),
           "2pl": (4, "pl"), "3pl": (5, "pl")}
_POSSESSIVE_STEM = {"1sg": "мо", "2sg": "тво", "1pl": "наш", "2pl": "ваш"}  # declined like мой / наш
_POSSESSIVE_FIXED = {"3sg_m": "его", "3sg_f": "её", "3pl": "их"}

_BE_FUTURE = ("буду", "будешь", "будет", "будем", "будете", "будут")
_BE_PAST = {"m": "был", "f": "была", "n": "было", "pl": "были"}


def _conj(forms: str) -> tuple[str, ...]:
    return tuple(forms.split())


class _Verb:
    """Imperfective infinitive and present; past (masculine form) for a plain and a negated event; perfective future
    (None: 'буду' + infinitive); whether a negated future uses 'буду' + infinitive; the case of the object."""

    def __init__(self, inf: str, present: str, past: str, neg_past: str | None = None, future: str | None = None,
                 neg_future_imperfective: bool = False, object_case: str = "acc") -> None:
        self.inf, self.present, self.past = inf, _conj(present), past
        self.neg_past = neg_past or past
        self.future = _conj(future) if future else None
        self.neg_future_imperfective = neg_future_imperfective
        self.object_case = object_case


_VERBS = {
    "read": _Verb("читать", "читаю читаешь читает читаем читаете читают", "прочитал", "читал",
                  "прочитаю прочитаешь прочитает прочитаем прочитаете прочитают", True),
    "write": _Verb("писать", "пишу пишешь пишет пишем пишете пишут", "написал", "писал",
                   "напишу напишешь напишет напишем напишете напишут", True),
    "eat": _Verb("есть", "ем ешь ест едим едите едят", "съел", "ел", "съем съешь съест съедим съедите съедят", True),
    "drink": _Verb("пить", "пью пьёшь пьёт пьём пьёте пьют", "выпил", "пил",
                   "выпью выпьешь выпьет выпьем выпьете выпьют", True),
    "buy": _Verb("покупать", "покупаю покупаешь покупает покупаем покупаете покупают", "купил", None,
                 "куплю купишь купит купим купите купят"),
    "sell": _Verb("продавать", "продаю продаёшь продаёт продаём продаёте продают", "продал", None,
                  "продам продашь продаст продадим продадите продадут"),
    "see": _Verb("видеть", "вижу видишь видит видим видите видят", "увидел", "видел",
                 "увижу увидишь увидит увидим увидите увидят"),
    "find": _Verb("находить", "нахожу находишь находит находим находите находят", "нашёл", None,
                  "найду найдёшь найдёт найдём найдёте найдут"),
    "open": _Verb("открывать", "открываю открываешь открывает открываем открываете открывают", "открыл", None,
                  "открою откроешь откроет откроем откроете откроют"),
    "close": _Verb("закрывать", "закрываю закрываешь закрывает закрываем закрываете закрывают", "закрыл", None,
                   "закрою закроешь закроет закроем закроете закроют"),
    "carry": _Verb("нести", "несу несёшь несёт несём несёте несут", "нёс", None,
                   "понесу понесёшь понесёт понесём понесёте понесут"),
    "love": _Verb("любить", "люблю любишь любит любим любите любят", "любил"),
    "help": _Verb("помогать", "помогаю помогаешь помогает помогаем помогаете помогают", "помог", None,
                  "помогу поможешь поможет поможем поможете помогут", object_case="dat"),
    "call": _Verb("звать", "зову зовёшь зовёт зовём зовёте зовут", "позвал", None,
                  "позову позовёшь позовёт позовём позовёте позовут"),
    "wash": _Verb("мыть", "мою моешь моет моем моете моют", "помыл", "мыл",
                  "помою помоешь помоет помоем помоете помоют", True),
    "cook": _Verb("готовить", "готовлю готовишь готовит готовим готовите готовят", "приготовил", "готовил",
                  "приготовлю приготовишь приготовит приготовим приготовите приготовят", True),
    "sing": _Verb("петь", "пою поёшь поёт поём поёте поют", "спел", "пел", "спою споёшь споёт споём споёте споют",
                  True),
    "draw": _Verb("рисовать", "рисую рисуешь рисует рисуем рисуете рисуют", "нарисовал", "рисовал",
                  "нарисую нарисуешь нарисует нарисуем нарисуете нарисуют", True),
    "sleep": _Verb("спать", "сплю спишь спит спим спите спят", "спал"),
    "work": _Verb("работать", "работаю работаешь работает работаем работаете работают", "работал"),
    "play": _Verb("играть", "играю играешь играет играем играете играют", "играл"),
    "laugh": _Verb("смеяться", "смеюсь смеёшься смеётся смеёмся смеётесь смеются", "засмеялся", "смеялся"),
    "wait": _Verb("ждать", "жду ждёшь ждёт ждём ждёте ждут", "ждал"),
    "run": _Verb("бегать", "бегаю бегаешь бегает бегаем бегаете бегают", "бегал"),
    "go": _Verb("идти", "иду идёшь идёт идём идёте идут", "пошёл", None, "пойду пойдёшь пойдёт пойдём пойдёте пойдут"),
    "come": _Verb("приходить", "прихожу приходишь приходит приходим приходите приходят", "пришёл", None,
                  "приду придёшь придёт придём придёте придут"),
    "return": _Verb("возвращаться",
                    "возвращаюсь возвращаешься возвращается возвращаемся возвращаетесь возвращаются", "вернулся",
                    None, "вернусь вернёшься вернётся вернёмся вернётесь вернутся"),
}
# habitual present of the unidirectional motion verbs (хожу vs иду, ношу vs несу)
_HABITUAL = {"go": _conj("хожу ходишь ходит ходим ходите ходят"),
             "carry": _conj("ношу носишь носит носим носите носят")}
_HABITUAL_TIMES = frozenset({"every_day", "often", "in_the_evening"})

_TIMES = {"yesterday": "вчера", "last_week": "на прошлой неделе", "this_morning": "сегодня утром",
          "every_day": "каждый день", "often": "часто", "now": "сейчас", "in_the_evening": "по вечерам",
          "tomorrow": "завтра", "next_week": "на следующей неделе", "soon": "скоро"}
_MID_TIMES = frozenset({"often"})  # placed after the subject rather than at the start
_CONNECTIVES = {"and": "и", "but": "но", "because": "потому что"}


# ------------------------------------------------------------------------------------------------------------------
# Morphology
# ------------------------------------------------------------------------------------------------------------------

def _adjective(lemma: str, gnum: str, case: str, animate: bool) -> str:
    """Long-form adjective in gender/number ``gnum`` (m, f, n, pl) and ``case`` (nom, gen, dat, acc, ins)."""
    stem, stressed = lemma[:-2], lemma.endswith("ой")
    i = "и" if stem[-1] in "кгхжшчщ" else "ы"
    o = "е" if stem[-1] in "жшчщ" and not stressed else "о"
    if case == "acc":
        if gnum == "f":
            return stem + "ую"
        case = "gen" if animate and gnum in ("m", "pl") else "nom"
    table = {
        "m": {"nom": lemma, "gen": stem + o + "го", "dat": stem + o + "му", "ins": stem + i + "м"},
        "n": {"nom": stem + o + "е", "gen": stem + o + "го", "dat": stem + o + "му", "ins": stem + i + "м"},
        "f": {"nom": stem + "ая", "gen": stem + o + "й", "dat": stem + o + "й", "ins": stem + o + "й"},
        "pl": {"nom": stem + i + "е", "gen": stem + i + "х", "dat": stem + i + "м", "ins": stem + i + "ми"},
    }
    return table[gnum][case]


def _possessive(person: str, gnum: str, case: str, animate: bool, reflexive: bool) -> str:
    """мой/твой/свой (stem + й/я/ё/и) and наш/ваш (stem + ∅/а/е/и), declined; его/её/их do not change."""
    if not reflexive and person in _POSSESSIVE_FIXED:
        return _POSSESSIVE_FIXED[person]
    stem = "сво" if reflexive else _POSSESSIVE_STEM[person]
    soft = stem.endswith("о")
    if case == "acc":
        if gnum == "f":
            return stem + ("ю" if soft else "у")
        case = "gen" if animate and gnum in ("m", "pl") else "nom"
    if gnum == "pl":
        return stem + {"nom": "и", "gen": "их", "dat": "им"}[case]
    if gnum == "f":
        return stem + ("я" if soft else "а") if case == "nom" else stem + "ей"
    if case == "nom":
        return stem + ("й" if gnum == "m" else "ё") if soft else stem + ("" if gnum == "m" else "е")
    return stem + {"gen": "его", "dat": "ему"}[case]


def _noun(noun: str, plural: bool, case: str) -> str:
    _, animate, singular, plural_forms = _NOUNS[noun]
    if not plural or not plural_forms:
        return dict(zip(_CASES, singular.split()))[case]
    forms = dict(zip(_CASES, plural_forms.split()))
    if case == "acc":
        return forms["gen" if animate else "nom"]
    return forms[case]


def _is_plural(np: NounPhrase) -> bool:
    """Plural for agreement: counted phrases and plurals of count nouns (a mass noun in the plural stays singular)."""
    return bool(np.count) or (np.plural and bool(_NOUNS[np.noun][3]))


def _numeral(count: int, gender: str, case: str) -> str:
    if case in ("nom", "acc"):
        return ("две" if gender == "f" else "два") if count == 2 else "три"
    return {("gen", 2): "двух", ("gen", 3): "трёх", ("dat", 2): "двум", ("dat", 3): "трём"}[case, count]


def _noun_phrase(np: NounPhrase | Pronoun, case: str, owner: str | None = None) -> str:
    """``np`` in ``case`` (nom, gen, dat, acc); ``owner`` is the subject's person, for reflexive свой."""
    if isinstance(np, Pronoun):
        nom, acc, dat = _PRONOUNS[np.person]
        return {"nom": nom, "acc": acc, "gen": acc, "dat": dat}[case]
    gender, animate, _, _ = _NOUNS[np.noun]
    adjective = _ADJECTIVES.get(np.adjective or "")
    if np.count:
        if case == "nom" or case == "acc" and not animate:  # два/две/три + genitive singular
            words = [_numeral(np.count, gender, "nom")]
            if adjective:
                words.append(_adjective(adjective, "pl", "nom" if gender == "f" else "gen", animate))
            return " ".join([*words, _noun(np.noun, False, "gen")])
        num_case = "gen" if case == "acc" else case  # двух/трёх (animate accusative), двум/трём
        words = [_numeral(np.count, gender, num_case)]
        if adjective:
            words.append(_adjective(adjective, "pl", num_case, animate))
        return " ".join([*words, _noun(np.noun, True, num_case)])
    plural = _is_plural(np)
    gnum = "pl" if plural else gender
    words = []
    if np.possessor:
        reflexive = owner == np.possessor
        words.append(_possessive(np.possessor, gnum, case, animate, reflexive))
    if adjective:
        words.append(_adjective(adjective, gnum, case, animate))
    return " ".join([*words, _noun(np.noun, plural, case)])


def _person_of(subject: NounPhrase | Pronoun) -> str | None:
    """The subject as a person of PERSONS (persons only), so that 'she found her key' gets свой."""
    if isinstance(subject, Pronoun):
        return subject.person
    if _NOUNS[subject.noun][1] and NOUNS[subject.noun].kind == "person":
        return "3pl" if _is_plural(subject) else "3sg_" + NOUNS[subject.noun].sex
    return None


def _agreement(subject: NounPhrase | Pronoun) -> tuple[int, str]:
    """(person index 0-5 for present/future forms, gender/number m/f/n/pl for past forms and adjectives)."""
    if isinstance(subject, Pronoun):
        return _PERSON[subject.person]
    if _is_plural(subject):
        return 5, "pl"
    return 2, _NOUNS[subject.noun][0]


def _past(masculine: str, gnum: str) -> str:
    """Past tense from the masculine form: прочитал(а/о/и), нёс/несла, нашёл/нашла, помог/помогла, вернулся/-лась."""
    if masculine.endswith("ся"):
        stem, suffix = masculine[:-2], ("ся", "сь", "сь", "сь")
    else:
        stem, suffix = masculine, ("", "", "", "")
        if masculine.endswith("ёл"):
            stem = masculine[:-2] + "л"
        elif not masculine.endswith("л"):
            stem = masculine.replace("ё", "е") + "л"
    index = ("m", "f", "n", "pl").index(gnum)
    if index == 0:
        return masculine
    return stem + ("а", "о", "и")[index - 1] + suffix[index]


# ------------------------------------------------------------------------------------------------------------------
# Clauses
# ------------------------------------------------------------------------------------------------------------------

def _verb_phrase(clause: Clause, person: int, gnum: str) -> str:
    verb = _VERBS[clause.verb]
    neg = "не " if clause.negative else ""
    if clause.tense == "present":
        forms = _HABITUAL[clause.verb] if clause.verb in _HABITUAL and clause.time in _HABITUAL_TIMES \
            else verb.present
        return neg + forms[person]
    if clause.tense == "past":
        return neg + _past(verb.neg_past if clause.negative else verb.past, gnum)
    if verb.future is None or clause.negative and verb.neg_future_imperfective:
        return f"{neg}{_BE_FUTURE[person]} {verb.inf}"
    return neg + verb.future[person]


def _place_words(clause: Clause) -> list[str]:
    words = []
    if clause.destination is not None:
        words.append(_PLACES[clause.destination][1])
    if clause.place is not None:
        words.append(_PLACES[clause.place][0])
    return words


def _state(clause: Clause, subject: str, person: int, gnum: str) -> list[str]:
    neg = ["не"] if clause.negative else []
    adjective = clause.adjective
    animate = isinstance(clause.subject, Pronoun) or _NOUNS[clause.subject.noun][1]
    copula = [] if clause.tense == "present" else \
        [_BE_PAST[gnum]] if clause.tense == "past" else [_BE_FUTURE[person]]
    if adjective in _SHORT:
        predicate = _SHORT[adjective][("m", "f", "n", "pl").index(gnum)]
    elif adjective == "tired" and clause.tense == "present":
        predicate = _TIRED_NOW[("m", "f", "n", "pl").index(gnum)]
    else:  # long form: nominative with the zero copula, instrumental after был/буду
        case = "nom" if clause.tense == "present" else "ins"
        predicate = _adjective(_ADJECTIVES[adjective], gnum, case, animate)
    return [subject, *neg, *copula, predicate]


def _location(clause: Clause, person: int, gnum: str) -> list[str]:
    place = _PLACES[clause.place][0]
    if clause.negative:  # 'Мамы нет дома', 'Мамы не было дома', 'Мамы не будет дома'
        negated = {"present": "нет", "past": "не было", "future": "не будет"}[clause.tense]
        return [_noun_phrase(clause.subject, "gen"), negated, place]
    copula = [] if clause.tense == "present" else \
        [_BE_PAST[gnum]] if clause.tense == "past" else [_BE_FUTURE[person]]
    return [_noun_phrase(clause.subject, "nom"), *copula, place]


def _clause(clause: Clause) -> str:
    person, gnum = _agreement(clause.subject)
    subject = _noun_phrase(clause.subject, "nom")
    if clause.kind == "state":
        words = _state(clause, subject, person, gnum)
    elif clause.kind == "location":
        words = _location(clause, person, gnum)
    else:
        words = [subject, _verb_phrase(clause, person, gnum)]
        if clause.object is not None:
            words.append(_noun_phrase(clause.object, _VERBS[clause.verb].object_case,
                                      _person_of(clause.subject)))
        words += _place_words(clause)
    if clause.time is not None:
        if clause.time in _MID_TIMES:
            words.insert(1, _TIMES[clause.time])
        else:
            words.insert(0, _TIMES[clause.time])
    return " ".join(words)


def realize(sentence: Sentence) -> str:
    if sentence.question:
        text = _clause(sentence.clauses[0]) + "?"
    elif len(sentence.clauses) == 2:
        first, second = (_clause(c) for c in sentence.clauses)
        text = f"{first}, {_CONNECTIVES[sentence.connective]} {second}."
    else:
        text = _clause(sentence.clauses[0]) + "."
    return text[0].upper() + text[1:]


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
