"""Build ``tests/data/kg_aliases.tsv``, the labelled set of ``bench_kg.py --quality``, from CoNLL-2003 test (see
``tests/data/README.md``): every person, organisation and location name, by document, with a hand-checked
real-world identity. Run once: ``python benchmarks/make_kg_aliases.py /work/shared/data/conll2003/test.txt``."""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gliner_ray.kg.entities import normalize_surface  # noqa: E402

# Within-document proposals (a name is the first or last words of exactly one longer same-type name of its
# document) that are not the same thing, by hand.
REJECTED = {("location", "africa"), ("location", "buenos aires"), ("location", "london"), ("location", "melbourne"),
            ("location", "mexico"), ("location", "whistler"), ("organisation", "ilo")}
# Same identity across documents, by hand: acronyms, spelling variants, initial + surname, and surnames seen alone
# that 1996 news uses for one person.
SAME = {
    "organisation": {"anc": "african national congress", "bjp": "bharatiya janata party", "eds":
                     "electronic data systems", "eu": "european union", "ibf": "international boxing federation",
                     "icftu": "international confederation of free trade unions", "ilo":
                     "international labour organisation", "nfl": "national football league", "nhl":
                     "national hockey league", "nld": "national league for democracy", "nws":
                     "national weather service", "oic": "organisation of the islamic conference", "plo":
                     "palestine liberation organisation", "sla": "south lebanon army", "slorc":
                     "state law and order restoration council", "wto": "world trade organisation",
                     "graafschap doetinchem": "de graafschap doetinchem", "tambang timah": "pt tambang timah",
                     "u.n": "united nations", "un": "united nations"},
    "location": {"nj": "new jersey", "nz": "new zealand", "uae": "united arab emirates", "us": "united states",
                 "u.s": "united states", "czech": "czech republic"},
    "person": {"svetland gladishiva": "svetlana gladishiva", "pedrag mijatovic": "predrag mijatovic",
               "georg weah": "george weah", "weah": "george weah", "oscar scalfaro": "oscar luigi scalfaro",
               "john langmore": "john vance langmore", "c. walsh": "courtney walsh", "walsh": "courtney walsh",
               "c. ambrose": "curtly ambrose", "ambrose": "curtly ambrose", "s. warne": "shane warne",
               "warne": "shane warne", "c. hooper": "carl hooper", "hooper": "carl hooper", "i. healy": "ian healy",
               "healy": "ian healy", "g. blewett": "greg blewett", "blewett": "greg blewett",
               "s. chanderpaul": "shivnarine chanderpaul", "chanderpaul": "shivnarine chanderpaul",
               "j. gillespie": "jason gillespie", "b. lara": "brian lara", "lara": "brian lara",
               "t. moody": "tom moody", "n. mclean": "nixon mclean", "p. reiffel": "paul reiffel",
               "k. benjamin": "kenneth benjamin", "j. murray": "junior murray", "j. adams": "jimmy adams",
               **{s: f for f in ("boris yeltsin", "bill clinton", "yasser arafat", "vaclav havel", "helmut kohl",
                                 "benjamin netanyahu", "jacques chirac", "john major", "madeleine albright",
                                 "hosni mubarak", "shimon peres", "alan greenspan", "david campese",
                                 "vaclav klaus", "sali berisha", "aleksander kwasniewski", "davor suker",
                                 "gianluca vialli", "boutros boutros-ghali", "ally mccoist", "brian laudrup",
                                 "wasim akram", "waqar younis", "saqlain mushtaq", "jim bolger", "abdou diouf",
                                 "gianfranco fini", "kenneth clarke", "winston peters", "joao havelange")
                  for s in [f.split()[-1]]}},
}
LABELS = {"person": "person", "organisation": "organization", "location": "location"}


def mentions(path: str) -> list[tuple[int, str, str]]:
    """(document, span, label) of the CoNLL file; a document starts at the headline before a dateline."""
    sentences = [[line.split("\t") for line in block.splitlines() if line.strip()]
                 for block in open(path, encoding="utf-8").read().split("\n\n") if block.strip()]
    starts = {max(i - 1, 0) for i, s in enumerate(sentences)
              if len(s) <= 12 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", s[-1][0])}
    found, doc = [], 0
    for i, sentence in enumerate(sentences):
        doc += i in starts and i > 0
        span = None
        for token, tag in sentence + [["", "O"]]:
            if tag == "O" or tag.startswith("B-") or span is None or span[1] != tag[2:]:
                if span and span[1] in LABELS:
                    found.append((doc, " ".join(span[0]), span[1]))
                span = ([token], tag[2:]) if tag != "O" else None
            else:
                span[0].append(token)
    return found


def identities(found: list[tuple[int, str, str]]) -> dict[tuple[int, str, str], str]:
    """(document, normalized form, label) -> its identity: the normalized long form of its document, by hand."""
    forms = collections.defaultdict(set)
    for doc, span, label in found:
        forms[doc, label].add(normalize_surface(span))
    identity = {}
    for (doc, label), names in forms.items():
        for name in names:
            longer = [n for n in names if len(n) > len(name) and (n.startswith(name + " ") or n.endswith(" " + name))]
            own = SAME[label].get(name, name)
            if len(longer) == 1 and (label, name) not in REJECTED:
                own = SAME[label].get(longer[0], longer[0])
            identity[doc, name, label] = own
    return identity


def main() -> None:
    found = mentions(sys.argv[1])
    identity = identities(found)
    out = Path(__file__).resolve().parent.parent / "tests" / "data" / "kg_aliases.tsv"
    rows = sorted({(doc, span, label) for doc, span, label in found})
    with open(out, "w", encoding="utf-8") as f:
        f.write("doc\tspan\tlabel\tidentity\n")
        for doc, span, label in rows:
            f.write(f"{doc}\t{span}\t{LABELS[label]}\t{identity[doc, normalize_surface(span), label]}\n")
    groups = collections.Counter(identity.values())
    print(f"{len(rows)} rows, {len(set(identity.values()))} identities, "
          f"{sum(1 for g in set(identity.values()) if len({k[1] for k, v in identity.items() if v == g}) > 1)} "
          f"with several forms; {len(groups)}")


if __name__ == "__main__":
    main()
