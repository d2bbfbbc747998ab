"""The council pack as a document people read: Markdown (for a wiki or a pull request) and HTML (to print).

Both render the JSON-shaped pack `council.council_pack` returns, so the three formats never disagree. The
HTML is escaped throughout: status labels, notes and rep names come from editable files and people.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment


def _pct(value: Any) -> str:
    return "" if value is None else f"{value:.1%}"


def _p(value: Any) -> str:
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _when(value: Any) -> str:
    """A moment as people read it (a stored pack holds ISO text, a fresh one datetimes)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else str(value)


def _num(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


SECTIONS = """
{%- set s = pack.similar_statuses -%}
# Status council pack: {{ pack.period.from }} to {{ pack.period.to }}

Model {{ pack.model.name }} v{{ pack.model.version }} · {{ pack.leads }} leads · figures as of {{ when(pack.as_of) }} ·
generated {{ when(pack.generated_at) }}.

## 1. Usage per status

| status | entries | share | note |
|---|---:|---:|---|
{% for u in pack.status_usage -%}
| {{ u.status }} | {{ u.entries }} | {{ pct(u.share) }} | {{ "never used" if u.never_used else ("rarely used" if u.rarely_used else "") }}{{ " (not in the model)" if not u.in_model else "" }} |
{% endfor %}
Rarely or never used (seed 000: "half the statuses never get used"): {{ pack.rarely_used | join(", ") or "none" }}.

## 2. Usage per rep

| rep | changes | statuses used | never used |
|---|---:|---:|---|
{% for r in pack.rep_status_usage -%}
| {{ r.rep }} | {{ r.changes }} | {{ r.statuses_used }}/{{ r.statuses_available }} | {{ r.never_used | join(", ") }} |
{% endfor %}
## 3. Overrides per rule (rules to fix)

| rule | automated changes | overrides | override rate |
|---|---:|---:|---:|
{% for r in pack.overrides.rules -%}
| {{ r.rule }} | {{ r.automated_changes }} | {{ r.overrides }} | {{ pct(r.override_rate) }} |
{% endfor %}
## 4. Data quality: stale, mismatched, reasons

| metric | value | count |
|---|---:|---:|
{% for m in pack.rates.values() -%}
| {{ m.label }} | {{ pct(m.value) }} | {{ m.numerator }}/{{ m.denominator }} |
{% endfor %}
## 5. SLA compliance
{% if pack.sla is none %}
No SLA records in this database.
{% else %}
| SLA | met | breached | open | compliance |
|---|---:|---:|---:|---:|
{% for r in pack.sla.slas -%}
| {{ r.sla }} | {{ r.met }} | {{ r.breached }} | {{ r.open }} | {{ pct(r.compliance) }} |
{% endfor %}{% endif %}
## 6. Spot-check accuracy
{% if not pack.spot_checks.reviewed %}
No spot-check verdicts on changes of this period.
{% else %}
{{ pack.spot_checks.sampled_ok }} of {{ pack.spot_checks.sampled_reviewed }} sampled changes used the status as
defined ({{ pct(pack.spot_checks.ok_share) }}; 95 % Wilson interval {{ pct(pack.spot_checks.ok_share_low) }} to
{{ pct(pack.spot_checks.ok_share_high) }}); {{ pack.spot_checks.wrong_usage }} of {{ pack.spot_checks.reviewed }} verdicts in all were "wrong usage".

| rep | status accuracy (weighted by status) | ok / sampled | statuses misused |
|---|---:|---:|---|
{% for r in pack.spot_checks.reps -%}
| {{ r.rep or "(no owner)" }} | {{ pct(r.status_accuracy) }} | {{ r.sampled_ok }}/{{ r.sampled_reviewed }} | {{ r.wrong_statuses | join(", ") }} |
{% endfor %}{% endif %}
## 7. Inconsistent usage between reps

Test against the rest of the rep's team; flagged at p < {{ pack.inconsistent_usage.rules.alpha }} with at least
{{ pack.inconsistent_usage.rules.min_n }} observations on each side and a gap that matters next to the team's typical rep.
{% for f in pack.inconsistent_usage.flags %}
- {{ f.reading }} (n = {{ f.n }} vs {{ f.n_rest }}, {{ f.test }}, p {{ p(f.p_value) }})
{%- else %}
- No rep's usage differs from their team's beyond chance.
{%- endfor %}

## 8. Statuses that may not need to be separate

{{ s.rule.test }}; similar when {{ s.rule.similar_when }}; at least {{ s.rule.min_stints }} ended stints each
({{ s.compared }} pairs compared; too few stints: {{ s.too_few_stints | join(", ") or "none" }}).
{% for pair in s.proposed %}
### {{ pair.statuses[0] }} and {{ pair.statuses[1] }}: proposed for consolidation

Stints: {{ pair.stints[0] }} and {{ pair.stints[1] }}.
{% for name, t in pair.tests.items() %}
- {{ name.replace("_", " ") }}: chi-square {{ num(t.statistic) }}, p {{ p(t.p_value) }}, Cramér's V {{ num(t.effect, 3) }}
{%- endfor %}
- on-enter actions, SLAs and time rules: {{ "the same" if pair.same_actions else "different" }}
  ({{ pair.statuses[0] }}: {{ pair.actions[pair.statuses[0]] | join("; ") or "none" }};
  {{ pair.statuses[1] }}: {{ pair.actions[pair.statuses[1]] | join("; ") or "none" }})
{% else %}
No pair of statuses is indistinguishable on the data.
{% endfor %}
### Statuses whose use differs between reps (definition unclear?)

{{ s.unclear.rule }}.
{% for u in s.unclear.flagged %}
- {{ u.status }}: p {{ p(u.test.p_value) }}, V {{ num(u.test.effect, 3) }}; share of each rep's changes:
  {% for rep, share in u.shares.items() %}{{ rep }} {{ pct(share) }}{{ ", " if not loop.last }}{% endfor %}
{%- else %}
- None.
{%- endfor %}

## 9. What changed in the model during the period
{% if pack.model_changes.versions %}
{% for v in pack.model_changes.versions -%}
- version {{ v.id }} ({{ v.name }} v{{ v.version }}), {{ when(v.created_at) }} by {{ v.created_by }}
{% endfor %}
{% for c in pack.model_changes.changes -%}
- {{ c.change }} {{ c.section }}: {{ c.key }}{% if c.fields %} ({% for f in c.fields %}{{ f.path }}{{ ", " if not loop.last }}{% endfor %}){% endif %}
{% endfor %}{% else %}
No new model version in the period.
{% endif %}
"""


def pack_markdown(pack: dict[str, Any]) -> str:
    env = Environment(autoescape=False, keep_trailing_newline=True)
    return env.from_string(SECTIONS).render(pack=pack, pct=_pct, p=_p, num=_num, when=_when).strip() + "\n"


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Status council pack {{ pack.period.from }} to {{ pack.period.to }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
td.n{text-align:right}.flag{color:#a15c00}h2{border-top:1px solid #ddd;padding-top:.6rem}</style></head><body>
{{ body }}
</body></html>
"""


def pack_html(pack: dict[str, Any]) -> str:
    """The same document as HTML: the Markdown's structure, every value escaped."""
    from markupsafe import Markup, escape

    lines = pack_markdown(pack).splitlines()
    out: list[str] = []
    in_table = False
    in_list = False
    for line in lines:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= set("-:") and c for c in cells):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
                out.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in cells) + "</tr>")
            else:
                out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{escape(line[2:])}</li>")
            continue
        if line.startswith("  ") and in_list:
            out[-1] = out[-1][: -len("</li>")] + f" {escape(line.strip())}</li>"
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("### "):
            out.append(f"<h3>{escape(line[4:])}</h3>")
        elif line.startswith("## "):
            out.append(f"<h2>{escape(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{escape(line[2:])}</h1>")
        elif line.strip():
            out.append(f"<p>{escape(line)}</p>")
    if in_table:
        out.append("</table>")
    if in_list:
        out.append("</ul>")
    env = Environment(autoescape=True)
    return env.from_string(HTML).render(pack=pack, body=Markup("\n".join(out)))
