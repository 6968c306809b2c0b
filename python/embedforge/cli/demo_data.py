"""The built-in demo data of ``embedforge train``: a deterministic, synthetic (query, passage) retrieval set.

Every document is a combination of three concepts (a quality, a thing, a place). Each concept has two
disjoint word lists: the words queries use and the words passages use ("cheap" vs "affordable",
"car" vs "vehicle"). A query and its passage therefore share almost no words, so an untrained model
cannot match them; a model trained on the pairs learns which words mean the same and retrieves well
on held-out combinations. The set is generated, small and made up: a demo, not a benchmark.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field

#: (query words, passage words) per concept; the two sides never share a word.
QUALITIES: list[tuple[list[str], list[str]]] = [
    (["cheap", "lowcost"], ["affordable", "inexpensive", "budget"]),
    (["fast", "quick"], ["rapid", "speedy", "express"]),
    (["quiet", "silent"], ["peaceful", "calm", "noiseless"]),
    (["big", "large"], ["spacious", "roomy", "huge"]),
    (["small", "tiny"], ["compact", "little", "miniature"]),
    (["old", "ancient"], ["historic", "vintage", "antique"]),
    (["new", "modern"], ["contemporary", "recent", "fresh"]),
    (["friendly", "kind"], ["welcoming", "warm", "hospitable"]),
    (["clean", "tidy"], ["spotless", "hygienic", "immaculate"]),
    (["safe", "secure"], ["protected", "guarded", "trustworthy"]),
    (["beautiful", "pretty"], ["scenic", "lovely", "gorgeous"]),
    (["famous", "popular"], ["renowned", "celebrated", "acclaimed"]),
    (["expensive", "pricey"], ["luxury", "upscale", "premium"]),
    (["healthy", "nutritious"], ["wholesome", "organic", "nourishing"]),
    (["easy", "simple"], ["effortless", "straightforward", "uncomplicated"]),
    (["strong", "sturdy"], ["durable", "robust", "tough"]),
    (["bright", "sunny"], ["luminous", "radiant", "sunlit"]),
    (["cold", "chilly"], ["frosty", "icy", "freezing"]),
    (["weird", "strange"], ["unusual", "quirky", "odd"]),
    (["tasty", "delicious"], ["flavorful", "savory", "yummy"]),
]

THINGS: list[tuple[list[str], list[str]]] = [
    (["car", "automobile"], ["vehicle", "motorcar", "sedan"]),
    (["doctor", "physician"], ["medic", "practitioner", "clinician"]),
    (["lawyer", "attorney"], ["solicitor", "counsel", "advocate"]),
    (["house", "home"], ["residence", "dwelling", "cottage"]),
    (["apartment", "flat"], ["condo", "studio", "unit"]),
    (["shop", "store"], ["boutique", "retailer", "outlet"]),
    (["restaurant", "eatery"], ["diner", "bistro", "brasserie"]),
    (["hotel", "motel"], ["inn", "lodge", "hostel"]),
    (["bike", "bicycle"], ["cycle", "roadster", "tandem"]),
    (["boat", "ship"], ["vessel", "yacht", "ferry"]),
    (["film", "movie"], ["cinema", "picture", "feature"]),
    (["book", "novel"], ["paperback", "volume", "hardcover"]),
    (["phone", "mobile"], ["smartphone", "handset", "cellphone"]),
    (["computer", "laptop"], ["notebook", "pc", "desktop"]),
    (["school", "academy"], ["college", "institute", "seminary"]),
    (["dog", "puppy"], ["hound", "canine", "pooch"]),
    (["cat", "kitten"], ["feline", "kitty", "tomcat"]),
    (["teacher", "tutor"], ["instructor", "educator", "mentor"]),
    (["job", "work"], ["employment", "career", "position"]),
    (["trip", "journey"], ["voyage", "excursion", "tour"]),
    (["meal", "dinner"], ["supper", "feast", "cuisine"]),
    (["song", "music"], ["melody", "tune", "track"]),
    (["bag", "backpack"], ["rucksack", "luggage", "satchel"]),
    (["shoes", "sneakers"], ["footwear", "trainers", "boots"]),
    (["watch", "clock"], ["timepiece", "wristwatch", "chronometer"]),
    (["sofa", "couch"], ["settee", "loveseat", "divan"]),
    (["mechanic", "repairman"], ["technician", "garage", "fixer"]),
    (["bakery", "bread"], ["patisserie", "loaf", "pastry"]),
    (["gift", "present"], ["souvenir", "keepsake", "offering"]),
    (["painting", "artwork"], ["canvas", "portrait", "mural"]),
]

PLACES: list[tuple[list[str], list[str]]] = [
    (["beach", "seaside"], ["coast", "shore", "waterfront"]),
    (["downtown", "city"], ["urban", "metropolitan", "central"]),
    (["countryside", "rural"], ["farmland", "village", "pastoral"]),
    (["mountain", "hills"], ["alpine", "highland", "summit"]),
    (["river", "stream"], ["riverside", "waterway", "creek"]),
    (["airport", "flights"], ["terminal", "airfield", "runway"]),
    (["harbor", "port"], ["dock", "marina", "pier"]),
    (["forest", "woods"], ["woodland", "grove", "timberland"]),
    (["desert", "dunes"], ["arid", "sandy", "oasis"]),
    (["island", "islet"], ["isle", "atoll", "archipelago"]),
    (["lake", "pond"], ["lagoon", "reservoir", "lakeshore"]),
    (["park", "playground"], ["meadow", "greenspace", "commons"]),
    (["campus", "university"], ["faculty", "quad", "dormitory"]),
    (["suburb", "suburbs"], ["outskirts", "residential", "commuter"]),
    (["market", "bazaar"], ["marketplace", "stalls", "fairground"]),
]

#: Query phrasings; {q}, {t}, {p} are the quality, thing and place words.
QUERY_TEMPLATES = [
    "{q} {t} {p}",
    "looking for a {q} {t} near the {p}",
    "where can i find a {q} {t} by the {p}",
    "any {q} {t} around the {p} area",
    "best {q} {t} close to {p}",
    "recommend a {q} {t} in the {p}",
    "{t} that is {q} near {p}",
]

#: Passage phrasings: deliberately other filler words than the queries.
PASSAGE_TEMPLATES = [
    "This {q} {t} is located in a {p} setting.",
    "Our {t} is {q} and sits right in the {p} district.",
    "Visitors describe the {t} as {q}; it lies at the {p} edge of town.",
    "A {q} {t} with a {p} view, open all week.",
    "{t} listing: {q} condition, {p} location.",
    "The {p} neighbourhood has one {q} {t} worth a visit.",
]

#: Extra sentences that make passages longer without saying anything about the concepts.
PASSAGE_EXTRAS = [
    "",
    " Reviews are mostly positive.",
    " Opening hours vary by season.",
    " Ask the staff for details.",
    " Prices were updated last month.",
    " Parking is available nearby.",
]

#: A second, unrelated quality and thing mentioned in some passages: distractors that make retrieval harder.
DISTRACTOR_TEMPLATES = [
    " A {q} {t} is next door.",
    " Not to be confused with the {q} {t} across the road.",
]

#: Share of passages that mention a distractor.
DISTRACTOR_RATE = 0.5


#: "a" before a vowel-initial word (every such demo word takes "an").
_ARTICLE_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=[aeiou])")


def _fix_articles(text: str) -> str:
    return _ARTICLE_BEFORE_VOWEL.sub(lambda match: match.group(1) + "n ", text)


@dataclass
class DemoRetrievalData:
    """Training pairs plus a held-out retrieval split (queries, corpus, relevant documents)."""

    train_anchors: list[str] = field(default_factory=list)
    train_positives: list[str] = field(default_factory=list)
    queries: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, str] = field(default_factory=dict)
    relevant_docs: dict[str, set[str]] = field(default_factory=dict)

    def all_texts(self) -> list[str]:
        """Every text of the set, e.g. to train a tokenizer on."""
        return [*self.train_anchors, *self.train_positives, *self.queries.values(), *self.corpus.values()]


def vocabulary_texts() -> list[str]:
    """Every template and concept word once: enough text to learn the demo tokenizer's vocabulary quickly."""
    words = [
        word
        for concepts in (QUALITIES, THINGS, PLACES)
        for query_words, passage_words in concepts
        for word in (*query_words, *passage_words)
    ]
    # "an" replaces "a" before vowels, so it is in no template.
    return [*QUERY_TEMPLATES, *PASSAGE_TEMPLATES, *PASSAGE_EXTRAS, *DISTRACTOR_TEMPLATES, " ".join(words), "an"]


def _query(rng: random.Random, combination: tuple[int, int, int]) -> str:
    quality, thing, place = combination
    text = rng.choice(QUERY_TEMPLATES).format(
        q=rng.choice(QUALITIES[quality][0]), t=rng.choice(THINGS[thing][0]), p=rng.choice(PLACES[place][0])
    )
    return _fix_articles(text)


def _passage(rng: random.Random, combination: tuple[int, int, int]) -> str:
    quality, thing, place = combination
    text = rng.choice(PASSAGE_TEMPLATES).format(
        q=rng.choice(QUALITIES[quality][1]), t=rng.choice(THINGS[thing][1]), p=rng.choice(PLACES[place][1])
    )
    text = text[0].upper() + text[1:] + rng.choice(PASSAGE_EXTRAS)
    if rng.random() < DISTRACTOR_RATE:
        text += rng.choice(DISTRACTOR_TEMPLATES).format(
            q=rng.choice(rng.choice(QUALITIES)[1]), t=rng.choice(rng.choice(THINGS)[1])
        )
    return _fix_articles(text)


def make_demo_data(
    num_train_pairs: int = 20000, num_corpus: int = 1500, num_queries: int = 300, seed: int = 12
) -> DemoRetrievalData:
    """Generate the demo set; the same arguments always give the same texts.

    The concept combinations of the evaluation corpus never occur in training, so the scores
    measure whether the model learned the word meanings rather than memorised pairs.
    """
    rng = random.Random(seed)
    combinations = list(itertools.product(range(len(QUALITIES)), range(len(THINGS)), range(len(PLACES))))
    rng.shuffle(combinations)
    if num_corpus >= len(combinations) or num_queries > num_corpus:
        raise ValueError(
            f"num_corpus={num_corpus} and num_queries={num_queries} need num_queries <= num_corpus < "
            f"{len(combinations)} (the number of concept combinations)"
        )
    held_out, training = combinations[:num_corpus], combinations[num_corpus:]
    data = DemoRetrievalData()
    for index in range(num_train_pairs):
        combination = training[index % len(training)]
        data.train_anchors.append(_query(rng, combination))
        data.train_positives.append(_passage(rng, combination))
    for index, combination in enumerate(held_out):
        data.corpus[f"d{index}"] = _passage(rng, combination)
    for index in range(num_queries):
        data.queries[f"q{index}"] = _query(rng, held_out[index])
        data.relevant_docs[f"q{index}"] = {f"d{index}"}
    return data
