"""The status guide seed 000 asks for, generated from the model so it never drifts from what the engine enforces."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from leadledger.domain.durations import format_duration
from leadledger.domain.statusmodel import Status, StatusModel


def _entry_lines(model: StatusModel, status: Status) -> list[str]:
    entry = status.entry
    lines = []
    label = lambda name: model.fields[name].label if name in model.fields else name  # noqa: E731
    if entry.required:
        lines.append("Required: " + ", ".join(label(n) for n in entry.required))
    for group in entry.any_of:
        lines.append("At least one of: " + ", ".join(label(n) for n in group))
    if entry.reason is not None and entry.reason.codes:
        kind = "Reason (required)" if entry.reason.required else "Reason (optional)"
        lines.append(f"{kind}: " + ", ".join(model.reasons[c].label for c in entry.reason.codes if c in model.reasons))
    if entry.activity is not None:
        window = f" within {format_duration(entry.activity.within)}" if entry.activity.within else ""
        lines.append("Logged interaction: " + " or ".join(m.describe() for m in entry.activity.any_of) + window)
    if entry.recommended:
        lines.append("Recommended: " + ", ".join(label(n) for n in entry.recommended))
    return lines


def _automatic_lines(model: StatusModel, status: Status) -> list[str]:
    lines = []
    if status.automation:
        lines.append(status.automation)
    for stage in model.stages:
        if stage.sets_status == status.key:
            lines.append(f"Set automatically when a lead moves to stage {stage.label}.")
    for move in model.backward_moves.values():
        if move.sets_status == status.key:
            lines.append(f"Set automatically when a lead moves back from {move.from_stage} to {move.to_stage}.")
    for origin, target in model.assignment_sets_status.items():
        if target == status.key:
            lines.append(f"Set automatically when a {model.statuses[origin].label} lead gets an owner.")
    if status.key in model.status_sets_stage:
        lines.append(f"Moves the lead to stage {model.status_sets_stage[status.key]} if it is behind.")
    exit_ = status.exit
    if exit_.max_age:
        clock = "business time" if exit_.business_time else "calendar time"
        action = {
            "alert": "an alert is raised",
            "escalate": "it is escalated to the manager",
            "move": f"it moves to {exit_.to}",
            "review": "it goes back to review",
        }.get(exit_.then or "", "it is flagged")
        lines.append(f"After {format_duration(exit_.max_age)} ({clock}) in this status, {action}.")
    if status.locked:
        lines.append("Locked: once set, the status cannot be changed back.")
    return lines


def _context(model: StatusModel) -> dict[str, Any]:
    statuses = []
    for status in model.statuses.values():
        automatic_targets: list[str] = []
        manual_targets: list[str] = []
        for target in model.allowed_targets(status.key):
            rule = model.transition(status.key, target)
            assert rule is not None
            entry = f"{model.statuses[target].label} ({', '.join(sorted(rule.roles)) or 'automation only'})"
            (automatic_targets if rule.automatic else manual_targets).append(entry)
        statuses.append(
            {
                "status": status,
                "parent": model.statuses[status.parent].label if status.parent else None,
                "stages": [model.stage_by_key[s].label for s in sorted(status.stages, key=model.stage_rank)],
                "entry": _entry_lines(model, status),
                "automatic": _automatic_lines(model, status),
                "ways_out": manual_targets + [t + " - also automatic" for t in automatic_targets],
            }
        )
    return {
        "model": model,
        "statuses": statuses,
        "stages": model.stages,
        "reasons": list(model.reasons.values()),
        "primary": len(model.primary_statuses()),
    }


MARKDOWN = """# Status guide - {{ model.name }} (model version {{ model.version }})

Generated from the status model. **Stage** says where a lead is in the journey, **status** what is happening
with it right now, and **reason** why it moved or stopped. {{ primary }} primary statuses; sub-statuses refine a
primary status and can be used wherever a status is named.

## Lifecycle stages (forward only)
{% for stage in stages %}
{{ loop.index }}. **{{ stage.label }}** (`{{ stage.key }}`){% if stage.definition %} - {{ stage.definition }}{% endif %}{% if stage.sets_status %} Entering it sets the status to `{{ stage.sets_status }}`.{% endif %}
{%- endfor %}
{% for move in model.backward_moves.values() %}
- Allowed step back: {{ move.from_stage }} -> {{ move.to_stage }}, which sets the status to `{{ move.sets_status }}`.
{%- endfor %}
{% for item in statuses %}
## {{ item.status.label }} (`{{ item.status.key }}`){% if item.parent %} - sub-status of {{ item.parent }}{% endif %}

**What it means:** {{ item.status.definition }}

**When to use it:** {{ item.status.when_to_use or "-" }}

**Owner:** {{ item.status.owner_role }} · **Category:** {{ item.status.category }} · **Valid in stages:** {{ item.stages | join(", ") }}

**Data you must enter:**
{% for line in item.entry %}- {{ line }}
{% else %}- Nothing beyond the lead itself.
{% endfor %}
**What happens automatically:**
{% for line in item.automatic %}- {{ line }}
{% else %}- Nothing.
{% endfor %}
**Next steps:** {{ item.status.next_steps or "-" }}

**Ways out:** {{ item.ways_out | join("; ") if item.ways_out else "none (terminal)" }}

**Exit rule:** {{ item.status.exit.description or "-" }}

**Reporting use:** {{ item.status.reporting_use }}
{% endfor %}
## Reasons
{% for reason in reasons %}
- `{{ reason.code }}` - {{ reason.label }}
{%- endfor %}
"""

HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Status guide - {{ model.name }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
section{border-top:1px solid #ddd;padding-top:.5rem}code{background:#f4f4f4;padding:0 .2em}dt{font-weight:600}</style>
</head><body>
<h1>Status guide - {{ model.name }} <small>(model version {{ model.version }})</small></h1>
<p><strong>Stage</strong> says where a lead is in the journey, <strong>status</strong> what is happening with it
right now, and <strong>reason</strong> why it moved or stopped. {{ primary }} primary statuses.</p>
<h2>Lifecycle stages (forward only)</h2>
<ol>{% for stage in stages %}<li><strong>{{ stage.label }}</strong> (<code>{{ stage.key }}</code>) {{ stage.definition }}
{% if stage.sets_status %}Entering it sets the status to <code>{{ stage.sets_status }}</code>.{% endif %}</li>{% endfor %}</ol>
{% for item in statuses %}
<section id="{{ item.status.key }}"><h2>{{ item.status.label }} <code>{{ item.status.key }}</code>
{% if item.parent %}<small>sub-status of {{ item.parent }}</small>{% endif %}</h2>
<dl>
<dt>What it means</dt><dd>{{ item.status.definition }}</dd>
<dt>When to use it</dt><dd>{{ item.status.when_to_use or "-" }}</dd>
<dt>Owner</dt><dd>{{ item.status.owner_role }} · {{ item.status.category }} · stages: {{ item.stages | join(", ") }}</dd>
<dt>Data you must enter</dt><dd><ul>{% for line in item.entry %}<li>{{ line }}</li>{% else %}<li>Nothing beyond the lead itself.</li>{% endfor %}</ul></dd>
<dt>What happens automatically</dt><dd><ul>{% for line in item.automatic %}<li>{{ line }}</li>{% else %}<li>Nothing.</li>{% endfor %}</ul></dd>
<dt>Next steps</dt><dd>{{ item.status.next_steps or "-" }}</dd>
<dt>Ways out</dt><dd>{{ item.ways_out | join("; ") if item.ways_out else "none (terminal)" }}</dd>
<dt>Exit rule</dt><dd>{{ item.status.exit.description or "-" }}</dd>
<dt>Reporting use</dt><dd>{{ item.status.reporting_use }}</dd>
</dl></section>
{% endfor %}
<h2>Reasons</h2><ul>{% for reason in reasons %}<li><code>{{ reason.code }}</code> {{ reason.label }}</li>{% endfor %}</ul>
</body></html>
"""


def guide_context(model: StatusModel) -> dict[str, Any]:
    """What the guide says, as data: the web app renders the same guide in its own pages."""
    return _context(model)


def guide_markdown(model: StatusModel) -> str:
    env = Environment(autoescape=False, trim_blocks=False, keep_trailing_newline=True)
    return env.from_string(MARKDOWN).render(**_context(model))


def guide_html(model: StatusModel) -> str:
    env = Environment(autoescape=True)  # labels and definitions come from an editable file: escape them
    return env.from_string(HTML).render(**_context(model))


def status_guide_text(model: StatusModel, key: str) -> str:
    """One status's guide entry as plain text: what a rep is shown when a manager flags their use of it."""
    status = model.statuses.get(key)
    if status is None:
        return f"{key}: this status is not in the active model."
    lines = [f"{status.label} ({status.key}): {status.definition}"]
    if status.when_to_use:
        lines.append(f"When to use it: {status.when_to_use}")
    entry = _entry_lines(model, status)
    if entry:
        lines.append("Data you must enter: " + "; ".join(entry))
    if status.exit.description:
        lines.append(f"Exit rule: {status.exit.description}")
    return "\n".join(lines)
