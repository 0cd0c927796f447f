"""What grounded generation adds to an answer, besides the model's own time.

    python scripts/bench_generation.py [--rounds 3]

For each answerable question of the labelled article set, in process: the extractive answer
(``QAService.ask``), then the writer (``Writer.write``) against a scripted OpenAI-compatible
server on loopback that answers at once with three sentences citing passage [1] (two of its
sentences, copied, and one made-up sentence). So the writer's time is the HTTP round trip
plus the sentence check; a real model's time adds to it. The check is also timed alone,
on sentences the encoder has not seen yet (its cache would otherwise hide the cost). Prints p50/p95 in ms (medians over rounds) and how many sentences were kept/dropped.
"""

from __future__ import annotations

import json
import re

import anyio
from harness import ROOT, Latency, make_parser, say, table, timed

from qa.config import Settings
from qa.generation import Writer
from qa.generation.prompt import build_messages
from qa.service import QAService
from tests.fake_llm import Messages, Script, fake_model_server

MADE_UP = "The corridor was first proposed by a committee of visiting astronomers"


def scripted(messages: Messages) -> str:
    """Three cited sentences: two from passage [1] (as a model would copy them), one made up
    (named after the question, so no answer finds it embedded already)."""
    prompt = messages[-1]["content"]
    first = re.search(
        r"^\[1\] [^\n]*\n(.*?)(?=\n\n\[\d+\] |\n\nQuestion: )", prompt, re.DOTALL | re.MULTILINE
    )
    text = first.group(1) if first else ""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 4]
    picked = [s.rstrip(".") + " [1]." for s in sentences[:2]]
    question = re.sub(r"\W+", " ", prompt.rsplit("Question: ", 1)[-1]).strip().lower()
    return " ".join([*picked, f"{MADE_UP} who asked: {question} [1]."])


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lines = (ROOT / "scripts/data/songjiang_questions.jsonl").read_text().splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    questions = [q for q in questions if q.get("gold_snippets") and not q.get("history")]
    service = QAService(Settings())
    service.ensure_default(progress=False)
    with fake_model_server() as server:
        server.answer(Script(scripted))
        settings = Settings(llm_url=server.base_url, llm_model="scripted")
        writer = Writer.from_settings(service, settings)
        assert writer is not None
        name = service.settings.collection
        ask_ms: list[float] = []
        write_ms: list[float] = []
        check_ms: list[float] = []
        kept = dropped = 0
        for round_ in range(args.rounds):
            say(f"round {round_ + 1}/{args.rounds}")
            for q in questions:
                reply, ask_s = timed(lambda q=q: service.ask(q["question"]))
                if reply.answer is None:
                    continue
                # the check first, while the sentences are new to the encoder's cache
                passages = writer.given(reply)
                text = scripted(build_messages(f"{q['question']} ({round_})", [], passages))
                _, check_s = timed(lambda t=text, p=passages: writer._check(t, p, name))
                generated, write_s = timed(
                    lambda q=q, r=reply: anyio.run(writer.write, q["question"], [], r, name)
                )
                ask_ms.append(ask_s * 1000)
                write_ms.append(write_s * 1000)
                check_ms.append(check_s * 1000)
                kept += sum(1 for s in generated.sentences if s.kept)
                dropped += generated.dropped
    rows = [
        ["extractive answer (QAService.ask)", *_cells(ask_ms)],
        ["writer: model round trip + check", *_cells(write_ms)],
        ["the check alone, sentences not yet embedded", *_cells(check_ms)],
    ]
    print(f"{len(ask_ms)} answers ({args.rounds} rounds)\n")
    print("\n".join(table(["step", "p50 ms", "p95 ms"], rows, "lrr")))
    print(f"\nsentences kept {kept}, dropped {dropped} (one made-up sentence per answer)")


def _cells(values: list[float]) -> list[str]:
    latency = Latency.of(values, 1)
    return [f"{latency.p50:.1f}", f"{latency.p95:.1f}"]


if __name__ == "__main__":
    main()
