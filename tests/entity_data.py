"""Named-entity fixtures made from the Brown corpus (`../shared/data/brown`).

No named-entity set ships in a reachable registry, so entities are made from
Brown's part-of-speech tags (CoNLL `word<TAB>tag`, Brown tagset, tags in
lower case): each maximal run of consecutive proper-noun words (a tag that
starts with `np`: `np`, `np$`, `nps`, `nps$`, `np-tl`, `np-hl`, `np+bez`,
...) is one entity, written in IOB2. Its type is `GROUP` when the run's last
word (the head) is a plural proper noun (`nps...`: "Democrats", "Yankees"),
else `NAME` ("Mr. Kennedy", "San Francisco"; "Fulton County Grand Jury" is
`Fulton/np-tl County/nn-tl ...`, so only "Fulton").
"""


def brown_entities(path, limit):
    """`[(words, IOB2 tags)]` of the first `limit` sentences of a Brown file."""
    from keraslm import data

    brown = data.read_conll(path)
    sentences = []
    for words, tags in list(zip(brown.tokens, brown.tags))[:limit]:
        entity_tags, run = [], []
        for tag in [*tags, "."]:  # a non-name after the last word ends the last run
            if tag.lower().startswith("np"):
                run.append(tag.lower())
                continue
            if run:
                kind = "GROUP" if run[-1].startswith("nps") else "NAME"
                entity_tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(run) - 1)
                run = []
            entity_tags.append("O")
        sentences.append((words, entity_tags[:len(words)]))
    return sentences


def write_conll(path, sentences):
    """Writes `[(words, tags)]` as CoNLL (`word<TAB>tag`, blank line between)."""
    with open(path, "w", encoding="utf-8") as handle:
        for words, tags in sentences:
            handle.write("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) + "\n")
    return path
