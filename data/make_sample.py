#!/usr/bin/env python3
"""Generate a small synthetic English NER corpus in CoNLL-2003 format.

Every sentence comes from a hand-written template whose slots are filled from
invented name lists, so the corpus contains no licensed text. Some names of each
type are held out of train, so dev/test also measure generalisation to unseen
names. Output is byte-identical for a given seed and set of sizes.
"""

import argparse
import random
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "sample"
DEFAULT_SEED = 13
DEFAULT_SIZES = {"train": 2000, "dev": 400, "test": 400}
DOCSTART = "-DOCSTART- -X- -X- O"


def _names(text):
    return [name.strip() for name in text.split(",") if name.strip()]


# Names that are also places, and for towns also clubs: only context tells the type.
AMBIGUOUS_TOWNS = _names("Washington, Austin, Lincoln, Kent, Sydney")
AMBIGUOUS = AMBIGUOUS_TOWNS + _names("Jordan, Georgia, Victoria, Florence, Chelsea")

# slot: (NER type, POS of its words, names used in every split, names held out of train)
ENTITY_SLOTS = {
    "PER": ("PER", "NNP", _names("""
        Jordan Pell, Ruth Washington, Georgia Mays, Austin Reyes, Victoria Lund, Sydney Okafor,
        Marcus Kent, Chelsea Brandt, Florence Adeyemi, Paul Lincoln, Klaus Müller, José Gómez,
        Renée Fournier, Björn Halvorsen, Zoë Castellano, François Dubois, Ana Lúcia Ferreira,
        Jean-Luc Moreau, Kwame Asante-Boateng, Maria de la Cruz, Tomasz Wrobel, Priya Raman,
        Hiroshi Tanabe, Lena Ostrova, Daniel Achterberg, Grace Nwosu, Olivia Hart, Samuel Ortega,
        Ingrid Solberg, Mehmet Çelik, Fatima Zahra Idrissi, Liam O'Connell, Carla Benedetti,
        Viktor Hale, Amara Diallo, Ethan Brooks, Nadia Karimova, Pedro Alves, Hannah Lindqvist,
        Yusuf Demir, Emma Vandermeer, Arjun Mehta, Chloe Marchetti, Tobias Krüger, Isabel Navarro,
        Kenji Morita, Rosa Delgado, Owen Pritchard, Selma Haddad, Lucas Ferrand, Mei Lin Zhou,
        Anton Dvořák, Sofia Andersson, David Okonkwo, Julia Weiss, Rafael Montoya"""), _names("""
        Magnus Eriksen, Beatriz Souto, Caleb Ainsworth, Noor Al-Hassan, Sione Taufa,
        Helga Brandtner, Matteo Galli, Inês Carvalho, Oskar Lindahl, Yara Mansour, Felix Oduya,
        Agnes Kowalczyk, Rui Tavares, Camille Laurent, Jakob Steiner, Amina Touré, Declan Murphy,
        Lucía Serrano, Henrik Aalto, Nkechi Obi, Stefan Horvath, Mira Castellanos, Bruno Sá""")),
    "ORG": ("ORG", "NNP", _names("""
        Northwind Capital, Veltrix, Harbor & Pike, Bank of Calder, Orinoco Airways,
        Greystone Mining, Lumina Health, Quillon Media, Brightwater Energy, Kestrel Motors,
        Tandem Logistics, Aurelia Foods, Solace Pharmaceuticals, Cobalt Systems, Meridian Steel,
        Pinecrest Insurance, Redfern Group, Altamira Telecom, Halcyon Labs, Sterling & Voss,
        Union of Dock Workers, United Farmers League, Institute for Coastal Research,
        Velmar Central Bank, Ministry of Water, Calder Times, Radio Solaris, Global Relief Fund,
        Zephyr Rail, Ironbridge Partners, Nova Terra Resources, Blue Heron Bank, Pioneer 3D,
        Castellan Holdings, Oakridge University, Fjordline Shipping, Lincoln Motors"""), _names("""
        Tidewater Bank, Corvex, Amberline Airlines, Silverpine Software, Halden & Rusk,
        Marisol Foods, Stonegate Energy, Polaris Freight, Vireo Biotech, Granite Peak Mining,
        Westmark Press, Equinox Textiles, Lakeshore Credit Union, Ardent Robotics,
        Federation of Olive Growers, Kingsbridge College""")),
    # Sports clubs named after towns are organisations, as in CoNLL-2003.
    "CLUB": ("ORG", "NNP", AMBIGUOUS_TOWNS + _names("""
        Calder Rovers, Port Amelia United, Velmar City,
        Harbour Athletic, Northgate Rangers, Redcliffe Albion, Oruna Stars, Kelso Wanderers,
        Dunmore FC, Atlético Marena, SC Brixen 04"""), _names("""
        Tarvin United, Port Ossel FC, Mirova Dynamo, Eastfield Town, Salcombe Athletic, Vessa City""")),
    "LOC": ("LOC", "NNP", AMBIGUOUS + _names("""
        Velmar, North Velmar, Port Amelia, Calder, New Calder, Lake Oruna, São Tomé, Zürich, Kenya,
        Brazil, Norway, Iceland, Portugal, Japan, Canada, Peru, Morocco, Vietnam, Lisbon, Nairobi,
        Oslo, Osaka, Montreal, Lima, Marrakesh, Hanoi, Rio Blanco Valley, Isla Serena,
        Mount Kessel, Redcliffe, Dunmore, Gulf of Tamar, East Harlow, Cape Morrow"""), _names("""
        Ecuador, Finland, Ghana, Chile, Quito, Helsinki, Accra, Valparaíso, Port Ossel, Mirova,
        Tarvin, Eastfield, Salcombe, Upper Drava Valley, Lake Minnow, Cape Verity, Nordhavn,
        Kessel Ridge, Vessa""")),
    "NAT": ("MISC", "JJ", _names("""
        German, French, Brazilian, Kenyan, Norwegian, Japanese, Canadian, Peruvian, Moroccan,
        Portuguese, Velmarian, Icelandic, Swiss, Vietnamese, Jordanian"""), _names("""
        Finnish, Ghanaian, Chilean, Ecuadorian, Calderan, Mirovan""")),
    "EVENT": ("MISC", "NNP", _names("""
        Northern Cup, Harbour Marathon, Velmar Open, Expo 2031, Winter Games,
        Calder Film Festival, World Water Forum, Pacific Rim Regatta, Lake Oruna Triathlon,
        Autumn Book Fair, Grand Prix of Lisbon, Youth Championship 2029"""), _names("""
        Coastal Games, Vessa Jazz Week, Southern Shield, Expo 2035, Tarvin Half-Marathon""")),
    "PRODUCT": ("MISC", "NNP", _names("""
        Falcon X2, Nimbus-7, Orbit Pro 3, Kestrel K-40, Lumen Air, PocketLab, Veltrix One,
        Aurora 5G, Sprinter Max, Halcyon Home"""), _names("""
        Comet Z9, Halo Mini, Vireo S-12, TerraPad 2""")),
    "AMB_PER": ("PER", "NNP", AMBIGUOUS, []),
    "AMB_LOC": ("LOC", "NNP", AMBIGUOUS, []),
    "AMB_CLUB": ("ORG", "NNP", AMBIGUOUS_TOWNS, []),
}
ENTITY_FUNCTION_WORDS = {"of": "IN", "for": "IN", "&": "CC"}

# Penn Treebank tag of every literal template word (looked up lowercased).
WORDS_BY_TAG = {
    "DT": "the a an no",
    "IN": "of in on at for with from by after before near until as between without that "
          "while ahead over",
    "TO": "to",
    "CC": "and but",
    "PRP": "it he she we you",
    "PRP$": "his its",
    "POS": "'s",
    "EX": "there",
    "MD": "will would can",
    "RB": "not very twice now meanwhile yet down",
    "RP": "off",
    "WRB": "why how",
    "WP": "what who",
    "WDT": "which",
    "UH": "yes",
    "JJ": "new next last first second third further sharp modest slow useful difficult constructive "
          "happy pleased beautiful clear many heavy record chief prime foreign finance higher lower quiet",
    "NN": "company plant office factory year month week group trade security energy fishing spokesman "
          "spokeswoman quarter area meeting agreement market child man team side coach result place "
          "season minute turnout strike review government border recovery rain snow flooding stock exchange "
          "statement analyst chairman director founder executive minister president ambassador mayor "
          "governor storm deal striker defender goalkeeper comment forecast",
    "NNS": "reporters sales employees workers officials talks people hours fans diplomats troops doctors "
           "engineers teachers parts years stores offices shares injuries police stocks markets prices "
           "visitors thanks",
    "VB": "merge discuss win buy see leave return play hold send watch resume launch stay spend be co-host",
    "VBD": "said told rose fell slipped cut raised opened agreed met resigned arrived moved arrested beat "
           "won scored drew reviewed queued fined gathered ended criticised caused hit were was did joined "
           "released had flew closed deserved",
    "VBG": "creating missing",
    "VBN": "been evacuated hurt sent born held updated",
    "VBP": "are agree close thank",
    "VBZ": "is expects predicts hits unveils wins responds starts begins happens leaves",
    ",": ",", ".": ". ? !", ":": ";", "(": "(", ")": ")", "``": "``", "''": "''",
}
LEXICON = {word: tag for tag, words in WORDS_BY_TAG.items() for word in words.split()}

# Job titles are lowercase common nouns, never entities, even next to a name.
ROLES = ["spokesman", "chief executive", "analyst", "chairman", "director", "founder", "finance director"]
TITLES = ["prime minister", "foreign minister", "president", "ambassador", "mayor", "governor",
          "finance minister"]
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = "January February March April May June July August September October November December".split()

# Tokens are space-separated; {SLOT} is filled from ENTITY_SLOTS or FILLERS
# ({X_SHORT} keeps only the last word of an X name); "a|b" picks one word.
# Statements can also be chained into long sentences.
STATEMENTS = [
    "{ORG} said on {DAY} it would buy {ORG} for {MONEY} .",
    "{PER} , {ROLE} of {ORG} , told reporters in {LOC} that sales rose|fell {PCT} .",
    "Shares in {ORG} rose|fell|slipped {PCT} to {NUM} after the company cut|raised its forecast .",
    "The {NAT} company {ORG} opened a new plant|office|factory near {LOC} in {DATE} .",
    "{ORG} will launch the {PRODUCT} in {LOC} and {LOC} next year|month|week .",
    "{ORG} and {ORG} agreed to merge , creating a group with {NUM} employees|workers .",
    "{PER} met {NAT} officials in {LOC} on {DAY} to discuss trade|security|energy|fishing .",
    "The {TITLE} of {LOC} , {PER} , resigned|arrived on {DATE} .",
    "{LOC} 's {TITLE} {PER} said the talks were useful|difficult|constructive .",
    "Talks between {LOC} and {LOC} will resume in {LOC} on {DATE} , a spokesman|spokeswoman said .",
    "{PER} was born in {LOC} in {YEAR} and moved to {LOC} as a child .",
    "Police in {LOC} arrested a {AGE} man on {DAY} .",
    "{CLUB} beat {CLUB} {SCORE} on {DAY} .",
    "{NAT} {PER} won the {EVENT} in {LOC} on {DAY} .",
    "{PER} scored twice as {CLUB} drew {SCORE} with {CLUB} .",
    "{CLUB} coach {PER} said his team|side deserved to win .",
    "The {EVENT} will be held in {LOC} in {YEAR} .",
    "{PER} reviewed the new {PRODUCT} for {ORG} .",
    "Fans in {LOC} queued for hours to buy the {PRODUCT} .",
    "{PER} and {PER} will co-host the {EVENT} .",
    "The market closed higher|lower on {DAY} .",
    "Prices rose|fell {PCT} in the first|second|third quarter .",
    "It was not clear how many people were hurt .",
    "Officials said {NUM} people had been evacuated from the area .",
    "The meeting ended without an agreement .",
    "Turnout was {PCT} , down from {PCT} in {YEAR} .",
    "{PER_SHORT} said he|she would stay in {LOC} until {DATE} .",
    "{AMB_PER} flew to {AMB_LOC} on {DAY} to watch {AMB_CLUB} play .",
    "Visitors to {LOC} can see the {EVENT} from {DATE} to {DATE} .",
    "{ORG} fined {PER} {MONEY} for missing the {EVENT} .",
    "{NAT} and {NAT} fans|diplomats|troops gathered near the border with {LOC} .",
    "{ORG} {ROLE} {PER} expects|predicts a sharp|modest|slow recovery in {LOC} .",
    "A {COMPOUND} strike|review by {ORG} criticised the {LOC} government .",
    "The {AGE} striker|defender|goalkeeper joined {CLUB} from {CLUB} last season .",
    "{ORG} shares hit a record {NUM} on the {LOC} stock exchange .",
    "Heavy rain|snow caused flooding in {LOC} and parts of {LOC} .",
    "There were no injuries , police said .",
    "{PER} told {ORG} that {LOC} would send {NUM} doctors|engineers|teachers to {LOC} .",
]
# Questions, quotes and asides: never chained.
OTHER_SENTENCES = [
    "Why did {ORG} leave {LOC} ?",
    "`` We are very happy|pleased with the result , '' said {PER} .",
    "`` {LOC} is a beautiful|difficult place to play , '' {PER} told {ORG} .",
    "Will {PER} return to {CLUB} next season ?",
    "What happens now ?",
    "{PER} ( {CLUB} ) was sent off in the {ORDINAL} minute .",
]
SHORT_SENTENCES = [
    "{PER} .", "{AMB_LOC}", "Thank you .", "No comment .", "{ORG} responds", "Updated {DATE}",
    "{PER_SHORT} ?", "Not yet .", "{SCORE}", "Yes !", "Thanks",
]
LONG_SENTENCES = [
    "{PER} , who joined {ORG} in {YEAR} after {NUM} years at {ORG} , said on {DAY} that the group "
    "would spend {MONEY} on new stores|offices in {LOC} , {LOC} and {LOC} over the next {NUM} years .",
    "In a statement released in {LOC} on {DATE} , the {NAT} {TITLE} , {PER} , said that {LOC} and "
    "{LOC} had agreed to hold further talks before the {EVENT} , which starts|begins in {LOC} next month .",
]
HEADLINES = [
    "{ORG} to buy {ORG}", "{PER} wins {EVENT}", "{LOC} , {LOC} agree trade|border deal",
    "{CLUB} beat {CLUB} {SCORE}", "Storm hits {LOC}", "{NAT} stocks close higher|lower",
    "{ORG} unveils {PRODUCT}", "Markets quiet ahead of {EVENT}", "{AMB_PER} leaves {AMB_CLUB} for {AMB_LOC}",
]
CONNECTORS = [", while", ", and", "; meanwhile ,", ", but"]


def _literal(phrase):
    return [(word, LEXICON[word.lower()]) for word in phrase.split()]


def _number(rng):
    style = rng.random()
    if style < 0.5:
        return str(rng.randint(2, 99))
    if style < 0.8:
        return f"{rng.randint(100, 40000):,}"
    return f"{rng.randint(10, 999) / 10:.1f}"


def _date(rng):
    day = [(str(rng.randint(1, 28)), "CD")] if rng.random() < 0.6 else []
    return [(rng.choice(MONTHS), "NNP")] + day


def _money(rng):
    scale = [(rng.choice(["million", "billion"]), "CD")] if rng.random() < 0.5 else []
    return [("$", "$"), (_number(rng), "CD")] + scale


def _ordinal(number):
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


# Non-entity slots: each returns (word, POS) pairs tagged O.
FILLERS = {
    "DAY": lambda rng: [(rng.choice(DAYS), "NNP")],
    "DATE": _date,
    "YEAR": lambda rng: [(str(rng.randint(1985, 2030)), "CD")],
    "NUM": lambda rng: [(_number(rng), "CD")],
    "PCT": lambda rng: [(f"{rng.randint(1, 400) / 10:.1f}", "CD"), ("percent", "NN")],
    "MONEY": _money,
    "SCORE": lambda rng: [(f"{rng.randint(0, 5)}-{rng.randint(0, 4)}", "CD")],
    "AGE": lambda rng: [(f"{rng.randint(17, 39)}-year-old", "JJ")],
    "ORDINAL": lambda rng: [(_ordinal(rng.randint(2, 90)), "JJ")],
    "COMPOUND": lambda rng: [(f"{rng.randint(2, 48)}-{rng.choice(['hour', 'day', 'page', 'week'])}", "JJ")],
    "ROLE": lambda rng: _literal(rng.choice(ROLES)),
    "TITLE": lambda rng: _literal(rng.choice(TITLES)),
}


def fill(template, rng, pools):
    """Instantiate a template as (word, POS, NER) triples, never reusing a name within it."""
    used = []
    tokens = []
    for piece in template.split():
        if not piece.startswith("{"):
            word = rng.choice(piece.split("|"))
            tokens.append((word, LEXICON[word.lower()], "O"))
            continue
        slot = piece[1:-1]
        if slot in FILLERS:
            tokens += [(word, tag, "O") for word, tag in FILLERS[slot](rng)]
            continue
        kind = slot.removesuffix("_SHORT")
        label, tag = ENTITY_SLOTS[kind][:2]
        name = rng.choice([name for name in pools[kind] if name not in used])
        used.append(name)
        words = name.split()[-1:] if slot.endswith("_SHORT") else name.split()
        for position, word in enumerate(words):
            word_tag = ENTITY_FUNCTION_WORDS.get(word, "CD" if word.isdigit() else tag)
            tokens.append((word, word_tag, f"{'I' if position else 'B'}-{label}"))
    return tokens


def _recase(tokens, change_case):
    return [(change_case(word), tag, ner) for word, tag, ner in tokens]


def _chained_sentence(rng, pools):
    """Join statements with connectors until the sentence has 30-50 tokens."""
    while True:
        tokens = fill(rng.choice(STATEMENTS), rng, pools)[:-1]
        while len(tokens) < 30:
            clause = fill(rng.choice(STATEMENTS), rng, pools)[:-1]
            word, tag, ner = clause[0]
            if ner == "O" and tag != "NNP":  # a clause start is no longer sentence-initial
                clause[0] = (word.lower(), tag, ner)
            connector = [(piece, LEXICON[piece], "O") for piece in rng.choice(CONNECTORS).split()]
            tokens += connector + clause
        if len(tokens) < 50:
            return tokens + [(".", ".", "O")]


def _body_sentence(rng, pools):
    roll = rng.random()
    if roll < 0.06:
        return fill(rng.choice(SHORT_SENTENCES), rng, pools)
    if roll < 0.10:
        return _chained_sentence(rng, pools)
    if roll < 0.12:
        return fill(rng.choice(LONG_SENTENCES), rng, pools)
    sentence = fill(rng.choice(STATEMENTS + OTHER_SENTENCES), rng, pools)
    return _recase(sentence, str.lower) if roll > 0.98 else sentence  # some all-lowercase text


def _headline(rng, pools):
    headline = fill(rng.choice(HEADLINES), rng, pools)
    roll = rng.random()
    if roll < 0.6:
        return _recase(headline, str.upper)
    return _recase(headline, str.lower) if roll < 0.8 else headline


def generate_documents(sentence_count, rng, pools):
    """Documents of 4-16 sentences, most opening with a headline, until sentence_count is reached."""
    documents = []
    while sentence_count > 0:
        size = min(sentence_count, rng.randint(4, 16))
        document = [_headline(rng, pools)] if rng.random() < 0.7 else []
        while len(document) < size:
            document.append(_body_sentence(rng, pools))
        documents.append(document)
        sentence_count -= size
    return documents


NP_TAGS = {"DT", "PRP", "PRP$", "POS", "EX", "WP", "WDT", "$", "CD", "JJ", "NN", "NNS", "NNP", "NNPS"}
NP_OPENERS = {"DT", "PRP", "PRP$", "POS", "EX", "WP", "WDT", "$"}  # always start a new noun phrase
VERB_TAGS = {"MD", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ"}
SUBORDINATORS = {"that", "while"}
SINGLE_TOKEN_CHUNKS = {"RP": "PRT", "WRB": "ADVP", "UH": "INTJ"}


def chunk_tags(words, tags):
    """Rule-based IOB2 chunk tags from POS tags: good enough to look like CoNLL-2003."""
    chunks = []
    for index, (word, tag) in enumerate(zip(words, tags)):
        previous = chunks[-1][2:] if chunks else ""
        following = tags[index + 1] if index + 1 < len(tags) else ""
        continues = False
        if tag in NP_TAGS:
            predicative = tag == "JJ" and previous != "NP" and following not in NP_TAGS
            phrase = "ADJP" if predicative else "NP"
            continues = phrase == previous == "NP" and tag not in NP_OPENERS
        elif tag in VERB_TAGS or (tag == "TO" and following == "VB") or (
                tag == "RB" and previous == "VP" and following in VERB_TAGS):
            phrase = "VP"
            continues = previous == "VP"
        elif tag == "RB":
            phrase = "ADVP"
        elif tag in ("IN", "TO"):
            phrase = "SBAR" if word.lower() in SUBORDINATORS else "PP"
        elif tag in SINGLE_TOKEN_CHUNKS:
            phrase = SINGLE_TOKEN_CHUNKS[tag]
        else:  # punctuation and conjunctions sit outside chunks
            chunks.append("O")
            continue
        chunks.append(f"{'I' if continues else 'B'}-{phrase}")
    return chunks


def format_conll(documents):
    lines = []
    for document in documents:
        lines += [DOCSTART, ""]
        for sentence in document:
            words, tags, ners = zip(*sentence)
            lines += [" ".join(columns) for columns in zip(words, tags, chunk_tags(words, tags), ners)]
            lines.append("")
    return "\n".join(lines) + "\n"


def generate(out_dir, seed=DEFAULT_SEED, sizes=DEFAULT_SIZES):
    """Write train/dev/test .txt files into out_dir; return {split: documents}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = {}
    for split, sentence_count in sizes.items():
        pools = {slot: seen + (unseen if split != "train" else [])
                 for slot, (_, _, seen, unseen) in ENTITY_SLOTS.items()}
        # One generator per split, so changing one split's size leaves the others unchanged.
        rng = random.Random(f"{seed}-{split}")
        corpus[split] = generate_documents(sentence_count, rng, pools)
        (out_dir / f"{split}.txt").write_text(format_conll(corpus[split]), encoding="utf-8", newline="\n")
    return corpus


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder for train.txt/dev.txt/test.txt (default: data/sample in the repo)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    for split, count in DEFAULT_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=count,
                            help=f"number of {split} sentences (default: {count})")
    args = parser.parse_args()
    sizes = {split: getattr(args, split) for split in DEFAULT_SIZES}
    for split, documents in generate(args.out, args.seed, sizes).items():
        sentences = [sentence for document in documents for sentence in document]
        tokens = sum(len(sentence) for sentence in sentences)
        print(f"{args.out / split}.txt: {len(documents)} documents, {len(sentences)} sentences, {tokens} tokens")


if __name__ == "__main__":
    main()
