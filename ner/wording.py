"""How messages put numbers into words."""


def counted(count: int, noun: str) -> str:
    """'1 shard', '2 shards', '0 shards': the count and its noun, plural unless the count is 1 (for
    nouns whose plural adds -s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
