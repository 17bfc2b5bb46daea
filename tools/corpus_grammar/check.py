"""Check a language module of the corpus grammar: realize many planned documents, exercise every concept, and report
fastText language ID agreement.  Usage: python -m corpus_grammar.check LANG [--documents N] [--show N] (from tools/)."""

from __future__ import annotations

import argparse
import importlib
import itertools
import random

from .semantics import (ADJECTIVES, NOUNS, PERSONS, PLACES, TENSES, TIMES, VERBS, Clause, NounPhrase, Pronoun,
                        Sentence, plan_document)


def exhaustive(lang_module) -> int:
    """Realize every verb x tense x subject person x negation x question, every noun in every phrase shape, every
    adjective, place and time: returns how many sentences were realized (raises on the first failure)."""
    n = 0
    subjects = [Pronoun(p) for p in PERSONS] + [NounPhrase("teacher"), NounPhrase("father", plural=True),
                                                 NounPhrase("dog", possessor="1sg"), NounPhrase("girl", definite=False)]
    for verb, tense, subject, negative, question in itertools.product(VERBS.values(), TENSES, subjects,
                                                                      (False, True), (False, True)):
        if isinstance(subject, NounPhrase) and NOUNS[subject.noun].kind not in verb.subjects:
            continue
        obj = None
        if verb.objects:
            first = verb.objects[0]
            noun = first if first in NOUNS else next(k for k, v in NOUNS.items() if v.kind == first)
            obj = NounPhrase(noun)
        clause = Clause("action", subject, tense, verb=verb.id, object=obj,
                        destination="market" if verb.motion else None, negative=negative)
        lang_module.realize(Sentence((clause,), question=question))
        n += 1
    for noun, plural, definite, possessor, count, adjective in itertools.product(
            NOUNS, (False, True), (False, True), (None, *PERSONS), (None, 2, 3), (None, *ADJECTIVES[:3])):
        if count and (not plural or definite or possessor) or (possessor and not definite):
            continue
        if NOUNS[noun].kind == "place":
            continue
        np = NounPhrase(noun, plural=plural, definite=definite, possessor=possessor, count=count, adjective=adjective)
        for verb in ("see", "carry"):
            lang_module.realize(Sentence((Clause("action", Pronoun("1sg"), "past", verb=verb, object=np),)))
            lang_module.realize(Sentence((Clause("action", np, "present", verb="see", object=Pronoun("3sg_f")),)))
        n += 4
    for adjective, tense, subject in itertools.product(ADJECTIVES, TENSES, subjects):
        for negative in (False, True):
            lang_module.realize(Sentence((Clause("state", subject, tense, adjective=adjective, negative=negative),)))
            n += 1
    for place, time in itertools.product(PLACES, TIMES):
        tense = TIMES[time]
        for subject in subjects:
            lang_module.realize(Sentence((Clause("location", subject, tense, place=place, time=time),)))
            lang_module.realize(Sentence((Clause("action", subject, tense, verb="go", destination=place),
                                          Clause("action", Pronoun("3pl"), tense, verb="wait", place=place)),
                                         connective="because"))
            n += 2
    return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lang")
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--show", type=int, default=3)
    args = parser.parse_args()
    module = importlib.import_module(f".lang_{args.lang}", __package__)
    print(f"exhaustive: {exhaustive(module)} sentences realized")
    rng = random.Random(0)
    documents = []
    for _ in range(args.documents):
        documents.append([module.join([module.realize(s) for s in p]) for p in plan_document(rng)])
    for document in documents[:args.show]:
        print("\n".join(document), end="\n\n")
    from xlmr_hf.corpus.lid import LanguageIdentifier, label_to_code

    lid = LanguageIdentifier()
    wrong = []
    for document in documents:
        label, _ = lid.predict(" ".join(document))
        if label_to_code(label) != args.lang:
            wrong.append((label, document[0][:120]))
    print(f"LID agreement: {1 - len(wrong) / len(documents):.1%} of {len(documents)} documents")
    for label, text in wrong[:10]:
        print(f"  {label}: {text}")


if __name__ == "__main__":
    main()
