"""Print how well Aviso understands the labelled corpus (tests/corpus) and its own example phrases.

    .venv/bin/python scripts/understanding_accuracy.py [--misses]
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.content.model import Content  # noqa: E402
from bot.conversation.understanding_eval import Row, evaluate, examples_tally, held_out  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "understanding.toml"


def corpus_rows(path: Path = CORPUS) -> list[Row]:
    """The labelled corpus as rows."""
    data = tomllib.loads(path.read_text())
    return [Row(code, text, expected) for code, rows in data.items() for text, expected in rows]


def main() -> None:
    """Print accuracy per language on the held-out corpus, then on the examples (each left out in turn)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every message answered wrong")
    args = parser.parse_args()
    content = Content.from_dir(ROOT / "content")
    rows = corpus_rows()
    unseen = held_out(content, rows)
    corpus = evaluate(content, unseen)
    print(f"{CORPUS.relative_to(ROOT)}: {len(rows)} messages, {len(unseen)} held out from the examples "
          f"(content {content.version}); accuracy on those:")
    print("\n".join(corpus.lines()))
    seen = evaluate(content, [row for row in rows if row not in unseen])
    print(f"the other {len(rows) - len(unseen)} (phrases the content also lists): {seen.accuracy():.1%}")
    examples = examples_tally(content)
    print("\ncontent example phrases, each read with itself left out:")
    print("\n".join(examples.lines()[:-1]))
    if args.misses:
        print("\nmisses (message, expected -> got, language):")
        for row, got, language in corpus.misses:
            print(f"  [{row.language}] {row.text!r}: {row.expected} -> {got} ({language})")
        for row, got in corpus.urgent_misses:
            print(f"  URGENT [{row.language}] {row.text!r}: -> {got}")


if __name__ == "__main__":
    main()
