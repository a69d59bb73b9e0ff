"""Scores for generated stories, computed the way the StoryReasoning authors do (docs/model-contract.md section 6).

Grounding compares the boxes of a candidate's analysis tables with a reference's: every
Characters row is a box of type "person", every Objects row (objects, background regions,
landmarks) a box labelled by the first word of its description, which is a person box only
when that word is "person". Boxes are normalised by the size of their frame, then matched
greedily one-to-one, highest IoU first, among pairs of equal type (person / non-person) with
IoU >= 0.5. Frame numbers and ids are not compared: a box may match a box of another frame.
Per story: precision = matched candidates / candidates (1.0 without candidates), recall =
matched references / references (1.0 without references), and VOC 11-point AP over the
candidates in table order (frames by number, Characters before Objects); every score is then
averaged over the stories.

Where the authors' script and this module part ways, on inputs the published numbers hardly
ever meet, the choice here is deliberate:
- a box is clipped to its frame; the authors clip x, y, width and height separately, which
  differs only for boxes that leave the frame;
- the boxes of an analysed frame the story does not have ("## Image 4" of a three-photo
  story) count as candidates that match nothing; the authors' script then drops every box of
  that candidate (its precision becomes 1.0 and its recall 0.0);
- a box the authors' parser refuses (floats, brackets, spaces) is read as the app reads it;
- the tables of an analysis cut off before ``</think>`` (the token limit) count as written;
  the authors' script then takes no box at all (precision 1.0, recall 0.0), which would make a
  model that runs out of tokens more often look more precise.

Frame sizes: a model output's boxes are in pixels of the images as the model saw them (the
prepared images the run records), a reference's in pixels of the dataset's frames. Each side is
normalised by its own sizes. IoU does not change when both sides are scaled alike, so when a
side's sizes are unknown the other side's are used for both (``resolve_frame_sizes``), and when
neither is known, boxes are compared in the pixels they were written in.

Text metrics use the tag-free story (the text after ``</think>``, as ``render_text`` prints it):
corpus BLEU-1..4 (nltk, closest reference length), ROUGE-L (rouge-score's LCS, F-measure with
beta 1.2 as pycocoevalcap, averaged over stories) and METEOR. The authors run pycocoevalcap,
whose tokenizer and METEOR 1.5 are Java programs. Here the tokenizer is nltk's Penn Treebank
tokenizer with pycocoevalcap's punctuation removed, and METEOR aligns words with nltk (exact,
Porter stem and, when nltk's WordNet data is installed, synonym matches), then scores the
alignment with METEOR 1.5's formula and English parameters, over the whole corpus as METEOR's
own system score does. nltk's own ``meteor_score`` uses other parameters and averages
sentences: on the fixed sample of ``bench/meteor_vs_java.py`` it reads 0.404 where METEOR 1.5
reads 0.235; this reads 0.226 without WordNet and 0.235 with it (README, "Measuring quality").

Imports nothing of ours outside ``story/``; nltk and rouge-score come with the ``eval`` extra
and are imported only when text is scored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from desktop_app.story.model import Box, Story
from desktop_app.story.render import render_text

PERSON = "person"
IOU_THRESHOLD = 0.5
ROUGE_BETA = 1.2  # pycocoevalcap's ROUGE-L weighs recall 1.2 times precision

# VOC's 11 recall points as numpy.arange(0.0, 1.1, 0.1) (and MATLAB's 0:0.1:1) compute them:
# 0.30000000000000004, not 0.3. Every reference implementation uses these floats, so a recall of
# exactly 3/10 does not reach the "0.3" point; keeping them keeps AP identical to the authors'.
VOC_RECALL_POINTS: tuple[float, ...] = tuple(k * 0.1 for k in range(11))

# Tokens pycocoevalcap's PTBTokenizer drops after tokenizing (its PUNCTUATIONS list, with the
# Treebank forms of brackets that nltk's tokenizer leaves as they are).
_PUNCTUATION = frozenset((
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
    "--", "...", ";", "(", ")", "{", "}",
))  # fmt: skip

FrameSizes = Sequence[tuple[float, float]]
NormalisedBox = tuple[float, float, float, float]


# ---- grounding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroundingBox:
    """One analysis-table row as a typed box.

    ``box`` is normalised to the frame (0..1, clipped) when the frame's size is known, in the
    pixels it was written in when no size is known, and None when its frame is not one of the
    story's (it then matches nothing).
    """

    label: str
    frame: int
    box: NormalisedBox | None

    @property
    def is_person(self) -> bool:
        return self.label == PERSON


def object_label(description: str) -> str:
    """The type the authors give an Objects row: the first word of its description, lower-case."""
    words = description.lower().split()
    return words[0] if words else "object"


def _place(box: Box, size: tuple[float, float] | None) -> NormalisedBox:
    if size is None:
        return (box.x1, box.y1, box.x2, box.y2)
    width, height = size

    def clip(value: float) -> float:
        return min(max(value, 0.0), 1.0)

    return (
        clip(box.x1 / width),
        clip(box.y1 / height),
        clip(box.x2 / width),
        clip(box.y2 / height),
    )


def grounding_boxes(
    story: Story, frame_sizes: FrameSizes | None = None, *, frame_count: int | None = None
) -> tuple[GroundingBox, ...]:
    """The story's typed boxes in table order: frames by number, Characters before Objects.

    Frames are ranked by number, not as written, as the authors' parser reads them.

    ``frame_sizes`` are the (width, height) of frames 1..N in the pixels the boxes are written
    in; None compares raw pixel coordinates. A frame numbered outside 1..N (N from
    ``frame_sizes``, else ``frame_count``, else unbounded) gives boxes that match nothing. Only
    the first analysis of a repeated frame counts, and rows whose box does not parse are left
    out, as in the authors' script.
    """
    count = len(frame_sizes) if frame_sizes is not None else frame_count
    seen: set[int] = set()
    boxes: list[GroundingBox] = []
    for frame in sorted(story.frames, key=lambda f: f.index):  # stable: repeats keep order
        if frame.index in seen:
            continue
        seen.add(frame.index)
        in_story = count is None or 1 <= frame.index <= count
        size = frame_sizes[frame.index - 1] if in_story and frame_sizes is not None else None
        rows = [(PERSON, c.box) for c in frame.characters]
        rows += [(object_label(o.description), o.box) for o in frame.objects]
        for label, box in rows:
            if box is None:
                continue
            placed = _place(box, size) if in_story else None
            boxes.append(GroundingBox(label, frame.index, placed))
    return tuple(boxes)


def resolve_frame_sizes(
    candidate: FrameSizes | None, reference: FrameSizes | None
) -> tuple[FrameSizes | None, FrameSizes | None]:
    """The sizes to normalise each side by: its own, else the other side's, else none.

    Normalising only one side would compare a 0..1 box with a pixel box; using the other
    side's sizes for both keeps IoU right whenever both were written in the same pixels, which
    is what a run without recorded sizes can only assume (the authors' script always does).
    """
    return (candidate if candidate is not None else reference), (
        reference if reference is not None else candidate
    )


def iou(a: NormalisedBox, b: NormalisedBox) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes; 0.0 when both are empty."""
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    intersection = max(inter_w, 0.0) * max(inter_h, 0.0)
    area_a = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
    area_b = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
    union = area_a + area_b - intersection
    return intersection / union if union > 0 else 0.0


def match_boxes(
    candidates: Sequence[GroundingBox], references: Sequence[GroundingBox]
) -> dict[int, int]:
    """Candidate index -> matched reference index: greedy one-to-one by IoU >= 0.5, equal type.

    Pairs are taken highest IoU first; a tie keeps reference order, then candidate order.
    """
    pairs: list[tuple[float, int, int]] = []
    for r, ref in enumerate(references):
        if ref.box is None:
            continue
        for c, cand in enumerate(candidates):
            if cand.box is None or cand.is_person != ref.is_person:
                continue
            overlap = iou(cand.box, ref.box)
            if overlap >= IOU_THRESHOLD:
                pairs.append((overlap, r, c))
    pairs.sort(key=lambda pair: -pair[0])  # stable: equal IoUs stay in (reference, candidate) order
    matched: dict[int, int] = {}
    used_refs: set[int] = set()
    for _overlap, r, c in pairs:
        if c not in matched and r not in used_refs:
            matched[c] = r
            used_refs.add(r)
    return matched


@dataclass(frozen=True)
class PrecisionRecall:
    """Precision and recall of one story's boxes (of one type, or all)."""

    candidates: int
    references: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.candidates if self.candidates else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.references if self.references else 1.0


def voc_average_precision(hits: Sequence[bool], references: int) -> float:
    """VOC 11-point AP of candidates in ranked order (``hits[i]``: candidate i matched).

    With no references: 1.0 when there are no candidates either, else 0.0; with references but
    no candidates: 0.0 (the authors' rules).
    """
    if references == 0:
        return 0.0 if hits else 1.0
    if not hits:
        return 0.0
    precisions: list[float] = []
    recalls: list[float] = []
    true_positives = 0
    for rank, hit in enumerate(hits, start=1):
        true_positives += bool(hit)
        precisions.append(true_positives / rank)
        recalls.append(true_positives / references)
    total = 0.0
    for point in VOC_RECALL_POINTS:
        reached = [p for p, r in zip(precisions, recalls, strict=True) if r >= point]
        total += max(reached) if reached else 0.0
    return total / len(VOC_RECALL_POINTS)


@dataclass(frozen=True)
class StoryGrounding:
    """One story's grounding scores."""

    characters: PrecisionRecall
    objects: PrecisionRecall
    total: PrecisionRecall
    average_precision: float


def score_grounding(
    candidates: Sequence[GroundingBox], references: Sequence[GroundingBox]
) -> StoryGrounding:
    """Characters, objects and total precision/recall, and AP, of one story."""
    matched = match_boxes(candidates, references)

    def counts(keep: Callable[[GroundingBox], bool]) -> PrecisionRecall:
        return PrecisionRecall(
            candidates=sum(1 for box in candidates if keep(box)),
            references=sum(1 for box in references if keep(box)),
            # Matches never cross types, so a type's matches are the matches among its boxes.
            matched=sum(1 for c, box in enumerate(candidates) if keep(box) and c in matched),
        )

    return StoryGrounding(
        characters=counts(lambda box: box.is_person),
        objects=counts(lambda box: not box.is_person),
        total=counts(lambda _box: True),
        average_precision=voc_average_precision(
            [c in matched for c in range(len(candidates))], len(references)
        ),
    )


# ---- text -----------------------------------------------------------------------------------


def story_text(story: Story) -> str:
    """The story's text with every tag removed, whitespace collapsed (what text metrics read)."""
    return " ".join(render_text(story).split())


def tokenize(text: str) -> list[str]:
    """Lower-case Penn Treebank tokens without punctuation, as pycocoevalcap's PTBTokenizer."""
    from nltk.tokenize import TreebankWordTokenizer

    return [t for t in TreebankWordTokenizer().tokenize(text.lower()) if t not in _PUNCTUATION]


class _NoSynonyms:
    """A WordNet stand-in without synsets: METEOR then matches exact words and stems only."""

    def synsets(self, _word: str) -> list[Any]:
        return []


def _wordnet() -> tuple[Any, bool]:
    """nltk's WordNet reader when its data is installed, else the stand-in (and whether found)."""
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        try:
            nltk.data.find("corpora/wordnet.zip")
        except LookupError:
            return _NoSynonyms(), False
    from nltk.corpus import wordnet

    return wordnet, True


def meteor_name() -> str:
    """Which METEOR this machine computes, for the output: with or without WordNet synonyms."""
    import nltk

    _reader, found = _wordnet()
    modules = "exact+stem+WordNet synonyms" if found else "exact+stem; no WordNet installed"
    return f"METEOR 1.5 formula on nltk {nltk.__version__} alignment ({modules})"


# METEOR 1.5's parameters for English, the "-l en" task pycocoevalcap runs it with:
# Fmean = P*R / (alpha*P + (1-alpha)*R), penalty = gamma * fragmentation ** beta.
METEOR_ALPHA = 0.85
METEOR_BETA = 0.20
METEOR_GAMMA = 0.60


@dataclass(frozen=True)
class MeteorStats:
    """What METEOR counts for a candidate/reference pair; sums of them score a corpus."""

    matches: int
    candidate_length: int
    reference_length: int
    chunks: int

    def __add__(self, other: MeteorStats) -> MeteorStats:
        return MeteorStats(
            self.matches + other.matches,
            self.candidate_length + other.candidate_length,
            self.reference_length + other.reference_length,
            self.chunks + other.chunks,
        )


def meteor_stats(candidate: Sequence[str], reference: Sequence[str], wordnet: Any) -> MeteorStats:
    """nltk's alignment of two token lists (exact, stem, synonyms), and its chunks."""
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import align_words

    if not candidate or not reference:
        return MeteorStats(0, len(candidate), len(reference), 0)
    matches, _unmatched_candidate, _unmatched_reference = align_words(
        list(candidate), list(reference), stemmer=PorterStemmer(), wordnet=wordnet
    )
    chunks = 0
    previous: tuple[int, int] | None = None
    for c, r in matches:  # sorted by candidate position: a chunk is a run adjacent on both sides
        if previous is None or (c, r) != (previous[0] + 1, previous[1] + 1):
            chunks += 1
        previous = (c, r)
    return MeteorStats(len(matches), len(candidate), len(reference), chunks)


def meteor(stats: MeteorStats) -> float:
    """METEOR 1.5's score of (summed) stats; an exact copy has no fragmentation penalty."""
    if stats.matches == 0:
        return 0.0
    precision = stats.matches / stats.candidate_length
    recall = stats.matches / stats.reference_length
    fmean = precision * recall / (METEOR_ALPHA * precision + (1 - METEOR_ALPHA) * recall)
    exact = stats.chunks == 1 and stats.matches == stats.candidate_length == stats.reference_length
    fragmentation = 0.0 if exact else stats.chunks / stats.matches
    return fmean * (1 - METEOR_GAMMA * fragmentation**METEOR_BETA)


@dataclass(frozen=True)
class TextScores:
    """Corpus text scores, and each story's METEOR and ROUGE-L.

    ``meteor`` scores the corpus's summed alignment statistics (METEOR's system score), so it
    is not the mean of ``story_meteor``; ``rouge_l`` is the mean of ``story_rouge_l``.
    """

    bleu: tuple[float, float, float, float]
    meteor: float
    rouge_l: float
    story_meteor: tuple[float, ...]
    story_rouge_l: tuple[float, ...]
    meteor_name: str


def rouge_l(candidate: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-L of token lists: LCS F-measure with recall weighted by ``ROUGE_BETA``."""
    from rouge_score import rouge_scorer

    class _Joined:  # the tokens are already made: split them back, nothing more
        @staticmethod
        def tokenize(text: str) -> list[str]:
            return text.split()

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Joined())
    score = scorer.score(" ".join(reference), " ".join(candidate))["rougeL"]
    precision, recall = score.precision, score.recall
    if precision == 0 or recall == 0:
        return 0.0
    beta2 = ROUGE_BETA**2
    return (1 + beta2) * precision * recall / (recall + beta2 * precision)


def score_text(candidates: Sequence[str], references: Sequence[str]) -> TextScores:
    """BLEU-1..4 and METEOR of the corpus, ROUGE-L averaged over stories, of tag-free texts."""
    from nltk.translate.bleu_score import corpus_bleu

    if len(candidates) != len(references):
        raise ValueError("one reference per candidate is needed")
    cand_tokens = [tokenize(text) for text in candidates]
    ref_tokens = [tokenize(text) for text in references]
    if not cand_tokens:
        return TextScores((0.0, 0.0, 0.0, 0.0), 0.0, 0.0, (), (), meteor_name())
    bleu: list[float] = []
    with warnings.catch_warnings():
        # nltk warns when an n-gram order has no match at all; the score is then 0, as intended.
        warnings.simplefilter("ignore")
        for n in range(1, 5):
            weights = tuple([1.0 / n] * n)
            bleu.append(float(corpus_bleu([[r] for r in ref_tokens], cand_tokens, weights)))
    wordnet, _found = _wordnet()
    stats = [meteor_stats(c, r, wordnet) for c, r in zip(cand_tokens, ref_tokens, strict=True)]
    total = stats[0]
    for more in stats[1:]:
        total = total + more
    rouges = tuple(rouge_l(c, r) for c, r in zip(cand_tokens, ref_tokens, strict=True))
    return TextScores(
        bleu=(bleu[0], bleu[1], bleu[2], bleu[3]),
        meteor=meteor(total),
        rouge_l=sum(rouges) / len(rouges),
        story_meteor=tuple(meteor(one) for one in stats),
        story_rouge_l=rouges,
        meteor_name=meteor_name(),
    )


# ---- a whole evaluation ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoryPair:
    """A model output and its reference, each with the sizes its boxes are written against."""

    story_id: str
    candidate: Story
    reference: Story
    candidate_sizes: FrameSizes | None = None
    reference_sizes: FrameSizes | None = None
    frame_count: int | None = None  # the story's photos, when no sizes say it


@dataclass(frozen=True)
class StoryScore:
    """One story's row: grounding scores and its METEOR and ROUGE-L."""

    story_id: str
    grounding: StoryGrounding
    meteor: float
    rouge_l: float


@dataclass(frozen=True)
class EvalReport:
    """Scores averaged over the scored stories, with each story's row."""

    stories: tuple[StoryScore, ...]
    character_precision: float
    character_recall: float
    object_precision: float
    object_recall: float
    precision: float
    recall: float
    mean_ap: float
    bleu: tuple[float, float, float, float]
    meteor: float
    rouge_l: float
    meteor_name: str


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate(pairs: Sequence[StoryPair]) -> EvalReport:
    """Score every pair and average over stories, as the authors' evaluation script does."""
    groundings: list[StoryGrounding] = []
    for pair in pairs:
        cand_sizes, ref_sizes = resolve_frame_sizes(pair.candidate_sizes, pair.reference_sizes)
        count = pair.frame_count
        groundings.append(
            score_grounding(
                grounding_boxes(pair.candidate, cand_sizes, frame_count=count),
                grounding_boxes(pair.reference, ref_sizes, frame_count=count),
            )
        )
    text = score_text(
        [story_text(pair.candidate) for pair in pairs],
        [story_text(pair.reference) for pair in pairs],
    )
    rows = tuple(
        StoryScore(pair.story_id, g, m, r)
        for pair, g, m, r in zip(
            pairs, groundings, text.story_meteor, text.story_rouge_l, strict=True
        )
    )
    return EvalReport(
        stories=rows,
        character_precision=_mean([g.characters.precision for g in groundings]),
        character_recall=_mean([g.characters.recall for g in groundings]),
        object_precision=_mean([g.objects.precision for g in groundings]),
        object_recall=_mean([g.objects.recall for g in groundings]),
        precision=_mean([g.total.precision for g in groundings]),
        recall=_mean([g.total.recall for g in groundings]),
        mean_ap=_mean([g.average_precision for g in groundings]),
        bleu=text.bleu,
        meteor=text.meteor,
        rouge_l=text.rouge_l,
        meteor_name=text.meteor_name,
    )


# The authors' table, in their order, with their published test-split numbers (docs/model-contract.md section 6).
PUBLISHED: dict[str, float] = {
    "Char. Precision": 0.83,
    "Char. Recall": 0.62,
    "Obj. Precision": 0.46,
    "Obj. Recall": 0.25,
    "Precision": 0.57,
    "Recall": 0.40,
    "mAP": 0.27,
    "METEOR": 0.14,
    "ROUGE-L": 0.16,
    "BLEU-4": 0.054,
}


def metric_rows(report: EvalReport) -> list[tuple[str, float]]:
    """The report as (metric, value) rows in the authors' table order."""
    return [
        ("Char. Precision", report.character_precision),
        ("Char. Recall", report.character_recall),
        ("Obj. Precision", report.object_precision),
        ("Obj. Recall", report.object_recall),
        ("Precision", report.precision),
        ("Recall", report.recall),
        ("mAP", report.mean_ap),
        ("METEOR", report.meteor),
        ("ROUGE-L", report.rouge_l),
        ("BLEU-1", report.bleu[0]),
        ("BLEU-2", report.bleu[1]),
        ("BLEU-3", report.bleu[2]),
        ("BLEU-4", report.bleu[3]),
    ]
