"""The workflow definition format, validated on save.

A definition is a JSON object::

    {
      "trigger": {"type": "schedule", "cron": "0 9 * * 1-5"},
      "inputs": {"ticket_id": "string"},
      "steps": [
        {"id": "classify", "type": "prompt", "prompt": "Classify the ticket", "next": "route"},
        {"id": "route", "type": "tool", "tool": "zendesk.assign"}
      ],
      "timeout_seconds": 600
    }

``trigger`` (optional, default manual) is ``manual``, ``schedule`` (with a five-field ``cron``),
``webhook`` or ``event`` (with an ``event`` name). ``steps`` is a non-empty list; each step has a
unique ``id`` and a ``type``; ``next`` (optional) names another step. Other keys of a step are the
step's own parameters. Errors name the place they were found, e.g. ``steps[2].type``.
"""

from __future__ import annotations

import re
from typing import Any

from portal.resources.common import JSONProblem, parse_json_object

MAX_CHARS = 8_000
MAX_DEPTH = 12
MAX_STEPS = 50
TRIGGERS = ("manual", "schedule", "webhook", "event")
STEP_TYPES = ("prompt", "tool", "http", "condition", "approval", "notify")
INPUT_TYPES = ("string", "number", "boolean", "object", "array")
TOP_LEVEL = ("trigger", "inputs", "steps", "timeout_seconds")
STEP_ID = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?LW#]+$")

EXAMPLE = """{
  "trigger": {"type": "manual"},
  "steps": [
    {"id": "summarize", "type": "prompt", "prompt": "Summarize the input"}
  ]
}"""


def _one_of(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def _trigger(value: Any) -> None:
    if not isinstance(value, dict):
        raise JSONProblem('trigger: must be an object, e.g. {"type": "manual"}.')
    kind = value.get("type")
    if kind not in TRIGGERS:
        raise JSONProblem(f"trigger.type: must be one of {_one_of(TRIGGERS)}.")
    if kind == "schedule":
        cron = value.get("cron")
        if not isinstance(cron, str) or len(cron.split()) != 5 or not all(CRON_FIELD.match(f) for f in cron.split()):
            raise JSONProblem('trigger.cron: a schedule needs a five-field cron expression, e.g. "0 9 * * 1-5".')
    if kind == "event" and not (isinstance(value.get("event"), str) and value["event"].strip()):
        raise JSONProblem('trigger.event: an event trigger needs the event name, e.g. "ticket.created".')


def _inputs(value: Any) -> None:
    if not isinstance(value, dict):
        raise JSONProblem('inputs: must be an object of name → type, e.g. {"ticket_id": "string"}.')
    for name, kind in value.items():
        if not STEP_ID.match(name):
            raise JSONProblem(f"inputs.{name}: input names use lowercase letters, digits, - and _, starting with a letter.")
        if kind not in INPUT_TYPES:
            raise JSONProblem(f"inputs.{name}: the type must be one of {_one_of(INPUT_TYPES)}.")


def _steps(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise JSONProblem("steps: add at least one step, as a list of objects.")
    if len(value) > MAX_STEPS:
        raise JSONProblem(f"steps: at most {MAX_STEPS} steps.")
    ids: list[str] = []
    for i, step in enumerate(value):
        where = f"steps[{i}]"
        if not isinstance(step, dict):
            raise JSONProblem(f'{where}: each step is an object with an "id" and a "type".')
        step_id = step.get("id")
        if not isinstance(step_id, str) or not STEP_ID.match(step_id):
            raise JSONProblem(f"{where}.id: use 1–40 lowercase letters, digits, - or _, starting with a letter.")
        if step_id in ids:
            raise JSONProblem(f"{where}.id: “{step_id}” is used by another step; step ids must be unique.")
        ids.append(step_id)
        if step.get("type") not in STEP_TYPES:
            raise JSONProblem(f"{where}.type: must be one of {_one_of(STEP_TYPES)}.")
    for i, step in enumerate(value):
        target = step.get("next")
        if target is not None and (not isinstance(target, str) or target not in ids):
            raise JSONProblem(f"steps[{i}].next: must be the id of another step.")
        if target == step["id"]:
            raise JSONProblem(f"steps[{i}].next: a step can't lead to itself.")


def validate(raw: str) -> dict[str, Any]:
    """The parsed definition, or ``JSONProblem`` with a message a person can act on."""
    if not raw.strip():
        raise JSONProblem("Enter the workflow definition as JSON.")
    value = parse_json_object(raw, max_chars=MAX_CHARS, max_depth=MAX_DEPTH, example='{"steps": […]}')
    unknown = [k for k in value if k not in TOP_LEVEL]
    if unknown:
        raise JSONProblem(f"Unknown key “{unknown[0]}”. A definition has {_one_of(TOP_LEVEL)}.")
    if "trigger" in value:
        _trigger(value["trigger"])
    if "inputs" in value:
        _inputs(value["inputs"])
    _steps(value.get("steps"))
    timeout = value.get("timeout_seconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 86_400):
        raise JSONProblem("timeout_seconds: a whole number of seconds from 1 to 86400.")
    return value
