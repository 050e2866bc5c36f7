"""One genre module (tools/genres.py): every place that names a genre agrees with it."""

from __future__ import annotations

import typing
from importlib import resources

import pytest

from tools import genres as G

# shared/VOCABULARY.md, "Genres (nearest preset)": alias → genre
VOCABULARY_ALIASES = {
    "trap": "hip_hop",
    "drill": "hip_hop",
    "boom bap": "hip_hop",
    "rap": "hip_hop",
    "house": "edm",
    "techno": "edm",
    "dubstep": "edm",
    "edm": "edm",
    "dance": "edm",
    "soul": "rnb",
    "neo-soul": "rnb",
    "indie": "rock",
    "alternative": "rock",
    "punk": "rock",
    "death": "metal",
    "thrash": "metal",
    "singer-songwriter": "acoustic",
    "folk": "acoustic",
    "unplugged": "acoustic",
    "lofi": "lofi",
    "chillhop": "lofi",
    "orchestral": "classical",
    "chamber music": "classical",
    "podcast": "speech",
    "voice-over": "speech",
    "audiobook": "speech",
}
# words that are genres for the planner too (not the spoken-word formats, which it reads as platforms)
PLANNER_GENRE_WORDS = {w: g for w, g in VOCABULARY_ALIASES.items() if g != "speech"} | {
    "hip hop": "hip_hop",
    "r&b": "rnb",
    "r'n'b": "rnb",
    "electronic": "edm",
    "lo-fi": "lofi",
    "jazz": "jazz",
    "country": "country",
    "pop": "pop",
    "rock": "rock",
    "metal": "metal",
    "classical": "classical",
    "acoustic": "acoustic",
    "death metal": "metal",
}


def planner_genres(text: str) -> list[str]:
    from agents.semantic.parse import parse

    return [m.obj for c in parse(text).clauses for m in c.matches if m.kind == "genre"]


@pytest.mark.parametrize("genre", G.GENRES)
def test_every_genre_loads_a_typed_preset(genre):
    p = G.load_preset(genre)
    assert p.name == genre and p.title
    assert -30.0 <= G.genre_loudness(genre) <= -6.0
    assert p.recommend, genre  # memory's prior for the genre


def test_every_preset_file_is_a_known_genre():
    files = {
        f.name.removesuffix(".toml")
        for f in resources.files("tools").joinpath("presets").iterdir()
        if f.name.endswith(".toml")
    }
    assert files == set(G.GENRES)
    with pytest.raises(ValueError, match="known genres"):
        G.load_preset("polka")


def test_every_genre_word_the_planner_knows_has_a_preset():
    from agents.semantic import vocabulary as V

    for pattern, genre in V.GENRES:
        assert genre in G.GENRES, (pattern, genre)
        G.load_preset(genre)
    for _, genre in G.SPEECH_WORDS:
        G.load_preset(genre)


def test_the_places_that_name_genres_agree():
    from agents import memory_estimator
    from agents.semantic import chains
    from app.commands.recommend import GENRES as CLI_GENRES
    from tools.genre_preset import GenrePresetParams

    assert typing.get_args(GenrePresetParams.model_fields["genre"].annotation) == G.GENRES
    assert CLI_GENRES == G.GENRES
    assert chains.genre_loudness("pop") == G.genre_loudness("pop") == G.load_preset("pop").loudness_lufs
    for g in G.GENRES:
        assert memory_estimator.genre_prior(g) == G.load_preset(g).recommend, g
    from agents import contract

    genre_type = getattr(contract, "Genre", None)
    if genre_type is not None:
        assert typing.get_args(genre_type) == G.GENRES


def test_memory_priors_are_tool_params_within_bounds():
    from tools.registry import get_tool

    for genre in G.GENRES:
        for tool, params in G.load_preset(genre).recommend.items():
            fields = get_tool(tool).params.model_fields
            for name, value in params.items():
                assert name in fields, (genre, tool, name)
                get_tool(tool).params(**{name: value})  # within the tool's bounds


@pytest.mark.parametrize("word,genre", sorted(VOCABULARY_ALIASES.items()))
def test_vocabulary_aliases_name_the_same_genre_for_memory(word, genre):
    from agents.memory_agent import genre_from_request

    assert G.genre_in(f"make it sound like {word}") == genre
    assert genre_from_request(f"master it like {word}") == genre


@pytest.mark.parametrize("word,genre", sorted(PLANNER_GENRE_WORDS.items()))
def test_planner_and_memory_read_a_genre_word_alike(word, genre):
    from agents.memory_agent import genre_from_request

    assert planner_genres(f"master it in a {word} style") == [genre]
    assert genre_from_request(f"master it in a {word} style") == genre


def test_words_that_are_not_genres():
    for text in ("louder please", "add a chamber reverb", "remove the pop filter thump", "wrap it up"):
        assert G.genre_in(text) is None, text
