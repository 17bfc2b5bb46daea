"""Mandarin Chinese realization of the corpus grammar (see ``semantics.py``), in simplified characters: SVO with
preverbal time words and 在-locatives; measure words with numerals (两, not 二) and demonstratives (那本书, 那些书);
bare nouns for kin and titles, 一 + measure word for 'a', 一些 for indefinite plurals, 们 for plural persons only;
possessors with 的 (dropped for close kin: 我妈妈; 我那只漂亮的猫 before a 的-adjective); attributive adjectives bare
(新书, 大狗) or with 的 (漂亮的花); predicative 很 + adjective (是红色的 for colours); aspect: 了 for completed events
(读了那本书, 回家了), 没 for the negated past, 正在 for 'now', 会 for the future, 不 for habitual and stative negation;
有 before indefinite subjects; motion verbs 去/来/回 + place (回家); reflexive 自己; yes/no questions with 吗;
connectives 然后/而且, 但是, 因为; full-width punctuation and no spaces."""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import NOUNS, Clause, NounPhrase, Pronoun, Sentence

LANG = "zh"
SCRIPT = "Han"

# noun id -> (word, measure word)
_NOUNS = {
    "mother": ("妈妈", "个"), "father": ("爸爸", "个"), "brother": ("哥哥", "个"), "sister": ("姐姐", "个"),
    "grandmother": ("奶奶", "个"), "grandfather": ("爷爷", "个"), "boy": ("男孩", "个"), "girl": ("女孩", "个"),
    "man": ("男人", "个"), "woman": ("女人", "个"), "teacher": ("老师", "位"), "doctor": ("医生", "位"),
    "farmer": ("农民", "个"), "student": ("学生", "个"), "neighbour": ("邻居", "个"), "friend": ("朋友", "个"),
    "dog": ("狗", "只"), "cat": ("猫", "只"), "bird": ("鸟", "只"), "horse": ("马", "匹"), "cow": ("牛", "头"),
    "bread": ("面包", "块"), "apple": ("苹果", "个"), "fish": ("鱼", "条"), "rice": ("米饭", "碗"),
    "egg": ("鸡蛋", "个"), "soup": ("汤", "碗"), "cake": ("蛋糕", "块"), "water": ("水", "杯"), "tea": ("茶", "杯"),
    "milk": ("牛奶", "杯"), "coffee": ("咖啡", "杯"),
    "book": ("书", "本"), "letter": ("信", "封"), "newspaper": ("报纸", "份"), "story": ("故事", "个"),
    "song": ("歌", "首"), "car": ("汽车", "辆"), "bicycle": ("自行车", "辆"), "door": ("门", "扇"),
    "window": ("窗户", "扇"), "table": ("桌子", "张"), "chair": ("椅子", "把"), "bag": ("包", "个"),
    "key": ("钥匙", "把"), "phone": ("手机", "部"), "computer": ("电脑", "台"), "ball": ("球", "个"),
    "flower": ("花", "朵"), "tree": ("树", "棵"), "shirt": ("衬衫", "件"), "picture": ("画", "幅"),
    "house": ("房子", "座"), "ticket": ("火车票", "张"),
}
_KIN = frozenset({"mother", "father", "brother", "sister", "grandmother", "grandfather"})  # 我妈妈, not 我的妈妈
_BARE_DEFINITE = _KIN | {"teacher", "doctor"}  # 'the teacher' is just 老师
_MASS = frozenset({"bread", "rice", "water", "tea", "milk", "coffee", "soup", "fish"})  # bare when indefinite
_NUMBER = {2: "两", 3: "三"}

# place id -> (in/at the place, to the place)
_PLACES = {
    "school": ("学校", "学校"), "market": ("市场上", "市场"), "city": ("城里", "城里"), "village": ("村子里", "村子"),
    "garden": ("花园里", "花园"), "hospital": ("医院", "医院"), "library": ("图书馆", "图书馆"),
    "kitchen": ("厨房里", "厨房"), "office": ("办公室", "办公室"), "park": ("公园里", "公园"),
    "station": ("火车站", "火车站"), "shop": ("商店里", "商店"), "river": ("河边", "河边"), "field": ("田里", "田里"),
    "house": ("家", "家"),
}
_TIMES = {"yesterday": "昨天", "last_week": "上个星期", "this_morning": "今天早上", "every_day": "每天",
          "often": "经常", "now": "现在", "in_the_evening": "晚上", "tomorrow": "明天", "next_week": "下个星期",
          "soon": "很快就"}

# adjective -> (attributive, predicative); per-kind overrides below. A predicate starting with 是 takes 不是.
_ADJECTIVES = {
    "big": ("大", "很大"), "small": ("小", "很小"), "new": ("新", "很新"), "old": ("旧", "很旧"),
    "beautiful": ("漂亮的", "很漂亮"), "good": ("好", "很好"), "red": ("红色的", "是红色的"),
    "white": ("白色的", "是白色的"), "young": ("年轻的", "很年轻"), "tired": ("疲惫的", "很累"),
    "happy": ("快乐的", "很高兴"), "hot": ("热", "很热"), "cold": ("冷的", "很凉"), "clean": ("干净的", "很干净"),
    "expensive": ("昂贵的", "很贵"),
}
_ADJECTIVE_FOR_KIND = {
    ("old", "person"): ("年老的", "很老"), ("old", "animal"): ("老", "很老"), ("old", "place"): ("老", "很老"),
    ("good", "person"): ("善良的", "很善良"), ("good", "food"): ("好吃的", "很好吃"),
    ("good", "drink"): ("好喝的", "很好喝"), ("young", "animal"): ("小", "还很小"),
    ("white", "animal"): ("白", "是白色的"), ("beautiful", "place"): ("美丽的", "很美"),
    ("tired", "animal"): ("疲惫的", "很累"),
}

_PLURAL_PERSONS = frozenset({"1pl", "2pl", "3pl"})
_SUBJECT = {"1sg": "我", "2sg": "你", "3sg_m": "他", "3sg_f": "她", "1pl": "我们", "2pl": "你们", "3pl": "他们"}

# verb id -> (plain form, completed past form, 'now' form); {o} is the object or the destination. The 'now' form
# takes 正在 unless it starts with '*' (a durative or stative form: 拿着, 爱).
_VERBS = {
    "read": ("读{o}", "读了{o}", "读{o}"), "write": ("写{o}", "写了{o}", "写{o}"),
    "eat": ("吃{o}", "吃了{o}", "吃{o}"), "drink": ("喝{o}", "喝了{o}", "喝{o}"),
    "buy": ("买{o}", "买了{o}", "买{o}"), "sell": ("卖{o}", "卖了{o}", "卖{o}"),
    "see": ("看见{o}", "看见了{o}", "看{o}"), "find": ("找到{o}", "找到了{o}", "找{o}"),
    "open": ("打开{o}", "打开了{o}", "打开{o}"), "close": ("关上{o}", "关上了{o}", "关{o}"),
    "carry": ("拿{o}", "拿了{o}", "*拿着{o}"), "love": ("喜欢{o}", "喜欢{o}", "*喜欢{o}"),
    "help": ("帮助{o}", "帮助了{o}", "帮助{o}"), "call": ("叫{o}", "叫了{o}", "叫{o}"),
    "wash": ("洗{o}", "洗了{o}", "洗{o}"), "cook": ("做{o}", "做了{o}", "做{o}"),
    "sing": ("唱{o}", "唱了{o}", "唱{o}"), "draw": ("画{o}", "画了{o}", "画{o}"),
    "sleep": ("睡觉", "睡了一觉", "睡觉"), "work": ("工作", "工作了", "工作"), "play": ("玩", "玩了一会儿", "玩"),
    "laugh": ("笑", "笑了", "笑"), "wait": ("等着", "等了一会儿", "等"), "run": ("跑步", "跑步了", "跑步"),
    "go": ("去{o}", "去{o}了", "去{o}的路上"), "come": ("来{o}", "来{o}了", "来{o}的路上"),
    "return": ("回{o}", "回到了{o}", "回{o}的路上"),
}
# (verb, object noun or subject kind) -> the verb that suits better
_VERB_FOR = {
    ("wash", "table"): "擦", ("wash", "window"): "擦", ("cook", "egg"): "煮", ("close", "book"): "合上",
    ("close", "bag"): "合上", ("carry", "chair"): "搬", ("carry", "table"): "搬", ("love", "person"): "爱",
    ("love", "animal"): "爱", ("work", "animal"): "干活", ("run", "animal"): "跑",
}
_STATIVE = frozenset({"love"})  # no 了, negated with 不 in the past too
_CONNECTIVES = {"and": "，而且", "but": "，但是", "because": "，因为"}


# ---------------------------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------------------------

def _kind(np: NounPhrase | Pronoun) -> str:
    return "person" if isinstance(np, Pronoun) else NOUNS[np.noun].kind


def _adjective(adjective: str, kind: str) -> tuple[str, str]:
    return _ADJECTIVE_FOR_KIND.get((adjective, kind), _ADJECTIVES[adjective])


def _noun_phrase(np: NounPhrase, negated: bool = False) -> str:
    """A noun phrase; ``negated``: the object of a negated verb, where 'a X' is a bare noun (没买苹果)."""
    word, measure = _NOUNS[np.noun]
    kind = NOUNS[np.noun].kind
    attribute = _adjective(np.adjective, kind)[0] if np.adjective else ""
    person = kind == "person"
    plural = np.plural or bool(np.count)
    head = attribute + word
    if np.count:
        return _NUMBER[np.count] + measure + head
    if np.possessor:
        owner = _SUBJECT[np.possessor]
        if np.noun in _KIN and not plural and np.possessor not in _PLURAL_PERSONS:
            return owner + head  # 我妈妈, 我年老的爸爸 (but 我们的妈妈)
        if attribute.endswith("的"):  # 我那只漂亮的猫 rather than 我的漂亮的猫
            return owner + ("那些" if plural and not person else "那" + measure) + head + ("们" if plural and person
                                                                                          else "")
        return owner + "的" + head + ("们" if plural and person else "")
    if np.definite:
        if plural:
            return head + "们" if person else "那些" + head
        if np.noun in _BARE_DEFINITE and not attribute:
            return head
        return "那" + measure + head
    if plural:
        return head if negated else "一些" + head
    if np.noun in _MASS or negated:
        return head
    return "一" + measure + head


def _indefinite(np: NounPhrase | Pronoun) -> bool:
    return isinstance(np, NounPhrase) and not np.possessor and (bool(np.count) or not np.definite)


def _object(clause: Clause) -> str:
    obj = clause.object
    if obj is None:
        return ""
    if isinstance(obj, Pronoun):
        if isinstance(clause.subject, Pronoun) and clause.subject.person == obj.person:
            return "自己"
        return _SUBJECT[obj.person]
    return _noun_phrase(obj, negated=clause.negative)


# ---------------------------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------------------------

def _verb_forms(clause: Clause) -> tuple[str, str, str]:
    plain, past, now = _VERBS[clause.verb]
    obj = clause.object
    noun = obj.noun if isinstance(obj, NounPhrase) else None
    special = _VERB_FOR.get((clause.verb, noun)) or _VERB_FOR.get((clause.verb, _kind(obj) if obj else None)) \
        or _VERB_FOR.get((clause.verb, _kind(clause.subject)))
    if clause.verb == "call" and obj is not None and _kind(obj) == "person":  # phone someone: 给她打电话
        return "给{o}打电话", "给{o}打了电话", "给{o}打电话"
    if clause.verb == "wash" and obj is not None and _kind(obj) == "animal":  # bathe the dog: 给狗洗澡
        return "给{o}洗澡", "给{o}洗了澡", "给{o}洗澡"
    if clause.verb == "carry" and _kind(clause.subject) == "animal":  # in the mouth, or on the back
        verb = "驮" if isinstance(clause.subject, NounPhrase) and clause.subject.noun in ("horse", "cow") else "叼"
        return verb + "{o}", verb + "了{o}", "*" + verb + "着{o}"
    if special:
        old = plain.split("{")[0]
        plain, past, now = (form.replace(old, special, 1) for form in (plain, past, now))
        if clause.verb == "run":  # an animal runs about
            past = "跑了一会儿"
    return plain, past, now


def _predicate(clause: Clause) -> tuple[str, str]:
    """(preverbal auxiliary or negation, the verb phrase with its 在-place) of an action clause."""
    plain, past, now = _verb_forms(clause)
    target = _object(clause)
    if clause.destination is not None:
        target = _PLACES[clause.destination][1]
        if clause.destination == "house":  # go/come/return home: 回家
            plain, past, now = "回{o}", "回{o}了", "回{o}的路上"
    place = "在" + _PLACES[clause.place][0] if clause.place else ""
    if clause.negative:  # the durative 着 of 等着 does not follow a negation
        plain = plain.replace("着", "")
    motion = clause.destination is not None
    if clause.tense == "future":
        return ("不会" if clause.negative else "会"), place + plain.format(o=target)
    if clause.tense == "past" and clause.verb not in _STATIVE:
        if clause.negative:
            return "没", place + plain.format(o=target)
        return "", place + past.format(o=target)
    if clause.time == "now" and not motion or clause.time == "now" and not clause.negative:
        if now.startswith("*"):
            return ("不" if clause.negative else ""), place + now[1:].format(o=target)
        if clause.negative:
            return "没", (place or "在") + now.format(o=target)
        return ("正" + place if place else "正在"), now.format(o=target)
    return ("不" if clause.negative else ""), place + plain.format(o=target)


def _state(clause: Clause) -> tuple[str, str]:
    if clause.kind == "location":
        predicate = "在" + _PLACES[clause.place][0]
        if clause.tense == "future":
            return ("不会" if clause.negative else "会"), predicate
        return ("不" if clause.negative else ""), predicate
    predicate = _adjective(clause.adjective, _kind(clause.subject))[1]
    if clause.tense == "future":
        predicate = predicate.removeprefix("还")  # 还很小 'still small' -> 会很小
    if clause.negative:  # 不累, 不小, 不是红色的
        bare = predicate.removeprefix("还").removeprefix("很")
        return ("不会" if clause.tense == "future" else "不"), bare
    return ("会" if clause.tense == "future" else ""), predicate


def _clause(clause: Clause) -> str:
    if isinstance(clause.subject, Pronoun):
        subject = _SUBJECT[clause.subject.person]
    else:
        subject = _noun_phrase(clause.subject)
    if clause.kind == "action":
        auxiliary, rest = _predicate(clause)
    else:
        auxiliary, rest = _state(clause)
    time = _TIMES[clause.time] if clause.time else ""
    if clause.time == "soon" and clause.negative:  # 'will not … soon': 暂时不会
        time = "暂时"
    if _indefinite(clause.subject):  # 'a girl …': 昨天有一个女孩去了学校
        if time and clause.time != "soon":
            return time + "有" + subject + auxiliary + rest
        return "有" + subject + time + auxiliary + rest
    return subject + time + auxiliary + rest


def _and(clauses: Sequence[Clause]) -> str:
    """'and': 然后 between two events in a story or a plan, 而且 otherwise."""
    if all(c.kind == "action" and c.verb not in _STATIVE for c in clauses) and clauses[0].tense != "present":
        return "，然后"
    return _CONNECTIVES["and"]


def realize(sentence: Sentence) -> str:
    if sentence.question:
        return _clause(sentence.clauses[0]) + "吗？"
    if len(sentence.clauses) == 2:
        first, second = (_clause(c) for c in sentence.clauses)
        connective = _and(sentence.clauses) if sentence.connective == "and" else _CONNECTIVES[sentence.connective]
        return first + connective + second + "。"
    return _clause(sentence.clauses[0]) + "。"


def join(sentences: Sequence[str]) -> str:
    return "".join(sentences)
