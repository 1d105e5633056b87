import json

import pytest

from lstm_demo.config import PreprocessConfig, TokenizerConfig
from lstm_demo.tokenization import CHARS_PER_TOKEN, PAD_ID, UNK_ID, TextEncoder, english_stopwords

KINDS = ["word", "bpe", "wordpiece"]

CORPUS = [
    "The movie was great and the acting was wonderful.",
    "I don't like running, but she runs every day.",
    "The Café served terrible coffee; the cafe next door is better.",
    "CAFÉ owners love their Cafe regulars.",
    "Unbelievably good! I would watch it again.",
    "A boring, slow and predictable plot.",
    "She was running late, so the movie started without her.",
    "twice twice once",
]

PROBES = [
    "The movie was great!",
    "I don't like the Café's coffee.",
    "unbelievably boring plot, zyzzyva",
    "",
    "runs running RUN",
]

STOP_AND_STEM = PreprocessConfig(remove_stopwords=True, stem=True)


def train(kind: str = "word", vocab_size: int = 500, min_frequency: int = 1, **preprocess) -> TextEncoder:
    return TextEncoder.train(
        CORPUS,
        PreprocessConfig(**preprocess),
        TokenizerConfig(kind=kind, vocab_size=vocab_size, min_frequency=min_frequency),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_pad_is_0_and_unk_is_1(kind):
    encoder = train(kind)
    assert (PAD_ID, UNK_ID) == (0, 1)
    assert encoder.id_to_token(PAD_ID) == "[PAD]"
    assert encoder.id_to_token(UNK_ID) == "[UNK]"
    with pytest.raises(IndexError):
        encoder.id_to_token(encoder.vocab_size)


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        ("word", "zyzzyva", ["[UNK]"]),  # a word never seen in training
        ("word", "movie zyzzyva", ["movie", "[UNK]"]),
        ("bpe", "ж", ["[UNK]"]),  # a character never seen in training
        ("wordpiece", "ж", ["[UNK]"]),
    ],
)
def test_unknown_input_becomes_unk(kind, text, expected):
    encoded = train(kind).encode(text)
    assert encoded.tokens == expected
    assert UNK_ID in encoded.ids


@pytest.mark.parametrize("kind", KINDS)
def test_text_that_spells_a_special_token_is_plain_text(kind):
    assert PAD_ID not in train(kind).encode("[PAD] [UNK]").ids


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("preprocess", [PreprocessConfig(), STOP_AND_STEM], ids=["plain", "stop+stem"])
def test_save_load_round_trip_gives_identical_ids(kind, preprocess, tmp_path):
    config = TokenizerConfig(kind=kind, vocab_size=300)
    encoder = TextEncoder.train(CORPUS, preprocess, config)
    path = encoder.save(tmp_path / "run")
    assert path == tmp_path / "run" / "tokenizer.json"
    loaded = TextEncoder.load(tmp_path / "run", preprocess, config)
    bundled = TextEncoder.from_json(encoder.to_json(), preprocess, config)
    expected = [encoder.encode(t) for t in PROBES]
    assert [loaded.encode(t) for t in PROBES] == expected
    assert [bundled.encode(t) for t in PROBES] == expected
    assert loaded.vocab_size == encoder.vocab_size


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("steps", [{}, {"remove_stopwords": True, "stem": True}], ids=["plain", "stop+stem"])
def test_truncates_to_max_length(kind, steps):
    text = " ".join(CORPUS)
    full = train(kind, max_length=512, **steps)
    # the same tokenizer under a shorter max_length: the run's config decides where texts are cut
    short = TextEncoder.from_json(full.to_json(), PreprocessConfig(max_length=5, **steps), full.config)
    long_, cut = full.encode(text), short.encode(text)
    assert len(long_.ids) > 5
    assert cut.ids == long_.ids[:5]
    assert cut.word_index == long_.word_index[:5]
    # the words shown stop where the model stopped reading
    assert cut.words == long_.words[: cut.word_index[-1] + 1]
    assert short.encode_batch([text]) == [cut.ids]


class _Recording:
    """A tokenizer stand-in that passes every call on and records the lengths of the texts it is given."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.lengths = tokenizer, []

    def __getattr__(self, name):
        method = getattr(self.tokenizer, name)
        if not name.startswith("encode"):
            return method

        def recorded(texts, *args, **kwargs):
            self.lengths += [len(texts)] if isinstance(texts, str) else [len(t) for t in texts]
            return method(texts, *args, **kwargs)

        return recorded


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("steps", [{}, {"remove_stopwords": True, "stem": True}], ids=["plain", "stop+stem"])
def test_a_huge_text_is_cut_before_the_tokenizer_sees_it_with_the_same_tokens(kind, steps):
    encoder = train(kind, max_length=16, **steps)
    huge = " ".join(CORPUS) * 80_000  # about 30 M characters
    normal = huge[:2_000]
    expected = encoder.encode(normal)
    encoder.tokenizer = _Recording(encoder.tokenizer)
    got = encoder.encode(huge)
    assert (got.ids, got.tokens, got.word_index, got.words) == (
        expected.ids, expected.tokens, expected.word_index, expected.words,
    )  # fmt: skip
    assert encoder.encode_batch([huge, normal]) == [expected.ids, expected.ids]
    assert len(huge) > 10**7 and max(encoder.tokenizer.lengths) <= 16 * CHARS_PER_TOKEN


def test_a_cut_never_splits_a_word():
    encoder = train("word", max_length=1)
    text = "great " + "x" * CHARS_PER_TOKEN
    assert encoder.cut(text) == "great"
    assert encoder.cut("y" * 100) == "y" * CHARS_PER_TOKEN  # one endless word: cut where the bound is
    assert encoder.cut("short text") == "short text"


@pytest.mark.parametrize(
    "lowercase, strip_accents, a, b, same",
    [
        (True, True, "Café", "cafe", True),
        (True, True, "CAFÉ", "cafe", True),
        (True, False, "Café", "cafe", False),
        (True, False, "CAFÉ", "café", True),
        (False, True, "Café", "Cafe", True),
        (False, True, "Cafe", "cafe", False),
        (False, False, "Café", "Cafe", False),
    ],
)
def test_lowercase_and_accent_options(lowercase, strip_accents, a, b, same):
    encoder = train("word", lowercase=lowercase, strip_accents=strip_accents)
    ids_a, ids_b = encoder.encode(a).ids, encoder.encode(b).ids
    assert UNK_ID not in ids_a + ids_b  # both spellings were in the training texts
    assert (ids_a == ids_b) is same


@pytest.mark.parametrize("kind", KINDS)
def test_stop_words_are_removed_but_still_shown(kind):
    plain = train(kind).encode("the movie")
    removed = train(kind, remove_stopwords=True).encode("the movie")
    assert "the" in plain.tokens
    assert "the" not in removed.tokens
    assert removed.words == ["the", "movie"]
    assert set(removed.word_index) == {1}  # "the" keeps its place among the words but has no tokens
    assert train(kind, remove_stopwords=True).encode("The and of").ids == []


@pytest.mark.parametrize("kind", KINDS)
def test_stemming_maps_inflections_to_the_same_ids(kind):
    stemmed = train(kind, stem=True)
    assert stemmed.encode("running").ids == stemmed.encode("runs").ids
    assert stemmed.encode("running").words == ["running"]  # the user's word, not the stem
    plain = train(kind)
    assert plain.encode("running").ids != plain.encode("runs").ids


def test_min_frequency_excludes_rare_words():
    rare, frequent = "once", "twice"  # once and twice in CORPUS
    assert train("word", min_frequency=1).encode(rare).ids != [UNK_ID]
    strict = train("word", min_frequency=2)
    assert strict.encode(rare).ids == [UNK_ID]
    assert strict.encode(frequent).ids != [UNK_ID]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vocab_size", [12, 40, 80])
def test_vocab_size_is_an_upper_bound(kind, vocab_size):
    encoder = train(kind, vocab_size=vocab_size)
    assert encoder.vocab_size <= vocab_size
    assert max(max(ids, default=0) for ids in encoder.encode_batch(CORPUS)) < encoder.vocab_size


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("preprocess", [PreprocessConfig(), STOP_AND_STEM], ids=["plain", "stop+stem"])
@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_encodes_to_nothing(kind, preprocess, text):
    encoder = TextEncoder.train(CORPUS, preprocess, TokenizerConfig(kind=kind))
    encoded = encoder.encode(text)
    assert (encoded.ids, encoded.tokens, encoded.word_index, encoded.words) == ([], [], [], [])
    assert encoder.encode_batch([text, text]) == [[], []]


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
@pytest.mark.parametrize("preprocess", [{}, {"remove_stopwords": True}], ids=["plain", "stopwords"])
def test_subwords_group_back_into_the_users_words(kind, preprocess):
    encoder = train(kind, vocab_size=60, **preprocess)
    encoded = encoder.encode("Unbelievably, the  Café!")
    assert encoded.words == ["Unbelievably,", "the", "Café!"]  # surface forms, not "unbelievably"/"cafe"
    assert len(encoded.ids) == len(encoded.tokens) == len(encoded.word_index)
    first = [t for t, w in zip(encoded.tokens, encoded.word_index, strict=True) if w == 0]
    assert len(first) > 2  # the small vocabulary splits the long word into several subwords
    assert encoded.word_index == sorted(encoded.word_index)


def test_contraction_stays_one_word():
    encoded = train("word").encode("I don't")
    assert encoded.tokens == ["i", "don", "'", "t"]
    assert encoded.word_index == [0, 1, 1, 1]
    assert encoded.words == ["I", "don't"]


def _corrupt(kind: str, tmp_path, how: str):
    encoder = train(kind)
    path = encoder.save(tmp_path)
    data = json.loads(path.read_text())
    if how == "not json":
        path.write_text("{ this is not json")
    elif how == "truncated":
        path.write_text(encoder.to_json()[:200])
    elif how == "empty object":
        path.write_text("{}")
    elif how == "swapped specials":
        vocab = data["model"]["vocab"]
        vocab["[PAD]"], vocab["[UNK]"] = vocab["[UNK]"], vocab["[PAD]"]
        path.write_text(json.dumps(data))
    elif how == "missing":
        path.unlink()
    return tmp_path


@pytest.mark.parametrize(
    "how, message",
    [
        ("not json", "not a valid tokenizer"),
        ("truncated", "not a valid tokenizer"),
        ("empty object", "not a valid tokenizer"),
        ("swapped specials", r"\[PAD\] to 0 and \[UNK\] to 1"),
        ("missing", "no tokenizer.json"),
    ],
)
def test_bad_tokenizer_file_raises_a_clear_error(how, message, tmp_path):
    directory = _corrupt("word", tmp_path, how)
    with pytest.raises(ValueError, match=message):
        TextEncoder.load(directory, PreprocessConfig(), TokenizerConfig(kind="word"))


def test_tokenizer_of_another_kind_is_rejected(tmp_path):
    train("word").save(tmp_path)
    with pytest.raises(ValueError, match="WordLevel model but the run's tokenizer kind is 'bpe'"):
        TextEncoder.load(tmp_path, PreprocessConfig(), TokenizerConfig(kind="bpe"))


def test_training_on_texts_without_tokens_raises():
    with pytest.raises(ValueError, match="no tokens"):
        TextEncoder.train(["", "  "], PreprocessConfig(), TokenizerConfig())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "preprocess",
    [
        PreprocessConfig(),
        PreprocessConfig(lowercase=False, strip_accents=False, max_length=6),
        PreprocessConfig(remove_stopwords=True),
        PreprocessConfig(stem=True, max_length=4),
        STOP_AND_STEM,
    ],
    ids=["default", "cased+truncated", "stopwords", "stem+truncated", "stop+stem"],
)
def test_encode_batch_matches_encode(kind, preprocess):
    encoder = TextEncoder.train(CORPUS, preprocess, TokenizerConfig(kind=kind, vocab_size=80))
    texts = CORPUS + PROBES
    assert encoder.encode_batch(texts) == [encoder.encode(t).ids for t in texts]


def test_stop_word_list():
    words = english_stopwords()
    assert {"the", "and", "is", "not", "don", "t"} <= words
    assert 140 <= len(words) <= 200
    assert all(w == w.lower() and w.isalpha() for w in words)
