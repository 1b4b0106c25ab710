"""The official openai client against `netnomos serve`: records that obey a rule pack.

Usage: python3 openai_client.py http://127.0.0.1:PORT
Prints each returned record as one JSON line; exits non-zero when something is off.
"""

import json
import sys

from openai import OpenAI

client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="not-needed")

# Synthesis with fixed fields (imputation of the rest), plain answer.
answer = client.chat.completions.create(
    model="cidds",
    messages=[{"role": "user", "content": ""}],
    n=6,
    temperature=1.0,
    seed=11,
    extra_body={"rulepack": "cidds", "fields": {"Proto": "UDP", "DstPt": 53}},
)
records = answer.model_extra["records"]
assert answer.model_extra["rulepack"] == "cidds@1.0.0", answer.model_extra
assert len(records) == 6 and len(answer.choices) == 6
for choice, record in zip(answer.choices, records):
    assert choice.finish_reason == "stop", choice
    assert record["Proto"] == "UDP" and record["DstPt"] == 53, record
    print(json.dumps(record))

# Streaming: the text comes in pieces, the record with the last chunk of each choice.
stream = client.chat.completions.create(
    model="cidds",
    messages=[{"role": "user", "content": "Duration=0.000 Proto=TCP"}],
    n=2,
    temperature=0.7,
    seed=5,
    stream=True,
    extra_body={"rulepack": "cidds"},
)
texts, streamed = ["", ""], [None, None]
for chunk in stream:
    for choice in chunk.choices:
        texts[choice.index] += choice.delta.content or ""
        if choice.finish_reason is not None:
            streamed[choice.index] = chunk.model_extra["record"]
for text, record in zip(texts, streamed):
    assert record is not None and record["Proto"] == "TCP", (text, record)
    print(json.dumps(record))

# Errors come back in the OpenAI shape, so the client raises its own exceptions.
try:
    client.chat.completions.create(
        model="cidds",
        messages=[{"role": "user", "content": ""}],
        extra_body={"rulepack": "no-such-pack"},
    )
    raise SystemExit("an unknown pack must be an error")
except Exception as e:  # openai.NotFoundError
    assert getattr(e, "status_code", None) == 404, e
