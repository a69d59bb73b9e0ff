"""Benchmark: how far `storyteller eval`'s text metrics are from the authors' Java-based ones.

The StoryReasoning authors score text with pycocoevalcap: Stanford's PTB tokenizer and METEOR
1.5, both Java programs, plus its Python BLEU and ROUGE-L. `storyteller eval` uses pure-Python
stand-ins (desktop_app/evaluation/metrics.py). This script scores one fixed sample of story pairs
(below: a reference and a retelling of the same frames, from near-copies to different stories)
both ways and prints corpus BLEU-4, METEOR and ROUGE-L side by side, and METEOR per pair.

Needs Java and pycocoevalcap (about 100 MB with its jars) besides the eval extra; never in CI:

    .venv/bin/pip install pycocoevalcap
    .venv/bin/python bench/meteor_vs_java.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))

from desktop_app.evaluation import metrics  # noqa: E402

# (reference, candidate): tag-free stories as `story_text` gives them.
SAMPLE: tuple[tuple[str, str], ...] = (
    (
        "Maya set the paper boat down on the puddle while Tom yawned under his umbrella. "
        "The sun came out and the little boat drifted across the water as Maya clapped.",
        "Maya set the paper boat on the puddle while Tom yawned beneath his umbrella. "
        "When the sun came out, the small boat drifted across the water and Maya clapped.",
    ),
    (
        "The detective stepped into the dim office and studied the papers scattered across "
        "the desk. A woman in a red coat waited by the window, her hands trembling.",
        "A detective walks into a dark office and looks at the documents spread over the "
        "table. By the window a woman in a red coat is waiting, nervous.",
    ),
    (
        "Two soldiers crouched behind the wall as the tank rolled past. The younger one "
        "clutched his rifle and glanced at his sergeant, who signalled him to stay down.",
        "The soldiers hid behind a stone wall while a tank moved along the road. One of them "
        "held his gun tightly and looked at the older man, who told him to keep low.",
    ),
    (
        "At the dinner table the family sat in silence. The father cut his meat slowly while "
        "the daughter stared at her plate, and the mother poured more wine.",
        "The family ate dinner without speaking. The father was cutting his steak, the girl "
        "looked down at her food and her mother filled her glass again.",
    ),
    (
        "The captain stood on the bridge of the ship, watching the storm gather on the "
        "horizon. Behind him the crew hurried to secure the ropes.",
        "A man in uniform looks out from the deck of a boat. The sky is dark. Sailors run "
        "around behind him.",
    ),
    (
        "Sarah opened the letter with shaking fingers. As she read, tears filled her eyes, "
        "and she sank into the armchair beside the fireplace.",
        "Sarah opened the letter with shaking fingers. As she read, tears filled her eyes, "
        "and she sank into the armchair beside the fireplace.",
    ),
    (
        "The old man fed the pigeons in the square every morning. Today a little boy sat "
        "down next to him on the bench and held out his hand for some bread.",
        "A boy and an old man shared a bench in the town square, throwing crumbs to the "
        "birds that gathered at their feet.",
    ),
    (
        "The band played on the stage while the crowd danced. The singer leaned towards the "
        "microphone and closed her eyes as the lights turned blue.",
        "Jack drove through the desert at night, the headlights of his car cutting through "
        "the dust. He checked the map and kept going.",
    ),
    (
        "In the laboratory the scientist poured a green liquid into a flask. Smoke rose from "
        "the table and her assistant stepped back in alarm.",
        "The scientist mixed chemicals in her lab. When she poured the green liquid into the "
        "flask, smoke rose up and her assistant jumped back, frightened.",
    ),
    (
        "The knight raised his sword as the dragon descended from the mountain. The villagers "
        "watched from behind the gate, praying for his victory.",
        "A knight with a sword faces a huge dragon coming down from the mountains while the "
        "people of the village hide behind the gates.",
    ),
    (
        "She ran down the platform as the train began to move. He reached out from the "
        "doorway, caught her hand and pulled her aboard just in time.",
        "The woman hurried along the station as the train left. A man leaned out of the door, "
        "grabbed her hand and helped her climb on.",
    ),
    (
        "The children built a snowman in the garden, giving it a carrot nose and an old scarf. "
        "Their dog barked at it and ran in circles through the snow.",
        "Kids are playing in the snow. They make a snowman with a scarf. A dog is running.",
    ),
)


def coco_scores(pairs: tuple[tuple[str, str], ...]) -> tuple[float, float, float, list[float]]:
    """pycocoevalcap as the authors call it: PTB tokenizer, BLEU-4, METEOR 1.5, ROUGE-L."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    refs = tokenizer.tokenize({str(i): [{"caption": r}] for i, (r, _c) in enumerate(pairs)})
    cands = tokenizer.tokenize({str(i): [{"caption": c}] for i, (_r, c) in enumerate(pairs)})
    bleu, _ = Bleu(4).compute_score(refs, cands, verbose=0)
    meteor, per_pair = Meteor().compute_score(refs, cands)
    rouge, _ = Rouge().compute_score(refs, cands)
    return bleu[3], meteor, rouge, [float(s) for s in per_pair]


def main() -> int:
    ours = metrics.score_text([c for _r, c in SAMPLE], [r for r, _c in SAMPLE])
    try:
        bleu4, meteor, rouge, per_pair = coco_scores(SAMPLE)
    except (ImportError, OSError) as err:
        print(f"pycocoevalcap and Java are needed for the comparison: {err}", file=sys.stderr)
        return 1
    print(f"{len(SAMPLE)} story pairs; ours: {ours.meteor_name}")
    print(f"{'metric':10s} {'pycocoevalcap':>14s} {'ours':>8s} {'ours - coco':>12s}")
    for name, theirs, mine in (
        ("BLEU-4", bleu4, ours.bleu[3]),
        ("METEOR", meteor, ours.meteor),
        ("ROUGE-L", rouge, ours.rouge_l),
    ):
        print(f"{name:10s} {theirs:14.4f} {mine:8.4f} {mine - theirs:+12.4f}")
    print()
    print(f"{'pair':>4s} {'METEOR 1.5':>11s} {'ours':>8s}")
    for index, (theirs, mine) in enumerate(zip(per_pair, ours.story_meteor, strict=True), 1):
        print(f"{index:4d} {theirs:11.4f} {mine:8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
