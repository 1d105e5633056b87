"""Text -> token ids: preprocessing plus a Hugging Face `tokenizers` tokenizer trained on the training split.

The only module that imports `tokenizers`. Lowercasing and accent stripping live in the tokenizer's own
normalizer, so they are saved in `tokenizer.json`. Stop-word removal and stemming cannot be serialized
there; they run in Python on each pre-tokenized word, after the same normalisation, and the saved
`PreprocessConfig` says whether they are on. Both paths are used identically at train and predict time.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import accumulate
from pathlib import Path

import snowballstemmer
from tokenizers import PreTokenizedString, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from lstm_demo.config import PreprocessConfig, TokenizerConfig
from lstm_demo.names import PAD_ID, UNK_ID

PAD, UNK = "[PAD]", "[UNK]"
SPECIAL_TOKENS = [PAD, UNK]  # this order gives [PAD] id 0 and [UNK] id 1
FILENAME = "tokenizer.json"
MAX_ALPHABET = 1000  # initial characters kept by the BPE/WordPiece trainers (BERT's choice)
# a text is cut to max_length times this many characters before it is tokenized: the first
# max_length tokens of any text of words lie well within it (stop words removed included), and
# a huge text never reaches the tokenizer whole
CHARS_PER_TOKEN = 32
_LAST_SPACE = re.compile(r"\s\S*\Z")  # where the last word of a cut text starts

_MODELS = {"word": models.WordLevel, "bpe": models.BPE, "wordpiece": models.WordPiece}


@dataclass(frozen=True)
class Encoded:
    ids: list[int]  # token ids, truncated to max_length; empty when the text has no tokens
    tokens: list[str]  # the token strings (subwords for BPE/WordPiece)
    word_index: list[int]  # for each token, the index of the word it came from (into `words`)
    words: list[str]  # the user's own whitespace-separated words ("don't", "great!"), cut where truncated


@lru_cache(maxsize=1)
def english_stopwords() -> frozenset[str]:
    """The English stop-word list shipped in `resources/stopwords_en.txt`."""
    text = resources.files("lstm_demo").joinpath("resources/stopwords_en.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() if (w := line.strip()) and not w.startswith("#"))


class _WordSteps:
    """Stop-word removal and stemming on the words the tokenizer's normalizer and pre-tokenizer produce."""

    def __init__(
        self,
        preprocess: PreprocessConfig,
        normalizer: normalizers.Normalizer,
        pre_tokenizer: pre_tokenizers.PreTokenizer,
    ) -> None:
        self.normalizer = normalizer
        self.pre_tokenizer = pre_tokenizer
        self.stopwords = english_stopwords() if preprocess.remove_stopwords else frozenset()
        self.stemmer = snowballstemmer.stemmer("english") if preprocess.stem else None
        self.active = preprocess.remove_stopwords or preprocess.stem
        self._stems: dict[str, str] = {}
        self._lock = threading.Lock()  # the pure-Python Snowball stemmer keeps state while it works

    def splits(self, text: str) -> list[tuple[str | None, tuple[int, int]]]:
        """Each pre-tokenized word as (processed word, or None when removed; char span in `text`)."""
        pretokenized = PreTokenizedString(text)
        pretokenized.normalize(self.normalizer.normalize)
        self.pre_tokenizer.pre_tokenize(pretokenized)
        splits = pretokenized.get_splits(offset_referential="original", offset_type="char")
        return [(self._process(word), span) for word, span, _ in splits]

    def text(self, text: str) -> str:
        """The kept, stemmed words joined by spaces: what the tokenizer trains on and encodes.

        Spaces are always a pre-tokenizer boundary, so the tokenizer splits this back into these words.
        """
        return " ".join(w for w, _ in self.splits(text) if w is not None)

    def _process(self, word: str) -> str | None:
        if word.lower() in self.stopwords:
            return None
        if self.stemmer is None:
            return word
        stem = self._stems.get(word)
        if stem is None:
            with self._lock:
                stem = self._stems[word] = self.stemmer.stemWord(word)
        return stem


class TextEncoder:
    """A trained tokenizer plus the preprocessing it was trained with; turns texts into token ids."""

    def __init__(self, tokenizer: Tokenizer, preprocess: PreprocessConfig, config: TokenizerConfig) -> None:
        _check(tokenizer, config)
        tokenizer.encode_special_tokens = True  # a literal "[PAD]" in a text is text, never id 0
        tokenizer.no_padding()  # the training loop pads its own batches
        tokenizer.enable_truncation(preprocess.max_length)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.config = config
        # the tokenizer's own normalizer and pre-tokenizer, so tokenizer.json decides how words are cut
        self._steps = _WordSteps(preprocess, tokenizer.normalizer, tokenizer.pre_tokenizer)

    @classmethod
    def train(
        cls, texts: Sequence[str], preprocess: PreprocessConfig, config: TokenizerConfig
    ) -> TextEncoder:
        """Train a new tokenizer on `texts` (the training split only, so validation words stay unseen)."""
        tokenizer = _blank_tokenizer(preprocess, config)
        # separate copies: calling into a tokenizer's normalizer while it trains deadlocks
        steps = _WordSteps(preprocess, _normalizer(preprocess), _pre_tokenizer())

        def corpus() -> Iterator[str]:
            for text in texts:
                yield steps.text(text) if steps.active else text

        tokenizer.train_from_iterator(corpus(), _trainer(config), length=len(texts))
        if tokenizer.get_vocab_size() <= len(SPECIAL_TOKENS):
            raise ValueError("the training texts contain no tokens to build a vocabulary from")
        return cls(tokenizer, preprocess, config)

    def encode(self, text: str) -> Encoded:
        """Ids plus the words they came from, for showing attributions on the user's own words."""
        text = self.cut(text)
        if not self._steps.active:
            enc = self.tokenizer.encode(text)
            word_index, spans = _group(enc.offsets)
        else:
            splits = self._steps.splits(text)
            kept = [i for i, (word, _) in enumerate(splits) if word is not None]
            kept_words = [splits[i][0] for i in kept]
            enc = self.tokenizer.encode(" ".join(kept_words))  # the same string as `_WordSteps.text`
            # where each kept word starts in that string, to find each token's word from its offset
            starts = [0, *accumulate(len(w) + 1 for w in kept_words)]
            # group every split, removed ones too, so a removed stop word still shows as a word
            split_word, spans = _group([span for _, span in splits])
            word_index = [split_word[kept[bisect_right(starts, s) - 1]] for s, _ in enc.offsets]
        if enc.overflowing and word_index:  # truncated: the words after the cut never reached the model
            spans = spans[: word_index[-1] + 1]
        words = [text[start:end] for start, end in spans]
        return Encoded(ids=list(enc.ids), tokens=list(enc.tokens), word_index=word_index, words=words)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids only, through the Rust batch encoder; equal to `[encode(t).ids for t in texts]`."""
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        texts = [self.cut(t) for t in texts]
        if self._steps.active:
            encodings = encode([self._steps.text(t) for t in texts])
        else:
            encodings = encode(list(texts))
        return [e.ids for e in encodings]

    def cut(self, text: str) -> str:
        """The text cut to `max_length * CHARS_PER_TOKEN` characters, before its last word there, so no
        word is cut in half: the tokens the model reads are the same, the work bounded."""
        bound = self.preprocess.max_length * CHARS_PER_TOKEN
        if len(text) <= bound:
            return text
        text = text[:bound]
        last = _LAST_SPACE.search(text)
        return text[: last.start()] if last else text

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def id_to_token(self, i: int) -> str:
        token = self.tokenizer.id_to_token(i)
        if token is None:
            raise IndexError(f"token id {i} is outside the vocabulary of {self.vocab_size}")
        return token

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path))
        return path

    @classmethod
    def load(
        cls, directory: str | Path, preprocess: PreprocessConfig, config: TokenizerConfig
    ) -> TextEncoder:
        path = Path(directory) / FILENAME
        if not path.is_file():
            raise ValueError(f"no {FILENAME} in {directory}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read {path}: {e}") from e
        return cls.from_json(text, preprocess, config)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    @classmethod
    def from_json(cls, s: str, preprocess: PreprocessConfig, config: TokenizerConfig) -> TextEncoder:
        try:
            tokenizer = Tokenizer.from_str(s)
        except Exception as e:  # tokenizers raises a bare Exception for any parse error
            raise ValueError(f"{FILENAME} is not a valid tokenizer: {e}") from e
        return cls(tokenizer, preprocess, config)


def _blank_tokenizer(preprocess: PreprocessConfig, config: TokenizerConfig) -> Tokenizer:
    tokenizer = Tokenizer(_MODELS[config.kind](unk_token=UNK))
    tokenizer.normalizer = _normalizer(preprocess)
    tokenizer.pre_tokenizer = _pre_tokenizer()
    if config.kind == "wordpiece":
        tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def _normalizer(preprocess: PreprocessConfig) -> normalizers.Normalizer:
    steps: list[normalizers.Normalizer] = [normalizers.NFD()]
    if preprocess.lowercase:
        steps.append(normalizers.Lowercase())
    if preprocess.strip_accents:
        steps.append(normalizers.StripAccents())  # drops the combining marks NFD split off
    steps.append(normalizers.NFC())
    return normalizers.Sequence(steps)


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Whitespace()  # \w+|[^\w\s]+ : "don't" -> don ' t, "great!!" -> great !!


def _trainer(config: TokenizerConfig) -> trainers.Trainer:
    common = dict(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    if config.kind == "word":
        return trainers.WordLevelTrainer(**common)
    room = config.vocab_size - len(SPECIAL_TOKENS)
    if config.kind == "bpe":
        return trainers.BpeTrainer(limit_alphabet=max(1, min(MAX_ALPHABET, room)), **common)
    # WordPiece adds "##c" beside every character "c", so its alphabet takes up to twice the room.
    # Its training is not deterministic (huggingface/tokenizers#1794): the saved tokenizer.json is the truth.
    return trainers.WordPieceTrainer(limit_alphabet=max(1, min(MAX_ALPHABET, room // 2)), **common)


def _check(tokenizer: Tokenizer, config: TokenizerConfig) -> None:
    """Reject a tokenizer this app did not build: wrong kind, missing steps, [PAD]/[UNK] not at ids 0/1."""
    expected = _MODELS[config.kind]
    if not isinstance(tokenizer.model, expected):
        raise ValueError(
            f"{FILENAME} holds a {type(tokenizer.model).__name__} model but the run's tokenizer kind is "
            f"{config.kind!r} ({expected.__name__})"
        )
    if tokenizer.normalizer is None or tokenizer.pre_tokenizer is None:
        raise ValueError(f"{FILENAME} has no normalizer or no pre-tokenizer; train a new tokenizer")
    pad, unk = tokenizer.token_to_id(PAD), tokenizer.token_to_id(UNK)
    if (pad, unk) != (PAD_ID, UNK_ID):
        raise ValueError(
            f"{FILENAME} must map {PAD} to {PAD_ID} and {UNK} to {UNK_ID}, found {pad} and {unk}"
        )
    if getattr(tokenizer.model, "unk_token", UNK) != UNK:
        raise ValueError(f"{FILENAME} model's unknown token must be {UNK}")


def _group(spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[tuple[int, int]]]:
    """Join spans that touch into whitespace-separated words: each span's word index and each word's span."""
    index: list[int] = []
    words: list[tuple[int, int]] = []
    for start, end in spans:
        if words and start <= words[-1][1]:
            words[-1] = (words[-1][0], max(end, words[-1][1]))
        else:
            words.append((start, end))
        index.append(len(words) - 1)
    return index, words
