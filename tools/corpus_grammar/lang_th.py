"""Thai realization of the corpus grammar (see ``semantics.py``): SVO with no inflection; classifiers with numerals
(หนังสือสองเล่ม, แมวสามตัว) and with the demonstrative for 'the' (หนังสือเล่มนั้น, plural เหล่านั้น), bare nouns for
kin, titles and indefinites (N + classifier + หนึ่ง for an indefinite subject); adjectives after the noun (บ้านใหญ่,
รถสีแดง; ที่เหนื่อย as a relative) and as predicates without a copula; possessors with ของ (dropped for kin: แม่ฉัน);
aspect and mood particles: แล้ว for a completed past with no past time word, ไม่ได้ for the negated past, กำลัง for
'now', จะ for the future, ไม่ for negation; location อยู่ที่/อยู่ใน + place; motion ไป/มา/กลับไป + place (กลับบ้าน);
time words at the start of the clause (ทุกวัน, บ่อยๆ, ในไม่ช้า at the end); reflexive ตัวเอง; questions with ไหม or
หรือเปล่า (past, progressive and negated); connectives และ, แต่, เพราะ. No spaces inside a clause, one space between
clauses and between sentences, no final punctuation."""

from __future__ import annotations

from collections.abc import Sequence

from .semantics import NOUNS, Clause, NounPhrase, Pronoun, Sentence

LANG = "th"
SCRIPT = "Thai"

# noun id -> (word, classifier)
_NOUNS = {
    "mother": ("แม่", "คน"), "father": ("พ่อ", "คน"), "brother": ("พี่ชาย", "คน"), "sister": ("พี่สาว", "คน"),
    "grandmother": ("ย่า", "คน"), "grandfather": ("ปู่", "คน"), "boy": ("เด็กผู้ชาย", "คน"),
    "girl": ("เด็กผู้หญิง", "คน"), "man": ("ผู้ชาย", "คน"), "woman": ("ผู้หญิง", "คน"), "teacher": ("ครู", "คน"),
    "doctor": ("หมอ", "คน"), "farmer": ("ชาวนา", "คน"), "student": ("นักเรียน", "คน"),
    "neighbour": ("เพื่อนบ้าน", "คน"), "friend": ("เพื่อน", "คน"),
    "dog": ("หมา", "ตัว"), "cat": ("แมว", "ตัว"), "bird": ("นก", "ตัว"), "horse": ("ม้า", "ตัว"), "cow": ("วัว", "ตัว"),
    "bread": ("ขนมปัง", "ก้อน"), "apple": ("แอปเปิล", "ลูก"), "fish": ("ปลา", "ตัว"), "rice": ("ข้าว", "จาน"),
    "egg": ("ไข่", "ฟอง"), "soup": ("ซุป", "ถ้วย"), "cake": ("เค้ก", "ชิ้น"), "water": ("น้ำ", "แก้ว"),
    "tea": ("ชา", "ถ้วย"), "milk": ("นม", "แก้ว"), "coffee": ("กาแฟ", "แก้ว"),
    "book": ("หนังสือ", "เล่ม"), "letter": ("จดหมาย", "ฉบับ"), "newspaper": ("หนังสือพิมพ์", "ฉบับ"),
    "story": ("นิทาน", "เรื่อง"), "song": ("เพลง", "เพลง"), "car": ("รถยนต์", "คัน"), "bicycle": ("จักรยาน", "คัน"),
    "door": ("ประตู", "บาน"), "window": ("หน้าต่าง", "บาน"), "table": ("โต๊ะ", "ตัว"), "chair": ("เก้าอี้", "ตัว"),
    "bag": ("กระเป๋า", "ใบ"), "key": ("กุญแจ", "ดอก"), "phone": ("โทรศัพท์", "เครื่อง"),
    "computer": ("คอมพิวเตอร์", "เครื่อง"), "ball": ("ลูกบอล", "ลูก"), "flower": ("ดอกไม้", "ดอก"),
    "tree": ("ต้นไม้", "ต้น"), "shirt": ("เสื้อ", "ตัว"), "picture": ("รูป", "รูป"), "house": ("บ้าน", "หลัง"),
    "ticket": ("ตั๋วรถไฟ", "ใบ"),
}
_KIN = frozenset({"mother", "father", "brother", "sister", "grandmother", "grandfather"})  # แม่ฉัน, not แม่ของฉัน
_BARE_DEFINITE = _KIN | {"teacher", "doctor"}  # 'the teacher' is just ครู
_NUMBER = {2: "สอง", 3: "สาม"}

# place id -> (in/at the place, to the place)
_PLACES = {
    "school": ("ที่โรงเรียน", "โรงเรียน"), "market": ("ที่ตลาด", "ตลาด"), "city": ("ในเมือง", "ในเมือง"),
    "village": ("ในหมู่บ้าน", "หมู่บ้าน"), "garden": ("ในสวน", "ที่สวน"), "hospital": ("ที่โรงพยาบาล", "โรงพยาบาล"),
    "library": ("ที่ห้องสมุด", "ห้องสมุด"), "kitchen": ("ในห้องครัว", "ที่ห้องครัว"),
    "office": ("ที่สำนักงาน", "สำนักงาน"), "park": ("ที่สวนสาธารณะ", "สวนสาธารณะ"),
    "station": ("ที่สถานีรถไฟ", "สถานีรถไฟ"), "shop": ("ที่ร้านค้า", "ร้านค้า"), "river": ("ริมแม่น้ำ", "ที่แม่น้ำ"),
    "field": ("ในทุ่งนา", "ทุ่งนา"), "house": ("ที่บ้าน", "บ้าน"),
}
_TIMES = {"yesterday": "เมื่อวาน", "last_week": "สัปดาห์ที่แล้ว", "this_morning": "เมื่อเช้านี้",
          "every_day": "ทุกวัน", "often": "บ่อยๆ", "now": "ตอนนี้", "in_the_evening": "ตอนเย็น",
          "tomorrow": "พรุ่งนี้", "next_week": "สัปดาห์หน้า", "soon": "ในไม่ช้า"}
_FINAL_TIMES = frozenset({"every_day", "often", "soon"})  # these close the clause; the others open it

# adjective -> word; per-kind overrides below
_ADJECTIVES = {
    "big": "ใหญ่", "small": "เล็ก", "new": "ใหม่", "old": "เก่า", "beautiful": "สวย", "good": "ดี", "red": "สีแดง",
    "white": "สีขาว", "young": "อายุน้อย", "tired": "เหนื่อย", "happy": "มีความสุข", "hot": "ร้อน", "cold": "เย็น",
    "clean": "สะอาด", "expensive": "แพง",
}
_ADJECTIVE_FOR_KIND = {
    ("old", "person"): "แก่", ("old", "animal"): "แก่", ("good", "person"): "ใจดี", ("good", "food"): "อร่อย",
    ("good", "drink"): "อร่อย", ("beautiful", "place"): "สวยงาม",
}
_RELATIVE = frozenset({"tired", "happy"})  # attributive through ที่: เด็กที่เหนื่อย
_COLOURS = frozenset({"red", "white"})  # negated with ไม่ใช่, future with จะเป็น

_PRONOUNS = {"1sg": "ฉัน", "2sg": "คุณ", "3sg_m": "เขา", "3sg_f": "เธอ", "1pl": "เรา", "2pl": "พวกคุณ",
             "3pl": "พวกเขา"}

# verb id -> verb phrase; {o} is the object or the destination
_VERBS = {
    "read": "อ่าน{o}", "write": "เขียน{o}", "eat": "กิน{o}", "drink": "ดื่ม{o}", "buy": "ซื้อ{o}", "sell": "ขาย{o}",
    "see": "เห็น{o}", "find": "เจอ{o}", "open": "เปิด{o}", "close": "ปิด{o}", "carry": "ถือ{o}", "love": "ชอบ{o}",
    "help": "ช่วย{o}", "call": "เรียก{o}", "wash": "ล้าง{o}", "cook": "ทำ{o}", "sing": "ร้อง{o}", "draw": "วาด{o}",
    "sleep": "นอน", "work": "ทำงาน", "play": "เล่น", "laugh": "หัวเราะ", "wait": "รอ", "run": "วิ่ง",
    "go": "ไป{o}", "come": "มา{o}", "return": "กลับไป{o}",
}
# (verb, object noun or kind, or subject kind) -> the verb phrase that suits better
_VERB_FOR = {
    ("love", "person"): "รัก{o}", ("love", "animal"): "รัก{o}", ("call", "person"): "โทรหา{o}",
    ("wash", "shirt"): "ซัก{o}", ("wash", "table"): "เช็ด{o}", ("wash", "window"): "เช็ด{o}",
    ("wash", "dog"): "อาบน้ำให้{o}", ("wash", "horse"): "อาบน้ำให้{o}", ("cook", "rice"): "หุง{o}",
    ("cook", "egg"): "ต้ม{o}", ("carry", "chair"): "ยก{o}", ("carry", "table"): "ยก{o}",
    ("see", "now"): "ดู{o}", ("find", "now"): "หา{o}",
}
_STATIVE = frozenset({"love"})  # no แล้ว, no กำลัง
_CONNECTIVES = {"and": "และ", "but": "แต่", "because": "เพราะ"}


# ---------------------------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------------------------

def _kind(np: NounPhrase | Pronoun) -> str:
    return "person" if isinstance(np, Pronoun) else NOUNS[np.noun].kind


def _adjective(adjective: str, kind: str) -> str:
    return _ADJECTIVE_FOR_KIND.get((adjective, kind), _ADJECTIVES[adjective])


def _noun_phrase(np: NounPhrase, subject: bool = False) -> str:
    """A noun phrase: noun, adjective, then number + classifier, a demonstrative or a possessor. An indefinite
    singular ``subject`` takes classifier + หนึ่ง (เด็กผู้หญิงคนหนึ่ง); other indefinites are bare nouns."""
    word, classifier = _NOUNS[np.noun]
    head = word
    if np.adjective:
        head += ("ที่" if np.adjective in _RELATIVE else "") + _adjective(np.adjective, NOUNS[np.noun].kind)
    plural = np.plural or bool(np.count)
    if np.count:
        return head + _NUMBER[np.count] + classifier
    if np.possessor:
        owner = _PRONOUNS[np.possessor]
        return head + owner if np.noun in _KIN and not np.adjective else head + "ของ" + owner
    if np.definite:
        if plural:
            return head + "เหล่านั้น"
        if np.noun in _BARE_DEFINITE and not np.adjective:
            return head
        if classifier == word and not np.adjective:  # เพลงนั้น, not เพลงเพลงนั้น
            return head + "นั้น"
        return head + classifier + "นั้น"
    if subject and not plural:
        return head + classifier + "หนึ่ง"
    return head


def _object(clause: Clause) -> str:
    obj = clause.object
    if obj is None:
        return ""
    if isinstance(obj, Pronoun):
        if isinstance(clause.subject, Pronoun) and clause.subject.person == obj.person:
            return "ตัวเอง"
        return _PRONOUNS[obj.person]
    return _noun_phrase(obj)


# ---------------------------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------------------------

def _verb_phrase(clause: Clause) -> str:
    obj = clause.object
    if clause.destination is not None:
        if clause.destination == "house":  # go/come/return home
            return "กลับบ้าน"
        return _VERBS[clause.verb].format(o=_PLACES[clause.destination][1])
    keys = [(clause.verb, "now")] if clause.time == "now" and not clause.negative else []
    if isinstance(obj, NounPhrase):
        keys.append((clause.verb, obj.noun))
    if obj is not None:
        keys.append((clause.verb, _kind(obj)))
    template = next((_VERB_FOR[key] for key in keys if key in _VERB_FOR), _VERBS[clause.verb])
    if clause.verb == "carry" and _kind(clause.subject) == "animal":  # in the mouth, or on the back
        big = isinstance(clause.subject, NounPhrase) and clause.subject.noun in ("horse", "cow")
        template = "แบก{o}" if big else "คาบ{o}"
    return template.format(o=_object(clause))


def _predicate(clause: Clause, perfect: bool) -> str:
    """The clause after its subject. ``perfect``: mark a completed past with แล้ว (no past time word in the
    sentence)."""
    if clause.kind == "state":
        word = _adjective(clause.adjective, _kind(clause.subject))
        if clause.adjective in _COLOURS:
            if clause.negative:
                return ("จะไม่เป็น" if clause.tense == "future" else "ไม่ใช่") + word
            return ("จะเป็น" if clause.tense == "future" else "") + word
        return ("จะ" if clause.tense == "future" else "") + ("ไม่" if clause.negative else "") + word
    if clause.kind == "location":
        place = "อยู่" + _PLACES[clause.place][0]
        if clause.tense == "future":
            return ("จะไม่" if clause.negative else "จะ") + place
        return ("ไม่ได้" if clause.negative else "") + place
    phrase = _verb_phrase(clause)
    if clause.place is not None:
        phrase += _PLACES[clause.place][0]
    stative = clause.verb in _STATIVE
    if clause.tense == "future":
        if clause.negative and clause.time == "soon":
            return "จะยังไม่" + phrase  # 'will not … soon': not yet
        return ("จะไม่" if clause.negative else "จะ") + phrase
    if clause.negative:
        return ("ไม่" if stative or clause.tense == "present" and clause.time != "now" else "ไม่ได้") + phrase
    if clause.tense == "past":
        return phrase + ("แล้ว" if perfect and not stative else "")
    if clause.time == "now" and not stative:
        return "กำลัง" + phrase
    return phrase


def _clause(clause: Clause, perfect: bool = True) -> str:
    if isinstance(clause.subject, Pronoun):
        subject = _PRONOUNS[clause.subject.person]
    else:
        subject = _noun_phrase(clause.subject, subject=True)
    text = subject + _predicate(clause, perfect)
    if clause.time is None or clause.time == "soon" and clause.negative and clause.tense == "future":
        return text
    time = _TIMES[clause.time]
    return text + time if clause.time in _FINAL_TIMES else time + text


def _question(clause: Clause) -> str:
    """A yes/no question: ไหม, or หรือเปล่า after a past, a progressive or a negation."""
    text = _clause(clause, perfect=False)
    asks_fact = clause.negative or clause.tense == "past" or clause.time == "now" and clause.verb not in _STATIVE \
        and clause.kind == "action"
    return text + ("หรือเปล่า" if asks_fact else "ไหม")


def realize(sentence: Sentence) -> str:
    if sentence.question:
        return _question(sentence.clauses[0])
    perfect = all(c.time is None for c in sentence.clauses)
    if len(sentence.clauses) == 2:
        first, second = (_clause(c, perfect) for c in sentence.clauses)
        return f"{first} {_CONNECTIVES[sentence.connective]}{second}"
    return _clause(sentence.clauses[0], perfect)


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)
